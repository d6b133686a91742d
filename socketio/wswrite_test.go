package socketio

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func TestAppendWSHeader(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want []byte
	}{
		{0, []byte{0x81, 0}},
		{125, []byte{0x81, 125}},
		{126, []byte{0x81, 126, 0, 126}},
		{0xffff, []byte{0x81, 126, 0xff, 0xff}},
		{0x10000, []byte{0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0}},
	} {
		if got := appendWSHeader(nil, wsFinText, tc.n); !bytes.Equal(got, tc.want) {
			t.Errorf("header(%d) = %x, want %x", tc.n, got, tc.want)
		}
	}
}

// TestWebsocketWriterFraming sends, in one burst, frames of every header
// length, payloads copied into the batch and written with writev, binary
// attachments, and more than a batch buffer's worth, and checks a gorilla
// client reads each message intact and in order.
func TestWebsocketWriterFraming(t *testing.T) {
	h := newHarness(t, Config{SendQueue: 1024})
	ws := dialSocket(t, h)
	c := h.waitConn(t)

	type msg struct {
		mt   int
		data string
	}
	var want []msg
	var frames []*Frame
	for i, n := range []int{0, 1, 120, 121, 122, 60000, wsDirectMin - 20, wsDirectMin + 5, 70000, 300000, 10, 10} {
		arg := strings.Repeat(string(rune('a'+i%26)), n)
		f, err := EncodeEvent("e", arg)
		if err != nil {
			t.Fatal(err)
		}
		frames = append(frames, f)
		want = append(want, msg{websocket.TextMessage, string(f.text)})
	}
	bin := bytes.Repeat([]byte{0, 1, 2, 0xff}, 5000)
	f, err := EncodeEvent("b", []byte{7}, bin)
	if err != nil {
		t.Fatal(err)
	}
	frames = append(frames, f)
	want = append(want, msg{websocket.TextMessage, string(f.text)}, msg{websocket.BinaryMessage, "\x07"}, msg{websocket.BinaryMessage, string(bin)})
	for i := 0; i < 200; i++ { // several batch buffers of small frames
		f, err := EncodeEvent("s", i)
		if err != nil {
			t.Fatal(err)
		}
		frames = append(frames, f)
		want = append(want, msg{websocket.TextMessage, string(f.text)})
	}
	for _, f := range frames {
		if err := c.Send(f); err != nil {
			t.Fatal(err)
		}
	}

	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for i, w := range want {
		mt, b, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if mt != w.mt || string(b) != w.data {
			t.Fatalf("message %d: type %d, %d bytes %.40q..., want type %d, %d bytes %.40q...", i, mt, len(b), b, w.mt, len(w.data), w.data)
		}
	}
}

// TestWebsocketPingAnswered: a websocket-level ping from the client gets its
// pong, and later frames still arrive intact.
func TestWebsocketPingAnswered(t *testing.T) {
	h := newHarness(t, Config{})
	ws := dialSocket(t, h)
	c := h.waitConn(t)
	pong := make(chan string, 1)
	ws.SetPongHandler(func(s string) error { pong <- s; return nil })
	if err := ws.WriteControl(websocket.PingMessage, []byte("hi"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := c.Emit("n", i); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 3; i++ {
		if got, want := readText(t, ws), fmt.Sprintf(`42["n",%d]`, i); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	// The pong may come after the events: keep reading (the pong handler
	// runs inside reads), emitting one more event per read.
	deadline := time.Now().Add(5 * time.Second)
	for i := 3; ; i++ {
		select {
		case s := <-pong:
			if s != "hi" {
				t.Fatalf("pong %q", s)
			}
			return
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("no pong")
		}
		if err := c.Emit("n", i); err != nil {
			t.Fatal(err)
		}
		if got, want := readText(t, ws), fmt.Sprintf(`42["n",%d]`, i); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
}
