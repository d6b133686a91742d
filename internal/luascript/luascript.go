// Package luascript runs chatstate's Lua scripts and maps their error
// replies to typed errors.
//
// Scripts live one per file as <area>_<verb>.lua beside the package that
// runs them, embedded with //go:embed. rueidis.Lua sends EVALSHA and falls
// back to EVAL on NOSCRIPT, so a restarted or failed-over Redis needs no
// SCRIPT LOAD step.
//
// A script reports a domain error with redis.error_reply("<code> <message>"),
// where <code> is one of chatstate's error codes (e.g. "not_found no such
// session"); Err turns that into a *chatstate.Error.
package luascript

import (
	"errors"
	"strings"

	"github.com/chatstate/chatstate"
	"github.com/redis/rueidis"
)

// New returns a script run with EVALSHA and an EVAL fallback.
func New(src string) *rueidis.Lua { return rueidis.NewLuaScript(src) }

var codes = map[string]bool{
	chatstate.EINVALID: true, chatstate.ENOTFOUND: true, chatstate.EFORBIDDEN: true,
	chatstate.ERATELIMITED: true, chatstate.ECONFLICT: true, chatstate.ETOOLARGE: true,
}

// Err maps a script's error reply to *chatstate.Error and leaves every other
// error (network, NOSCRIPT after fallback, Lua runtime) as it is.
func Err(err error) error {
	if err == nil {
		return nil
	}
	var re *rueidis.RedisError
	if !errors.As(err, &re) {
		return err
	}
	msg := re.Error()
	code, rest, _ := strings.Cut(msg, " ")
	if codes[code] {
		return &chatstate.Error{Code: code, Message: rest}
	}
	return err
}
