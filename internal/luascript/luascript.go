// Package luascript runs chatstate's Lua scripts and maps their error
// replies to typed errors.
//
// Scripts live one per file as <area>_<verb>.lua beside the package that
// runs them, embedded with //go:embed. A single call goes through rueidis.Lua:
// EVALSHA, and EVAL on NOSCRIPT, so a restarted or failed-over Redis needs no
// SCRIPT LOAD step. Pipeline does the same for several scripts in one
// DoMulti (rueidis' Lua.ExecMulti would send SCRIPT LOAD first, an extra
// round trip on every call).
//
// A script reports a domain error with redis.error_reply("<code> <message>"),
// where <code> is one of chatstate's error codes (e.g. "not_found no such
// session"); Err turns that into a *chatstate.Error.
package luascript

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/rueidis"
)

// Script is one Lua script.
type Script struct {
	Name string // file name without .lua
	Src  string // the source as sent to Redis
	SHA  string // SHA1 of Src, as EVALSHA wants it
	lua  *rueidis.Lua
}

// New returns a script named name with source src.
func New(name, src string) *Script {
	sum := sha1.Sum([]byte(src))
	return &Script{Name: name, Src: src, SHA: hex.EncodeToString(sum[:]), lua: rueidis.NewLuaScript(src)}
}

// Exec runs the script in one round trip (EVALSHA, EVAL on NOSCRIPT).
func (s *Script) Exec(ctx context.Context, c rueidis.Client, keys, args []string) rueidis.RedisResult {
	start := time.Now()
	r := s.lua.Exec(ctx, c, keys, args)
	latency.WithLabelValues(s.Name).Observe(time.Since(start).Seconds())
	return r
}

// latency is the Redis call latency of every script, by name: nearly all
// of chatstate's Redis work runs as scripts (Collectors registers it).
var latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
	Name: "chatstate_redis_script_seconds", Help: "Redis round trip of each Lua script call (Exec) and script pipeline (Pipeline, by its first script).",
	Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1}}, []string{"script"})

// Collectors are the package's metrics, for a Prometheus registry.
func Collectors() []prometheus.Collector { return []prometheus.Collector{latency} }

// Call is one invocation of a script inside a Pipeline.
type Call struct {
	Script     *Script
	Keys, Args []string
}

func (cl Call) evalsha(c rueidis.Client) rueidis.Completed {
	return c.B().Evalsha().Sha1(cl.Script.SHA).Numkeys(int64(len(cl.Keys))).Key(cl.Keys...).Arg(cl.Args...).Build()
}

func (cl Call) eval(c rueidis.Client) rueidis.Completed {
	return c.B().Eval().Script(cl.Script.Src).Numkeys(int64(len(cl.Keys))).Key(cl.Keys...).Arg(cl.Args...).Build()
}

// Pipeline sends calls followed by extra plain commands in one DoMulti.
// Scripts that fail with NOSCRIPT (Redis restarted, failed over or SCRIPT
// FLUSH) are resent with EVAL in a second round trip; plain commands are not
// resent. It returns one result per call, then one per extra command.
func Pipeline(ctx context.Context, c rueidis.Client, calls []Call, extra ...rueidis.Completed) []rueidis.RedisResult {
	if len(calls) > 0 {
		defer func(start time.Time) {
			latency.WithLabelValues(calls[0].Script.Name).Observe(time.Since(start).Seconds())
		}(time.Now())
	}
	cmds := make(rueidis.Commands, 0, len(calls)+len(extra))
	for _, cl := range calls {
		cmds = append(cmds, cl.evalsha(c))
	}
	cmds = append(cmds, extra...)
	res := c.DoMulti(ctx, cmds...)
	var retry []int
	for i := range calls {
		if re, ok := rueidis.IsRedisErr(res[i].Error()); ok && re.IsNoScript() {
			retry = append(retry, i)
		}
	}
	if len(retry) > 0 {
		again := make(rueidis.Commands, len(retry))
		for j, i := range retry {
			again[j] = calls[i].eval(c)
		}
		for j, r := range c.DoMulti(ctx, again...) {
			res[retry[j]] = r
		}
	}
	return res
}

// Sources returns name -> source of scripts, e.g. for redis-benchmark
// EVALSHA runs on the very code the services send.
func Sources(scripts ...*Script) map[string]string {
	m := make(map[string]string, len(scripts))
	for _, s := range scripts {
		m[s.Name] = s.Src
	}
	return m
}

var codes = map[string]bool{
	chatstate.EINVALID: true, chatstate.ENOTFOUND: true, chatstate.EFORBIDDEN: true,
	chatstate.ERATELIMITED: true, chatstate.ECONFLICT: true, chatstate.ETOOLARGE: true,
}

// Err maps any error of a Redis call for clients, so every state package
// (cache, presence, directory, the gateway's own Redis writes) reports Redis
// the same way: a script's coded error reply becomes that *chatstate.Error;
// Redis being unreachable or not serving (connection refused or lost, the
// client closing, a deadline while waiting, LOADING, MASTERDOWN, READONLY
// during a failover, TRYAGAIN, CLUSTERDOWN, no node for a slot) becomes
// chatstate.Unavailable; anything else (a Lua runtime error, NOSCRIPT after
// the fallback) stays as it is and so is internal.
// An error that already has a code is returned as it is.
func Err(err error) error {
	var ce *chatstate.Error
	if err == nil || errors.As(err, &ce) {
		return err
	}
	var re *rueidis.RedisError
	if !errors.As(err, &re) {
		if errors.Is(err, rueidis.ErrClosing) || errors.Is(err, rueidis.ErrNoSlot) ||
			errors.Is(err, rueidis.ErrDoCacheAborted) || chatstate.IsOutage(err) {
			return chatstate.Unavailable("redis", err)
		}
		return err
	}
	msg := re.Error()
	code, rest, _ := strings.Cut(msg, " ")
	if codes[code] {
		return &chatstate.Error{Code: code, Message: rest}
	}
	if outageReplies[code] {
		return chatstate.Unavailable("redis", err)
	}
	return err
}

// outageReplies are the error replies of a Redis that is up but cannot
// serve yet: restarting, failing over or resharding.
var outageReplies = map[string]bool{
	"LOADING": true, "MASTERDOWN": true, "READONLY": true, "TRYAGAIN": true,
	"CLUSTERDOWN": true, "NOREPLICAS": true, "BUSY": true,
}

// PerKey makes the calls that run script s over keys, each key alike with
// the same args: one call holding every key on a standalone or Sentinel
// client, where a script may touch keys of any slot, and one call per key
// on a Cluster client, where a script's keys must share a slot. s must
// loop over KEYS and reply one element per key. A per-key pipeline costs
// Redis a script invocation per key, the most expensive part of small
// scripts, so batching them is most of a fan-out's Redis time.
func PerKey(c rueidis.Client, s *Script, keys, args []string) []Call {
	if len(keys) == 0 {
		return nil
	}
	if c.Mode() != rueidis.ClientModeCluster {
		return []Call{{Script: s, Keys: keys, Args: args}}
	}
	calls := make([]Call, len(keys))
	for i, k := range keys {
		calls[i] = Call{Script: s, Keys: []string{k}, Args: args}
	}
	return calls
}
