package server

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/kubelet-stats-server/kubelet-stats-server/snapshot"
)

// historyPath is the page's data: the summary's CPU and memory of the node,
// its pods and their containers, plus the recent samples the collector
// retains for each, in one compact document per snapshot. It is ours, not
// the kubelet's; the secure port authorizes it as nodes/stats (auth.go).
const historyPath = "/history"

// installHistory adds /history: GET only, producing JSON built and encoded
// once per snapshot. The page polls faster than snapshots change; the ETag
// names the snapshot, so that a poll between ticks costs a 304.
func installHistory(c filteringContainer, cfg Config, src SnapshotSource) {
	newSnapshotJSON(cfg, src, encodeHistory, true).install(c, historyPath, "getHistory")
}

// snapshotETag names a snapshot across restarts too: generations start
// again at 1, publication times do not repeat.
func snapshotETag(snap *snapshot.Snapshot) string {
	return `"` + strconv.FormatUint(snap.Generation, 10) + "-" + strconv.FormatInt(snap.Time.UnixNano(), 36) + `"`
}

func encodeHistory(snap *snapshot.Snapshot) ([]byte, error) {
	doc, err := historyDocument(snap)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("encode history: %w", err)
	}
	return body, nil
}
