package luascript

import (
	"os"
	"testing"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/internal/redistest"
)

func TestMain(m *testing.M) { os.Exit(redistest.Run(m)) }

func TestErrMapsCodedReplies(t *testing.T) {
	c, prefix := redistest.Start(t)
	ctx := redistest.Ctx(t)
	s := New(`if ARGV[1] == "coded" then return redis.error_reply("not_found no such thing") end
return redis.call("SET", KEYS[1], "v")`)
	err := Err(s.Exec(ctx, c, []string{prefix + "k"}, []string{"coded"}).Error())
	if chatstate.ErrorCode(err) != chatstate.ENOTFOUND || chatstate.ErrorMessage(err) != "no such thing" {
		t.Fatalf("got %v", err)
	}
	if err := Err(s.Exec(ctx, c, []string{prefix + "k"}, []string{"plain"}).Error()); err != nil {
		t.Fatal(err)
	}
	// A Lua runtime error is not a domain error.
	bad := New(`return redis.call("NOSUCHCOMMAND")`)
	if err := Err(bad.Exec(ctx, c, nil, nil).Error()); err == nil || chatstate.ErrorCode(err) != chatstate.EINTERNAL {
		t.Fatalf("want internal error, got %v", err)
	}
}
