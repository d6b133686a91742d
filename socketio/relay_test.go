package socketio

import "testing"

func TestEncodeEventPacketRelays(t *testing.T) {
	p, err := EncodeEventPacket("message:new", map[string]any{"seq": 1})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(p), `42["message:new",{"seq":1}]`; got != want {
		t.Fatalf("packet %s, want %s", got, want)
	}
	f := RawFrame(p)
	direct, _ := EncodeEvent("message:new", map[string]any{"seq": 1})
	if string(f.pollBytes()) != string(direct.pollBytes()) {
		t.Fatalf("relayed frame %q differs from a direct one %q", f.pollBytes(), direct.pollBytes())
	}
	pre, suf, err := EventPacketTemplate("message:new")
	if err != nil {
		t.Fatal(err)
	}
	if got := string(pre) + `{"seq":1}` + string(suf); got != string(p) {
		t.Fatalf("template gives %s, want %s", got, p)
	}
	if _, err := EncodeEventPacket("bin", []byte{1}); err == nil {
		t.Fatal("binary argument must be refused")
	}
	if _, err := EncodeEventPacket(""); err == nil {
		t.Fatal("empty event must be refused")
	}
}
