// Command sio-suite-server serves what the official protocol test suites
// (test-suite/ of socketio/engine.io-protocol and socketio/socket.io-protocol)
// expect on port 3000: a bare echoing Engine.IO server at /engine.io/ and a
// Socket.IO server at /socket.io/ that emits "auth" with the handshake auth
// and echoes events. See socketio/README.md for how to run the suites.
package main

import (
	"encoding/json"
	"flag"
	"log"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/chatstate/chatstate/socketio"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:3000", "listen address")
	flag.Parse()

	base := socketio.Config{
		PingInterval:   300 * time.Millisecond,
		PingTimeout:    200 * time.Millisecond,
		ConnectTimeout: time.Second,
		MaxPayload:     1e6,
		Logger:         slog.New(slog.NewTextHandler(os.Stderr, nil)),
	}
	eioCfg := base
	eioCfg.Path = "/engine.io/"
	sioCfg := base
	sioCfg.Path = "/socket.io/"

	srv := socketio.NewServer(sioCfg)
	srv.OnConnect(func(c *socketio.Conn, auth json.RawMessage) error {
		if auth == nil {
			auth = json.RawMessage("{}")
		}
		return c.Emit("auth", auth)
	})
	srv.OnEvent(func(c *socketio.Conn, ev *socketio.Event) {
		args := make([]any, len(ev.Args))
		for i, a := range ev.Args {
			args[i] = placeholderOrRaw(a, ev.Attachments)
		}
		switch ev.Name {
		case "message":
			_ = c.Emit("message-back", args...)
		case "message-with-ack":
			_ = ev.Ack(args...)
		}
	})

	mux := http.NewServeMux()
	mux.Handle("/engine.io/", socketio.NewEchoEngine(eioCfg))
	mux.Handle("/socket.io/", srv)
	log.Printf("sio-suite-server listening on %s", *addr)
	log.Fatal(http.ListenAndServe(*addr, mux))
}

// placeholderOrRaw turns a top-level binary placeholder back into its
// attachment so that Emit/Ack re-attach it; anything else stays raw JSON.
func placeholderOrRaw(a json.RawMessage, atts [][]byte) any {
	var ph struct {
		Placeholder bool `json:"_placeholder"`
		Num         *int `json:"num"`
	}
	if len(a) > 0 && a[0] == '{' && json.Unmarshal(a, &ph) == nil && ph.Placeholder && ph.Num != nil &&
		*ph.Num >= 0 && *ph.Num < len(atts) {
		return atts[*ph.Num]
	}
	return a
}
