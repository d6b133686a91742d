// Package leaktest finds goroutines that outlive what started them, by
// their stacks: a goroutine counts when one of its frames is a function of
// the given packages outside test files. Frames of other packages (the
// rueidis client, net/http) are ignored, so goroutines of shared test
// servers do not count.
package leaktest

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

// Running returns the stacks of the goroutines running code of pkgs
// (import paths, e.g. "github.com/chatstate/chatstate/gateway"; "main"
// for a command).
func Running(pkgs ...string) []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		lines := strings.Split(g, "\n")
		// lines[0] is the header, then pairs of function and file:line.
		for i := 1; i+1 < len(lines); i += 2 {
			if in(lines[i], pkgs) && !testFile(lines[i+1]) {
				out = append(out, g)
				break
			}
		}
	}
	return out
}

func testFile(fileLine string) bool {
	return strings.Contains(fileLine, "_test.go:") || strings.Contains(fileLine, "_testmain.go:")
}

// in reports whether fn (a stack frame's function line) belongs to one of
// pkgs itself, not to a sub-package.
func in(fn string, pkgs []string) bool {
	for _, p := range pkgs {
		if rest, ok := strings.CutPrefix(fn, p+"."); ok && !strings.Contains(rest, "/") {
			return true
		}
	}
	return false
}

// Wait polls until no goroutine runs code of pkgs, failing the test with
// their stacks after within: the goroutines that end on their own (socket
// read loops after the connection closed) get that long.
func Wait(t testing.TB, within time.Duration, pkgs ...string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		left := Running(pkgs...)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines left in %v after %v:\n%s", len(left), pkgs, within, strings.Join(left, "\n\n"))
		}
		time.Sleep(20 * time.Millisecond) // polling with a deadline
	}
}
