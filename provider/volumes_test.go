package provider

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/kubelet-stats-server/kubelet-stats-server/analyzer"
)

func TestPodVolumeStats(t *testing.T) {
	at := time.Date(2026, 11, 22, 13, 21, 43, 0, time.UTC)
	measured := []analyzer.VolumeStats{
		{Name: "config", Ephemeral: true, Time: at, Used: analyzer.Usage{Bytes: 8192, Inodes: 3}, Capacity: 100, Available: 50, Inodes: 10, InodesFree: 5},
		{Name: "kube-api-access", Time: at, Used: analyzer.Usage{Bytes: 4096, Inodes: 5}},
		{Name: "scratch", Ephemeral: true, Time: at, Used: analyzer.Usage{Bytes: 4096, Inodes: 1}, Capacity: 100, Available: 50, Inodes: 10, InodesFree: 5},
		{Name: "shm", Time: at},
	}
	all, ephemeral := podVolumeStats(measured)
	var names []string
	for _, v := range all {
		names = append(names, v.Name)
	}
	if got := strings.Join(names, ","); got != "config,scratch,kube-api-access,shm" {
		t.Errorf("order %s, want the ephemeral volumes first", got)
	}
	if len(ephemeral) != 2 || ephemeral[0].Name != "config" || ephemeral[1].Name != "scratch" {
		t.Errorf("ephemeral %+v", ephemeral)
	}
	// Appending to the ephemeral list must not overwrite the rest.
	_ = append(ephemeral, all[0])
	if all[2].Name != "kube-api-access" {
		t.Error("the ephemeral list shares capacity with the full list")
	}

	// Every field is present, zeros included, as parsePodVolumeStats sets them.
	body, err := json.Marshal(all[3])
	if err != nil {
		t.Fatal(err)
	}
	want := `{"time":"2026-11-22T13:21:43Z","availableBytes":0,"capacityBytes":0,"usedBytes":0,"inodesFree":0,"inodes":0,"inodesUsed":0,"name":"shm"}`
	if string(body) != want {
		t.Errorf("JSON %s\nwant %s", body, want)
	}

	if all, ephemeral := podVolumeStats(nil); all != nil || ephemeral != nil {
		t.Error("no volumes must give nil (the key is omitted)")
	}
}
