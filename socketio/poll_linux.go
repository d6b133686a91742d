//go:build linux

package socketio

import (
	"errors"
	"sync"
	"syscall"
)

// poller tells when websocket connections are readable, so that an idle
// connection has no goroutine (and no goroutine stack) parked in Read: one
// goroutine waits in epoll_wait for all of them and starts a short-lived
// reader for each one that has data (session.readReady).
//
// Each connection is registered level-triggered with EPOLLONESHOT: after an
// event it is disarmed until its reader has read everything and re-arms it,
// so at most one reader runs per connection (which keeps the per-connection
// ordering of handlers) and bytes that arrive meanwhile fire again on
// re-arm. The Go runtime keeps its own registration of the same descriptor
// for writes; reads never wait on it.
//
// An event carries a token, never the descriptor: a descriptor number is
// reused once its connection is closed. A closed connection leaves the epoll
// set by itself (no descriptor is duplicated), and every epoll_ctl on one is
// made inside RawConn.Control, which keeps the descriptor open meanwhile.
type poller struct {
	epfd int
	wake [2]int // a pipe; a byte in wake[1] ends the wait loop
	done chan struct{}

	mu       sync.Mutex
	closed   bool // no more events are handled
	released bool // close ran: the descriptors are gone
	conns    map[uint64]watched
	next     uint64
}

type watched struct {
	s *session
	c *wsConn
}

const pollEvents = syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT

var errPollerClosed = errors.New("socketio: poller closed")

func newPoller() (*poller, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	p := &poller{epfd: epfd, done: make(chan struct{}), conns: make(map[uint64]watched)}
	if err := syscall.Pipe2(p.wake[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
		syscall.Close(epfd)
		return nil, err
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN} // token 0: the wake pipe
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, p.wake[0], &ev); err != nil {
		syscall.Close(epfd)
		syscall.Close(p.wake[0])
		syscall.Close(p.wake[1])
		return nil, err
	}
	go p.loop()
	return p, nil
}

// event returns the epoll event of token tok. The 64-bit data of an
// epoll_event is Fd and Pad in the syscall package's layout.
func event(tok uint64) syscall.EpollEvent {
	return syscall.EpollEvent{Events: pollEvents, Fd: int32(uint32(tok)), Pad: int32(uint32(tok >> 32))}
}

func token(ev *syscall.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
}

func (p *poller) loop() {
	defer close(p.done)
	var evs [128]syscall.EpollEvent
	for {
		n, err := syscall.EpollWait(p.epfd, evs[:], -1)
		if err != nil {
			if err == syscall.EINTR {
				continue
			}
			p.fail()
			return
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return
		}
		for i := range evs[:n] {
			if w, ok := p.conns[token(&evs[i])]; ok {
				go p.read(token(&evs[i]), w)
			}
		}
		p.mu.Unlock()
	}
}

// fail gives up on a broken epoll set (not expected): its connections are
// closed, so their clients reconnect, and new ones are read by goroutines.
func (p *poller) fail() {
	p.mu.Lock()
	p.closed = true
	all := make([]watched, 0, len(p.conns))
	for _, w := range p.conns {
		all = append(all, w)
	}
	clear(p.conns)
	p.mu.Unlock()
	for _, w := range all {
		w.s.close(ReasonTransportError, closeHard)
	}
}

// read runs the connection's reader, then re-arms it or forgets it.
func (p *poller) read(tok uint64, w watched) {
	if !w.s.readReady(w.c) {
		p.remove(w.c)
		return
	}
	p.mu.Lock()
	if _, ok := p.conns[tok]; !ok || p.closed {
		p.mu.Unlock()
		return // the session closed meanwhile (its transport goes with it)
	}
	ev := event(tok)
	var err error
	if cerr := w.c.rc.Control(func(fd uintptr) { err = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_MOD, int(fd), &ev) }); cerr != nil {
		err = cerr
	}
	if err != nil {
		delete(p.conns, tok)
	}
	p.mu.Unlock()
	if err != nil {
		w.s.close(ReasonTransportError, closeHard)
	}
}

// add starts watching c, the transport of s.
func (p *poller) add(s *session, c *wsConn) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errPollerClosed
	}
	p.next++
	tok := p.next
	ev := event(tok)
	var err error
	if cerr := c.rc.Control(func(fd uintptr) { err = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev) }); cerr != nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	c.tok = tok
	p.conns[tok] = watched{s, c}
	return nil
}

// remove stops watching c. The descriptor stays in the epoll set until the
// connection is closed, disarmed or firing at most once more, ignored.
func (p *poller) remove(c *wsConn) {
	p.mu.Lock()
	delete(p.conns, c.tok)
	p.mu.Unlock()
}

// close ends the wait loop and releases the epoll set; connections still
// watched are not closed by it.
func (p *poller) close() {
	p.mu.Lock()
	if p.released {
		p.mu.Unlock()
		return
	}
	p.closed, p.released = true, true
	clear(p.conns)
	p.mu.Unlock()
	_, _ = syscall.Write(p.wake[1], []byte{0})
	<-p.done
	syscall.Close(p.epfd)
	syscall.Close(p.wake[0])
	syscall.Close(p.wake[1])
}

// readNB reads what the socket holds without waiting; errAgain means
// nothing is there.
func (c *wsConn) readNB(b []byte) (int, error) {
	var n int
	var err error
	if cerr := c.rc.Read(func(fd uintptr) bool {
		for {
			n, err = syscall.Read(int(fd), b)
			if err != syscall.EINTR {
				return true // never wait in the runtime's poller
			}
		}
	}); cerr != nil {
		return 0, cerr
	}
	switch {
	case err == syscall.EAGAIN:
		return 0, errAgain
	case err != nil:
		return 0, err
	case n <= 0:
		return 0, errEOF
	}
	return n, nil
}
