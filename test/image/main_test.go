package image

import (
	"os"
	"testing"

	"github.com/kubelet-stats-server/kubelet-stats-server/test/e2e/framework"
)

func TestMain(m *testing.M) {
	os.Exit(framework.Main(m.Run))
}
