package secure

import (
	"fmt"
	"os"
	"testing"

	"kubelet-stats-server/test/serverproc"
)

// serverBinary is built once per test process by TestMain.
var serverBinary string

func TestMain(m *testing.M) {
	binary, cleanup, err := serverproc.Build()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	serverBinary = binary
	code := m.Run()
	cleanup()
	os.Exit(code)
}
