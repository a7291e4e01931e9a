package secure

import (
	"os"
	"testing"

	"kubelet-stats-server/test/serverproc"
)

// serverBinary is built once per test process by TestMain.
var serverBinary string

func TestMain(m *testing.M) {
	os.Exit(serverproc.RunTests(m, &serverBinary))
}
