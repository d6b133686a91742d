package socketio

import (
	"io"
	"net/http"
	"time"
)

// handlePoll answers a long-polling GET with what is queued, waiting for
// data (at the latest the next ping) when the queue is empty.
func (s *session) handlePoll(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.transport != transportPolling || s.finalSent {
		s.mu.Unlock()
		writeError(w, http.StatusBadRequest, errCodeBadRequest)
		return
	}
	if s.polling {
		// Two concurrent polls break ordering: the reference closes the
		// session, and the pending poll receives the close packet.
		s.mu.Unlock()
		writeError(w, http.StatusBadRequest, errCodeBadRequest)
		s.close(ReasonTransportError, closeServer)
		return
	}
	s.polling = true
	for {
		if len(s.queue) > 0 {
			batch := s.queue
			s.queue = nil
			s.polling = false
			s.mu.Unlock()
			writePoll(w, batch)
			return
		}
		if s.noop && !s.closed && s.transport == transportPolling {
			// Upgrade probed: like the reference server (which answers
			// polls from a 100ms check), give the client's upgrade packet
			// until then; a poll that sees the upgrade complete is refused.
			up, wait := s.upgraded, time.Duration(s.probeAt+int64(100*time.Millisecond)-s.e.timers.now())
			s.mu.Unlock()
			t := time.NewTimer(wait)
			select {
			case <-up:
			case <-t.C:
			case <-r.Context().Done():
			}
			t.Stop()
			s.mu.Lock()
			if s.transport != transportPolling {
				s.polling = false
				s.mu.Unlock()
				writeError(w, http.StatusBadRequest, errCodeBadRequest)
				return
			}
			if len(s.queue) > 0 {
				continue
			}
		}
		if !s.closed && s.transport != transportPolling {
			// Upgraded while this poll waited: it belongs to the old
			// transport (the client sends the upgrade only after its
			// last poll has returned).
			s.polling = false
			s.mu.Unlock()
			writeError(w, http.StatusBadRequest, errCodeBadRequest)
			return
		}
		if s.closed || s.noop {
			f, closing := frameNoop, s.closed
			if closing {
				f = frameClose
				if s.final != nil {
					f = s.final
				}
				s.finalSent = true
			}
			s.polling = false
			s.mu.Unlock()
			writePoll(w, []*Frame{f})
			if closing {
				s.e.unregister(s)
			}
			return
		}
		s.mu.Unlock()
		select {
		case <-s.wake:
		case <-r.Context().Done():
			s.mu.Lock()
			s.polling = false
			s.mu.Unlock()
			s.close(ReasonTransportClose, closeHard)
			return
		}
		s.mu.Lock()
	}
}

func writePoll(w http.ResponseWriter, batch []*Frame) {
	n := len(batch) - 1
	for _, f := range batch {
		n += len(f.pollBytes())
	}
	b := make([]byte, 0, n)
	for i, f := range batch {
		if i > 0 {
			b = append(b, recordSep)
		}
		b = append(b, f.pollBytes()...)
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=UTF-8")
	_, _ = w.Write(b)
}

// handlePost reads a polling payload (bounded by MaxPayload and
// MaxPacketsPerPayload) and processes its packets in order.
func (s *session) handlePost(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.closed || s.transport != transportPolling {
		s.mu.Unlock()
		writeError(w, http.StatusBadRequest, errCodeBadRequest)
		return
	}
	if s.posting {
		s.mu.Unlock()
		writeError(w, http.StatusBadRequest, errCodeBadRequest)
		s.close(ReasonTransportError, closeHard)
		return
	}
	s.posting = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.posting = false
		s.mu.Unlock()
	}()

	max := int64(s.e.cfg.MaxPayload)
	if r.ContentLength > max {
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		s.close(ReasonTransportError, closeHard)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	if err != nil {
		if _, ok := err.(*http.MaxBytesError); ok {
			w.WriteHeader(http.StatusRequestEntityTooLarge)
		} else {
			writeError(w, http.StatusBadRequest, errCodeBadRequest)
		}
		s.close(ReasonTransportError, closeHard)
		return
	}
	s.readMu.Lock()
	err = decodePayload(body, s.e.cfg.MaxPacketsPerPayload, s.handlePacket)
	s.readMu.Unlock()
	if err != nil && err != errClientClose && err != ErrClosed && err != ErrQueueFull {
		writeError(w, http.StatusBadRequest, errCodeBadRequest)
		s.close(ReasonParseError, closeHard)
		return
	}
	w.Header().Set("Content-Type", "text/html")
	_, _ = w.Write([]byte("ok"))
}
