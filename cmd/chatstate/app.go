package main

import (
	"context"
	"fmt"
	"io"
)

const usage = `usage: chatstate <command>

commands:
  serve    run the server (configured from the environment, see README.md)
  token    print a development JWT: chatstate token --user alice [--ttl 24h]
`

// Main is the testable entry point: end-to-end tests call it with their own
// environment and a context they cancel.
func Main(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("no command")
	}
	switch args[0] {
	case "serve":
		return serve(ctx, getenv, stdout, stderr)
	case "token":
		return token(args[1:], getenv, stdout, stderr)
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
}
