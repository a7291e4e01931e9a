// Command work is the e2e workload image. Each flag produces one kind of
// resource usage that the stats server must observe:
//
//	-cpu 0.2          burn 0.2 cores with a busy/sleep duty cycle
//	-mem 50           hold 50 MiB, every page touched so it counts as RSS
//	-write /data      write -write-mib MiB into /data/work.dat (an emptyDir, or
//	                  a directory of the writable layer such as /tmp)
//	-net              send a UDP datagram to the default gateway every
//	                  -net-interval, so eth0 tx (and rx, from the ICMP reply) grow
//	-exit-after 5s    exit with -exit-code after that long (restart scenarios)
//
// It logs a line to stdout at start and every -log-every, and exits 0 on
// SIGTERM or SIGINT (it runs as PID 1, which has no default handlers).
package main

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"math"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

const dutyPeriod = 100 * time.Millisecond

func main() {
	cpu := flag.Float64("cpu", 0, "cores to keep busy, e.g. 0.2")
	memMiB := flag.Int("mem", 0, "MiB of memory to allocate and touch")
	writeDir := flag.String("write", "", "directory to write a file into")
	writeMiB := flag.Int("write-mib", 1, "MiB to write with -write")
	netTraffic := flag.Bool("net", false, "send UDP to the default gateway periodically")
	netInterval := flag.Duration("net-interval", time.Second, "interval between datagrams with -net")
	exitAfter := flag.Duration("exit-after", 0, "exit after this long (0: run until signalled)")
	exitCode := flag.Int("exit-code", 0, "exit code with -exit-after")
	logEvery := flag.Duration("log-every", time.Second, "interval between log lines")
	flag.Parse()

	fmt.Printf("work: start cpu=%g mem=%dMiB write=%q net=%v exit-after=%v\n", *cpu, *memMiB, *writeDir, *netTraffic, *exitAfter)

	held := allocate(*memMiB)
	if *writeDir != "" {
		if err := writeFile(*writeDir, *writeMiB); err != nil {
			fmt.Println("work: write:", err)
		}
	}
	if *cpu > 0 {
		burn(*cpu)
	}
	if *netTraffic {
		go sendTraffic(*netInterval)
	}

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	var exitTimer <-chan time.Time
	if *exitAfter > 0 {
		exitTimer = time.After(*exitAfter)
	}
	ticker := time.NewTicker(*logEvery)
	defer ticker.Stop()
	for tick := 1; ; tick++ {
		select {
		case s := <-signals:
			fmt.Println("work: got", s, "exiting")
			runtime.KeepAlive(held)
			os.Exit(0)
		case <-exitTimer:
			fmt.Println("work: exit-after reached, exiting with", *exitCode)
			runtime.KeepAlive(held)
			os.Exit(*exitCode)
		case <-ticker.C:
			fmt.Printf("work: tick %d\n", tick)
		}
	}
}

// allocate returns mib MiB with one byte written per page, so the kernel
// backs every page and the memory shows up in RSS and the working set.
func allocate(mib int) []byte {
	if mib <= 0 {
		return nil
	}
	buf := make([]byte, mib<<20)
	pageSize := os.Getpagesize()
	for i := 0; i < len(buf); i += pageSize {
		buf[i] = 1
	}
	return buf
}

func writeFile(dir string, mib int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	path := filepath.Join(dir, "work.dat")
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	chunk := bytes.Repeat([]byte("kubelet-stats-server\n"), 1<<20/21+1)[:1<<20]
	for range mib {
		if _, err := f.Write(chunk); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	fmt.Printf("work: wrote %d MiB to %s\n", mib, path)
	return f.Close()
}

// burn keeps cores busy: one goroutine per started core, each consuming its
// share of every dutyPeriod in CPU time (not wall time, so a contended
// machine still sees the asked-for usage) and sleeping for the rest.
func burn(cores float64) {
	whole := int(math.Ceil(cores))
	for i := range whole {
		share := math.Min(1, cores-float64(i))
		go func() {
			// The thread CPU clock is only meaningful on one thread.
			runtime.LockOSThread()
			busy := time.Duration(share * float64(dutyPeriod))
			for {
				start, cpuStart := time.Now(), threadCPU()
				for threadCPU()-cpuStart < busy && time.Since(start) < dutyPeriod {
				}
				if rest := dutyPeriod - time.Since(start); rest > 0 {
					time.Sleep(rest)
				}
			}
		}()
	}
}

func threadCPU() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

func sendTraffic(interval time.Duration) {
	gw, err := defaultGateway()
	if err != nil {
		fmt.Println("work: net:", err)
		return
	}
	conn, err := net.Dial("udp4", net.JoinHostPort(gw.String(), "9"))
	if err != nil {
		fmt.Println("work: net:", err)
		return
	}
	defer conn.Close()
	payload := make([]byte, 512)
	for {
		// Errors (ECONNREFUSED from the previous ICMP reply) are expected.
		_, _ = conn.Write(payload)
		time.Sleep(interval)
	}
}

// defaultGateway reads the IPv4 default route from /proc/net/route.
func defaultGateway() (net.IP, error) {
	f, err := os.Open("/proc/net/route")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) < 3 || fields[1] != "00000000" {
			continue
		}
		raw, err := hex.DecodeString(fields[2])
		if err != nil || len(raw) != 4 {
			continue
		}
		// /proc/net/route prints addresses in host (little-endian) order.
		return net.IPv4(raw[3], raw[2], raw[1], raw[0]), nil
	}
	return nil, errors.New("no default route")
}
