package socketio

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func BenchmarkEncodeEvent(b *testing.B) {
	payload := map[string]any{"conv": "c-123", "from": "u-42", "text": "hello there", "ts": 1700000000000}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := EncodeEvent("message", payload); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeEventRaw(b *testing.B) {
	raw := json.RawMessage(`{"conv":"c-123","from":"u-42","text":"hello there","ts":1700000000000}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := EncodeEvent("message", raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeSIO(b *testing.B) {
	in := []byte(`212["message",{"conv":"c-123","text":"hello there","ts":1700000000000},"x"]`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeSIO(in, testLimits); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodePayload(b *testing.B) {
	in := []byte(`42["a",1]` + "\x1e" + `42["b",2]` + "\x1e3\x1ebAQIDBA==")
	b.ReportAllocs()
	for b.Loop() {
		_ = decodePayload(in, 16, func(enginePacket) error { return nil })
	}
}

// rawClient is a minimal websocket client on a bare TCP connection, so the
// benchmark process spends (and holds) as little as possible client-side.
type rawClient struct {
	c  net.Conn
	br *bufio.Reader
}

func dialRaw(addr string, withReader bool) (*rawClient, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	req := "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: " + addr +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		return nil, err
	}
	// Read the 101 response byte by byte: no buffer outlives the setup.
	var hdr []byte
	one := make([]byte, 1)
	for !strings.HasSuffix(string(hdr), "\r\n\r\n") {
		if _, err := c.Read(one); err != nil {
			return nil, err
		}
		hdr = append(hdr, one[0])
	}
	// CONNECT "40" as a masked client frame with a zero mask.
	if _, err := c.Write([]byte{0x81, 0x82, 0, 0, 0, 0, '4', '0'}); err != nil {
		return nil, err
	}
	rc := &rawClient{c: c}
	if withReader {
		rc.br = bufio.NewReaderSize(c, 64<<10)
	}
	return rc, nil
}

// countEvents reads server frames and counts those holding a socket.io
// EVENT ("42..."), until want or an error.
func (rc *rawClient) countEvents(want int64, counter *atomic.Int64) {
	var h [8]byte
	var first [2]byte
	for n := int64(0); n < want; {
		if _, err := io.ReadFull(rc.br, h[:2]); err != nil {
			return
		}
		l := int(h[1] & 0x7f)
		switch l {
		case 126:
			io.ReadFull(rc.br, h[:2])
			l = int(binary.BigEndian.Uint16(h[:2]))
		case 127:
			io.ReadFull(rc.br, h[:8])
			l = int(binary.BigEndian.Uint64(h[:8]))
		}
		if l >= 2 {
			io.ReadFull(rc.br, first[:])
			rc.br.Discard(l - 2)
			if first == [2]byte{'4', '2'} {
				n++
				counter.Add(1)
			}
		} else {
			rc.br.Discard(l)
		}
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func connectN(b *testing.B, srv *Server, conns chan *Conn, addr string, n int, withReader bool) ([]*rawClient, []*Conn) {
	var clients []*rawClient
	var cs []*Conn
	for i := 0; i < n; i++ {
		rc, err := dialRaw(addr, withReader)
		if err != nil {
			b.Fatal(err)
		}
		clients = append(clients, rc)
		cs = append(cs, <-conns)
	}
	return clients, cs
}

// BenchmarkFanout sends one pre-encoded Frame to N websocket connections
// over loopback per iteration. deliveries/s counts frames the clients have
// fully read; cpu-ns/delivery is the whole process's CPU (server plus the
// minimal raw clients) per delivery.
func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("conns=%d", n), func(b *testing.B) {
			srv := NewServer(Config{SendQueue: 1 << 16, PingInterval: time.Hour, PingTimeout: time.Hour})
			conns := make(chan *Conn, n)
			srv.OnConnect(func(c *Conn, _ json.RawMessage) error { conns <- c; return nil })
			hs := httptest.NewServer(srv)
			defer hs.Close()
			defer srv.Close()
			clients, cs := connectN(b, srv, conns, hs.Listener.Addr().String(), n, true)
			frame, err := EncodeEvent("message", map[string]any{"conv": "c-123", "from": "u-42", "text": "hello there, this is a chat message", "ts": 1700000000000})
			if err != nil {
				b.Fatal(err)
			}
			var got atomic.Int64
			var wg sync.WaitGroup
			b.ReportAllocs()
			b.ResetTimer()
			cpu0, t0 := cpuTime(), time.Now()
			for _, rc := range clients {
				wg.Add(1)
				go func() { defer wg.Done(); rc.countEvents(int64(b.N), &got) }()
			}
			for i := 0; i < b.N; i++ {
				for _, c := range cs {
					if err := c.Send(frame); err != nil {
						b.Fatal(err)
					}
				}
			}
			wg.Wait()
			el, cpu := time.Since(t0), cpuTime()-cpu0
			b.StopTimer()
			total := float64(b.N) * float64(n)
			if got.Load() != int64(total) {
				b.Fatalf("delivered %d of %v", got.Load(), total)
			}
			b.ReportMetric(total/el.Seconds(), "deliveries/s")
			b.ReportMetric(float64(cpu.Nanoseconds())/total, "cpu-ns/delivery")
			for _, rc := range clients {
				rc.c.Close()
			}
		})
	}
}

// BenchmarkDeliverSparse is the gateway's delivery pattern: every frame is
// a fresh RawFrame for one socket, and a socket gets a frame only now and
// then (1,000 sockets, 20,000 frames/s in ticks of 1 ms), so a writer
// rarely finds more than one frame queued. cpu-ns/delivery is the whole
// process's CPU (server plus the raw clients) per delivery.
func BenchmarkDeliverSparse(b *testing.B) {
	const n, perTick = 1000, 20
	srv := NewServer(Config{SendQueue: 1 << 16, PingInterval: time.Hour, PingTimeout: time.Hour})
	conns := make(chan *Conn, n)
	srv.OnConnect(func(c *Conn, _ json.RawMessage) error { conns <- c; return nil })
	hs := httptest.NewServer(srv)
	defer hs.Close()
	defer srv.Close()
	clients, cs := connectN(b, srv, conns, hs.Listener.Addr().String(), n, true)
	packet, err := EncodeEventPacket("message:new", map[string]any{"conv": "c-123", "from": "u-42", "text": "hello there, this is a chat message", "ts": 1700000000000, "seq": 42})
	if err != nil {
		b.Fatal(err)
	}
	msg := string(packet) // the hub gets each publication as a new string
	var got atomic.Int64
	var wg sync.WaitGroup
	want := make([]int64, n)
	for i := 0; i < b.N; i++ {
		want[i%n]++
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0, t0 := cpuTime(), time.Now()
	for i, rc := range clients {
		wg.Add(1)
		go func() { defer wg.Done(); rc.countEvents(want[i], &got) }()
	}
	tick := time.NewTicker(time.Millisecond)
	for i := 0; i < b.N; {
		<-tick.C
		for end := min(i+perTick, b.N); i < end; i++ {
			if err := cs[i%n].Send(RawFrame([]byte(msg))); err != nil {
				b.Fatal(err)
			}
		}
	}
	tick.Stop()
	wg.Wait()
	el, cpu := time.Since(t0), cpuTime()-cpu0
	b.StopTimer()
	if got.Load() != int64(b.N) {
		b.Fatalf("delivered %d of %d", got.Load(), b.N)
	}
	b.ReportMetric(float64(b.N)/el.Seconds(), "deliveries/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/delivery")
	for _, rc := range clients {
		rc.c.Close()
	}
}

// BenchmarkIdleConnMemory reports heap+stack bytes per idle, connected
// websocket socket (server side plus a bare TCP client, so an upper bound).
func BenchmarkIdleConnMemory(b *testing.B) {
	const n = 2000
	for b.Loop() {
		srv := NewServer(Config{PingInterval: time.Hour, PingTimeout: time.Hour})
		conns := make(chan *Conn, n)
		srv.OnConnect(func(c *Conn, _ json.RawMessage) error { conns <- c; return nil })
		hs := httptest.NewServer(srv)
		before := memInUse()
		clients, _ := connectN(b, srv, conns, hs.Listener.Addr().String(), n, false)
		// Let the open/CONNECT writers finish and exit.
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > n+50 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		after := memInUse()
		b.ReportMetric(float64(after-before)/n, "bytes/conn")
		b.ReportMetric(float64(runtime.NumGoroutine())/n, "goroutines/conn")
		for _, rc := range clients {
			rc.c.Close()
		}
		hs.Close()
		srv.Close()
	}
}

func memInUse() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse + m.StackInuse)
}
