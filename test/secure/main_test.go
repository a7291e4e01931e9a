package secure

import (
	"os"
	"testing"

	"github.com/kubelet-stats-server/kubelet-stats-server/test/serverproc"
)

// serverBinary is built once per test process by TestMain.
var serverBinary string

func TestMain(m *testing.M) {
	os.Exit(serverproc.RunTests(m, &serverBinary))
}
