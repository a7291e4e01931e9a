package browser

import (
	"os"
	"testing"

	"github.com/kubelet-stats-server/kubelet-stats-server/test/e2e/framework"
	"github.com/kubelet-stats-server/kubelet-stats-server/test/serverproc"
)

var serverBinary string

func TestMain(m *testing.M) {
	os.Exit(framework.Main(func() int { return serverproc.RunTests(m, &serverBinary) }))
}
