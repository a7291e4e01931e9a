package guest

import (
	"bufio"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/kubelet-stats-server/kubelet-stats-server/test/e2e/framework"
	"github.com/kubelet-stats-server/kubelet-stats-server/test/serverproc"
)

const (
	// guestEnv is set by the VM's guest.sh; without it nothing runs.
	guestEnv = "KSS_V2VM_GUEST"
	// layoutEnv is the layout the VM booted: cgroupfs or systemd.
	layoutEnv = "KSS_V2VM_LAYOUT"
	// helperEnv makes the test binary a workload (see runHelper).
	helperEnv = "KSS_V2VM_HELPER"
)

var serverBinary string

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(runHelper(mode))
	}
	if os.Getenv(guestEnv) != "1" {
		fmt.Fprintf(os.Stderr, "skipping: these tests run inside the cgroup v2 VM (make e2e-v2), which sets %s=1\n", guestEnv)
		os.Exit(0)
	}
	os.Exit(framework.Main(func() int { return serverproc.RunTests(m, &serverBinary) }))
}

// runHelper is a workload for the live tests. It waits for a line on stdin
// (sent once the test has moved it into its cgroup, so that everything it
// does is charged there), does its work, prints "ready" and runs until
// stdin closes or it is killed.
//
//	burn:  spin on one CPU
//	hold:  allocate 64 MiB and touch every page
//	hog:   allocate and touch memory without end (an OOM kill ends it)
//	read:  read /dev/vdb with O_DIRECT, 1 MiB at a time, in a loop
//	sleep: nothing
func runHelper(mode string) int {
	in := bufio.NewReader(os.Stdin)
	if _, err := in.ReadString('\n'); err != nil {
		return 1
	}
	switch mode {
	case "burn":
		fmt.Println("ready")
		spin()
	case "hold":
		held := touch(64 << 20)
		fmt.Println("ready")
		_, _ = in.ReadString('\n')
		return int(held[0]) - 1 // keeps the pages reachable until the end
	case "hog":
		fmt.Println("ready")
		var chunks [][]byte
		for {
			chunks = append(chunks, touch(4<<20)) //nolint:staticcheck // SA4010: held, never read, until the OOM kill
		}
	case "read":
		if err := directReads("/dev/vdb", in); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
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

// touch allocates n bytes and writes every page, so that they count.
func touch(n int) []byte {
	b := make([]byte, n)
	for i := 0; i < n; i += 4096 {
		b[i] = 1
	}
	return b
}

func spin() {
	x := uint64(1)
	deadline := time.Now().Add(time.Hour)
	for time.Now().Before(deadline) {
		for i := 0; i < 1<<20; i++ {
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
	if x == 0 {
		fmt.Println("unreachable")
	}
}
