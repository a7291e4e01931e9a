package collector

import (
	"bufio"
	"fmt"
	"os"
	"testing"
	"time"
)

// helperEnv makes the test binary act as a workload process instead of
// running tests (see runHelper).
const helperEnv = "KSTEST_CADVISOR_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(runHelper(mode))
	}
	code := m.Run()
	cleanupBenchTree()
	os.Exit(code)
}

// runHelper is a workload for live cgroup tests. It waits for a line on
// stdin (sent once the test has moved it into its cgroup, so that every
// page and CPU cycle is charged there), does its work, prints "ready" and
// then runs until stdin closes or it is killed.
//
//	burn:  spin on one CPU
//	hold:  allocate 64 MiB and touch every page
//	sleep: nothing
func runHelper(mode string) int {
	in := bufio.NewReader(os.Stdin)
	if _, err := in.ReadString('\n'); err != nil {
		return 1
	}
	switch mode {
	case "burn":
		fmt.Println("ready")
		burn()
	case "hold":
		held := make([]byte, 64<<20)
		for i := 0; i < len(held); i += 4096 {
			held[i] = 1
		}
		fmt.Println("ready")
		_, _ = in.ReadString('\n')
		// Keep the pages reachable until the end.
		if held[0] != 1 {
			return 2
		}
	case "sleep":
		fmt.Println("ready")
		_, _ = in.ReadString('\n')
	default:
		fmt.Fprintf(os.Stderr, "unknown helper mode %q\n", mode)
		return 1
	}
	return 0
}

func burn() {
	x := uint64(1)
	deadline := time.Now().Add(time.Hour)
	for {
		for i := 0; i < 1<<20; i++ {
			x = x*6364136223846793005 + 1442695040888963407
		}
		if time.Now().After(deadline) || x == 0 {
			return
		}
	}
}
