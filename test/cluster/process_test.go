package cluster

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// stopLimit is how long a process gets to exit on SIGTERM before SIGKILL;
// the API server's graceful shutdown takes 8-12 s.
const stopLimit = 30 * time.Second

// process is a control plane binary run for the test, its output in a file.
type process struct {
	name   string
	cmd    *exec.Cmd
	log    string
	exited chan error
}

// startProcess runs binary, kills it with the test binary (PDEATHSIG) and
// stops it at cleanup: SIGTERM, then SIGKILL after stopLimit. Processes
// stop in reverse start order, so the API server goes before etcd.
func startProcess(t *testing.T, name, binary string, args ...string) *process {
	t.Helper()
	logFile, err := os.Create(filepath.Join(t.TempDir(), name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	p := &process{name: name, cmd: exec.Command(binary, args...), log: logFile.Name(), exited: make(chan error, 1)}
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.exited <- p.cmd.Wait()
		logFile.Close()
	}()
	t.Cleanup(func() {
		if err := p.stop(); err != nil {
			t.Errorf("stop %s: %v", name, err)
		}
		if t.Failed() {
			t.Logf("%s log (last 4 KiB):\n%s", name, p.tail(4096))
		}
	})
	return p
}

// stop ends the process and returns once it exited; it may be called again.
func (p *process) stop() error {
	select {
	case err := <-p.exited:
		p.exited <- err
		return nil
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.exited:
		p.exited <- err
		return nil
	case <-time.After(stopLimit):
	}
	_ = p.cmd.Process.Kill()
	err := <-p.exited
	p.exited <- err
	return fmt.Errorf("%s did not exit within %v of SIGTERM; killed", p.name, stopLimit)
}

// running fails when the process has exited.
func (p *process) running() error {
	select {
	case err := <-p.exited:
		p.exited <- err
		return fmt.Errorf("%s exited: %v\n%s", p.name, err, p.tail(4096))
	default:
		return nil
	}
}

func (p *process) tail(n int) string {
	data, err := os.ReadFile(p.log)
	if err != nil {
		return err.Error()
	}
	if len(data) > n {
		data = data[len(data)-n:]
	}
	return string(bytes.ToValidUTF8(data, nil))
}
