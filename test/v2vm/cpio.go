package v2vm

import (
	"bufio"
	"fmt"
	"io"
	"os"
)

// cpioWriter writes the kernel's initramfs format: "newc" cpio entries (a
// 110-byte ASCII header, the name, the data, each padded to 4 bytes) and a
// TRAILER!!! entry. Writing it here saves the tier a cpio binary.
type cpioWriter struct {
	w   *bufio.Writer
	ino uint32
	err error
}

func newCPIOWriter(w io.Writer) *cpioWriter {
	return &cpioWriter{w: bufio.NewWriter(w), ino: 1}
}

const (
	cpioDir     = 0o040000
	cpioFile    = 0o100000
	cpioSymlink = 0o120000
)

func (c *cpioWriter) entry(name string, mode uint32, data []byte) {
	if c.err != nil {
		return
	}
	nlink := 1
	if mode&cpioDir != 0 {
		nlink = 2
	}
	header := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		c.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, 0, 0, len(name)+1, 0)
	c.ino++
	c.write([]byte(header))
	c.write([]byte(name))
	c.write([]byte{0})
	c.pad(len(header) + len(name) + 1)
	c.write(data)
	c.pad(len(data))
}

func (c *cpioWriter) write(b []byte) {
	if c.err == nil {
		_, c.err = c.w.Write(b)
	}
}

func (c *cpioWriter) pad(n int) {
	if rem := n % 4; rem != 0 {
		c.write(make([]byte, 4-rem))
	}
}

// dir adds a directory; parents must come first.
func (c *cpioWriter) dir(name string) { c.entry(name, cpioDir|0o755, nil) }

// file adds a regular file with its content.
func (c *cpioWriter) file(name string, perm uint32, data []byte) {
	c.entry(name, cpioFile|perm, data)
}

// hostFile adds the content of a file of this machine.
func (c *cpioWriter) hostFile(name, path string) {
	if c.err != nil {
		return
	}
	data, err := os.ReadFile(path)
	if err != nil {
		c.err = err
		return
	}
	c.file(name, 0o755, data)
}

func (c *cpioWriter) symlink(name, target string) {
	c.entry(name, cpioSymlink|0o777, []byte(target))
}

// close writes the trailer and flushes; it returns the first error.
func (c *cpioWriter) close() error {
	c.entry("TRAILER!!!", 0, nil)
	if c.err != nil {
		return c.err
	}
	return c.w.Flush()
}
