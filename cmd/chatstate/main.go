// Command chatstate runs the chatstate server.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The first signal starts the graceful drain; restoring the default
	// handling makes a second one stop the process at once.
	go func() {
		<-ctx.Done()
		stop()
	}()
	if err := Main(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "chatstate:", err)
		os.Exit(1)
	}
}
