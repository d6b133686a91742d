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
  cleanup  run a server's cleanup jobs now and print what each removed:
           chatstate cleanup [--url http://127.0.0.1:8080] (API key from CHATSTATE_API_KEY)
  stats    print a server's Redis statistics: chatstate stats [--url ...]
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
	case "cleanup":
		return admin(ctx, "cleanup", "POST", "/redis/cleanup", args[1:], getenv, stdout, stderr)
	case "stats":
		return admin(ctx, "stats", "GET", "/redis/stats", args[1:], getenv, stdout, stderr)
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
}
