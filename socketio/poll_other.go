//go:build !linux

package socketio

import "errors"

// poller exists on Linux only (poll_linux.go); elsewhere every websocket
// connection is read by a goroutine of its own.
type poller struct{}

func newPoller() (*poller, error) { return nil, errors.New("socketio: no poller on this system") }

func (p *poller) add(*session, *wsConn) error { return errors.New("socketio: no poller") }
func (p *poller) remove(*wsConn)              {}
func (p *poller) close()                      {}

func (c *wsConn) readNB([]byte) (int, error) { return 0, errAgain }
