package mongostore_test

import (
	"context"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/internal/mongotest"
	"github.com/chatstate/chatstate/mongostore"
)

// proxy forwards TCP connections to upstream until cut, which closes the
// listener and every connection: the store's server goes away mid-use.
type proxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func startProxy(t *testing.T, upstream string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln}
	t.Cleanup(p.cut)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", upstream)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { io.Copy(u, c); u.Close() }()
			go func() { io.Copy(c, u); c.Close() }()
		}
	}()
	return p
}

func (p *proxy) cut() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// When the store's server goes away, reads and writes fail unavailable
// with a retry hint (never internal) within the caller's deadline.
func TestStoreUnreachableIsUnavailable(t *testing.T) {
	uri, err := url.Parse(mongotest.Start(t))
	if err != nil {
		t.Fatal(err)
	}
	p := startProxy(t, uri.Host)
	uri.Host = p.ln.Addr().String()
	// directConnection: the driver must not discover the real address
	// behind the proxy and bypass it.
	q := uri.Query()
	q.Set("directConnection", "true")
	uri.RawQuery = q.Encode()
	s, err := mongostore.Open(ctx(t), uri.String(), "", mongostore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	if _, err := s.InsertMessages(ctx(t), []chatstate.Message{msg("c1", "u1", 1)}); err != nil {
		t.Fatal(err)
	}
	p.cut()
	for name, call := range map[string]func(context.Context) error{
		"LastSeq": func(c context.Context) error { _, err := s.LastSeq(c, "c1"); return err },
		"InsertMessages": func(c context.Context) error {
			_, err := s.InsertMessages(c, []chatstate.Message{msg("c1", "u1", 2)})
			return err
		},
		"MessagesAfter": func(c context.Context) error { _, err := s.MessagesAfter(c, "c1", 0, 10); return err },
	} {
		c, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		start := time.Now()
		err := call(c)
		cancel()
		p := chatstate.Payload(err)
		if p.Code != chatstate.EUNAVAILABLE || p.RetryAfterMs <= 0 {
			t.Errorf("%s with the server gone: %v -> %+v, want unavailable with retryAfterMs", name, err, p)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("%s took %v, past its 2 s deadline", name, d)
		}
	}
}
