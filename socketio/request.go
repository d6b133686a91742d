package socketio

import (
	"crypto/tls"
	"net/http"
	"net/textproto"
	"net/url"
)

// handshake is what a session keeps of its handshake request for
// Conn.Request: a few strings and the header as a flat list, instead of the
// request with its header map, URL and context (about 1 KiB per idle
// connection).
type handshake struct {
	method, uri, proto, host, remote string
	header                           []string // key, value, key, value...
	tls                              *tls.ConnectionState
}

// handshakeOnly are the headers of the websocket opening handshake: they
// describe the transport, not the client, and are not kept.
var handshakeOnly = map[string]bool{
	"Connection":               true,
	"Upgrade":                  true,
	"Sec-Websocket-Key":        true,
	"Sec-Websocket-Version":    true,
	"Sec-Websocket-Extensions": true,
}

func newHandshake(r *http.Request) handshake {
	h := handshake{method: r.Method, uri: r.RequestURI, proto: r.Proto, host: r.Host, remote: r.RemoteAddr, tls: r.TLS}
	n := 0
	for k, vs := range r.Header {
		if !handshakeOnly[k] {
			n += 2 * len(vs)
		}
	}
	if n > 0 {
		h.header = make([]string, 0, n)
		for k, vs := range r.Header {
			if !handshakeOnly[k] {
				for _, v := range vs {
					h.header = append(h.header, k, v)
				}
			}
		}
	}
	return h
}

// request rebuilds the handshake request: a new one on every call, with no
// body and the background context.
func (h *handshake) request() *http.Request {
	r := &http.Request{Method: h.method, RequestURI: h.uri, Proto: h.proto, Host: h.host, RemoteAddr: h.remote,
		TLS: h.tls, Header: make(http.Header, len(h.header)/2), Body: http.NoBody}
	r.ProtoMajor, r.ProtoMinor, _ = http.ParseHTTPVersion(h.proto)
	if u, err := url.ParseRequestURI(h.uri); err == nil {
		r.URL = u
	} else {
		r.URL = &url.URL{}
	}
	for i := 0; i+1 < len(h.header); i += 2 {
		k := textproto.CanonicalMIMEHeaderKey(h.header[i])
		r.Header[k] = append(r.Header[k], h.header[i+1])
	}
	return r
}
