// Command pause is the e2e sandbox image: it sleeps until SIGTERM or SIGINT
// and then exits 0. As PID 1 of a pod it must handle SIGTERM itself, since
// the kernel ignores signals without a handler for PID 1.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	<-signals
}
