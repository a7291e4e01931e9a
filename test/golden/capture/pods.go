package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"strconv"
	"syscall"
	"time"
)

// readyLimit bounds how long a worker may take to do its work.
const readyLimit = 30 * time.Second

// capturer owns what the capture created on this machine.
type capturer struct {
	host *host
	// parent is the cgroup everything is created under; it is taken out
	// of every name in the tree.
	parent        string
	parentCreated bool
	scratch       string
	// created are cgroup names without the parent, parents first.
	created []string
	workers []*worker
	// veths are the host ends of the pods' veth pairs.
	veths []string
	// pids maps each captured cgroup name to its workers' pids.
	pids map[string][]int
	// kubelet is the pid of the "kubelet" worker.
	kubelet int
}

type worker struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
}

// startScenario creates the cgroups and starts every worker, waiting until
// each has done its work.
func (c *capturer) startScenario() error {
	c.pids = map[string][]int{}
	// Recorded first: a mkdir that fails half-way leaves some
	// hierarchies' directories, and cleanup skips the missing ones.
	c.parentCreated = true
	if err := c.host.mkdir(c.parent); err != nil {
		return err
	}
	for _, qos := range qosCgroups {
		if err := c.mkdir(qos.name, qos.limits); err != nil {
			return err
		}
	}
	if err := c.mkdir(path.Dir(systemCgroups[0].name)); err != nil {
		return err
	}
	for _, sys := range systemCgroups {
		if err := c.mkdir(sys.name); err != nil {
			return err
		}
		pid, err := c.startWorker(sys.name, sys.work, 0, false)
		if err != nil {
			return err
		}
		if sys.work.Comm == "kubelet" {
			c.kubelet = pid
		}
	}
	for i, pod := range pods {
		if err := c.startPod(i, pod); err != nil {
			return err
		}
	}
	return nil
}

// startPod starts the sandbox first: with a network of its own, the other
// containers join its namespace, as they do in a real pod.
func (c *capturer) startPod(index int, pod podSpec) error {
	if err := c.mkdir(pod.cgroup(), pod.limits); err != nil {
		return err
	}
	netns := 0
	for _, ctr := range pod.containers {
		name := path.Join(pod.cgroup(), pod.containerID(ctr))
		if err := c.mkdir(name, ctr.limits); err != nil {
			return err
		}
		w := ctr.work
		w.WriteDir = c.scratch
		if pod.ownNetwork {
			w.UDPTarget = hostAddress(index) + ":9"
		} else {
			w.Packets = 0
		}
		pid, err := c.startWorker(name, w, netns, pod.ownNetwork && netns == 0)
		if err != nil {
			return err
		}
		if pod.ownNetwork && netns == 0 {
			netns = pid
			if err := c.connect(index, pid); err != nil {
				return err
			}
		}
	}
	return nil
}

// mkdir records parent+name for cleanup and creates it in every hierarchy.
func (c *capturer) mkdir(name string, l ...limits) error {
	full := path.Join(c.parent, name)
	c.created = append(c.created, name)
	if err := c.host.mkdir(full); err != nil {
		return err
	}
	for _, lim := range l {
		if err := c.host.setLimits(full, lim); err != nil {
			return err
		}
	}
	return nil
}

// startWorker runs this binary as a worker in cgroup name: in a new network
// namespace, in the one of pid netns, or in the host's.
func (c *capturer) startWorker(name string, w work, netns int, newNetwork bool) (int, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, err
	}
	spec, err := json.Marshal(w)
	if err != nil {
		return 0, err
	}
	cmd := exec.Command(exe)
	if netns != 0 {
		// nsenter execs the worker in place: the pid stays the same.
		cmd = exec.Command("nsenter", "--net=/proc/"+strconv.Itoa(netns)+"/ns/net", "--", exe)
	}
	cmd.Env = append(os.Environ(), workEnv+"="+string(spec))
	cmd.Stderr = os.Stderr
	if newNetwork {
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return 0, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start worker for %s: %w", name, err)
	}
	c.workers = append(c.workers, &worker{cmd: cmd, stdin: stdin})
	pid := cmd.Process.Pid
	if err := c.host.join(path.Join(c.parent, name), pid); err != nil {
		return 0, err
	}
	c.pids[name] = append(c.pids[name], pid)
	if _, err := io.WriteString(stdin, "go\n"); err != nil {
		return 0, fmt.Errorf("start the work of %s: %w", name, err)
	}
	return pid, waitReady(name, stdout)
}

// waitReady waits for the worker's "ready" line, at most readyLimit.
func waitReady(name string, stdout io.Reader) error {
	done := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err == nil && line != "ready\n" {
			err = fmt.Errorf("said %q", line)
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("worker of %s: %w", name, err)
		}
		return nil
	case <-time.After(readyLimit):
		return fmt.Errorf("worker of %s not ready after %s", name, readyLimit)
	}
}

// cleanup removes the veths (while their pods' namespaces still hold
// them: a pair dies with a namespace, asynchronously), stops the workers
// (closing stdin ends them), then removes the cgroups, children first.
func (c *capturer) cleanup() error {
	var errs []error
	for _, veth := range c.veths {
		if err := command("ip", "link", "del", veth); err != nil {
			errs = append(errs, err)
		}
	}
	for _, w := range c.workers {
		_ = w.stdin.Close()
	}
	for _, w := range c.workers {
		if err := waitOrKill(w.cmd); err != nil {
			errs = append(errs, err)
		}
	}
	for i := len(c.created) - 1; i >= 0; i-- {
		if err := c.host.rmdir(path.Join(c.parent, c.created[i])); err != nil {
			errs = append(errs, err)
		}
	}
	if c.parentCreated {
		errs = append(errs, c.host.rmdir(c.parent))
	}
	errs = append(errs, c.host.restoreRoot())
	return errors.Join(errs...)
}

// waitOrKill gives a worker 10 s to exit after its stdin closed.
func waitOrKill(cmd *exec.Cmd) error {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		killed := <-done
		return fmt.Errorf("worker %d did not exit; killed: %v", cmd.Process.Pid, killed)
	}
}
