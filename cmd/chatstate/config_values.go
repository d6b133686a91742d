package main

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// Parsing and formatting of the settings' values (config.go's table).

func parseInt(v string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("want an integer from %d to %d", lo, hi)
	}
	return n, nil
}

func parseBool(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "1", "true", "yes":
		return true, nil
	case "0", "false", "no":
		return false, nil
	}
	return false, errors.New("want true or false")
}

func claimValue(v string) (string, error) {
	if len(v) > maxClaimLen || strings.ContainsFunc(v, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return "", fmt.Errorf("want at most %d bytes without control characters", maxClaimLen)
	}
	return v, nil
}

// durationSetting parses Go durations ("60s", "1m30s") and plain seconds
// ("60") within [lo, hi] into the field dst returns.
func durationSetting(dst func(*config) *time.Duration, lo, hi time.Duration) func(*config, string) error {
	return func(c *config, v string) error {
		d, err := time.ParseDuration(v)
		if n, aerr := strconv.Atoi(v); aerr == nil {
			d, err = time.Duration(n)*time.Second, nil
		}
		if err != nil || d < lo || d > hi {
			return fmt.Errorf("want a duration from %s to %s, such as 60s or 1m30s", fmtDuration(lo), fmtDuration(hi))
		}
		*dst(c) = d
		return nil
	}
}

// fmtDuration is d without zero units: 24h rather than 24h0m0s.
func fmtDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// hostPorts parses a comma-separated list of host:port addresses.
func hostPorts(v string) ([]string, error) {
	addrs := splitList(v)
	for _, a := range addrs {
		host, port, err := net.SplitHostPort(a)
		if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 1 || n > 65535 || host == "" {
			return nil, errors.New("want comma-separated host:port addresses")
		}
	}
	if len(addrs) == 0 {
		return nil, errors.New("want comma-separated host:port addresses")
	}
	return addrs, nil
}

func isHostName(s string) bool {
	if len(s) > 253 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// isLoopback reports whether addr only accepts local connections. An empty
// host (every interface) or a name other than localhost is not.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
