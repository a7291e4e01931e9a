package snapshot

import (
	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
)

// The events API's types, from the collector's event store (which the
// provider's EventFeed fills), named here so that the server reads them
// from this package alone.
type (
	Event      = cadvisor.Event
	EventPod   = cadvisor.EventPod
	EventType  = cadvisor.EventType
	EventQuery = cadvisor.EventQuery
	EventWatch = cadvisor.EventWatch
)

// The event types.
const (
	EventOOM               = cadvisor.EventOOM
	EventOOMKill           = cadvisor.EventOOMKill
	EventContainerCreation = cadvisor.EventContainerCreation
	EventContainerDeletion = cadvisor.EventContainerDeletion
)

// Errors of an event watch.
var (
	ErrEventStoreClosed = cadvisor.ErrEventStoreClosed
	ErrTooManyWatches   = cadvisor.ErrTooManyWatches
)
