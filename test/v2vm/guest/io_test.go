package guest

import (
	"bufio"
	"fmt"

	"golang.org/x/sys/unix"
)

// directReadBytes is how much the read helper reads before it reports
// ready; it then stays idle, so the cgroup's io.stat holds still.
const directReadBytes = 32 << 20

// directReads reads the start of device with O_DIRECT (bypassing the page
// cache, so every byte is a block I/O charged to the cgroup), prints ready
// and waits for stdin to close.
func directReads(device string, in *bufio.Reader) error {
	fd, err := unix.Open(device, unix.O_RDONLY|unix.O_DIRECT, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", device, err)
	}
	defer unix.Close(fd)
	// O_DIRECT needs an aligned buffer: an anonymous mapping is page aligned.
	buf, err := unix.Mmap(-1, 0, 1<<20, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		return err
	}
	for offset := int64(0); offset < directReadBytes; offset += int64(len(buf)) {
		if _, err := unix.Pread(fd, buf, offset); err != nil {
			return fmt.Errorf("read %s at %d: %w", device, offset, err)
		}
	}
	fmt.Println("ready")
	_, _ = in.ReadString('\n')
	return nil
}
