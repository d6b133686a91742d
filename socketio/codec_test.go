package socketio

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

var testLimits = limits{maxAttachments: 10, maxEventName: 256, maxDepth: 32}

func TestDecodeSIO(t *testing.T) {
	ok := []struct {
		in     string
		typ    int
		nsp    string
		id     int64
		attach int
		event  string
		nargs  int
	}{
		{"0", sioConnect, "/", -1, 0, "", 0},
		{`0{"token":"1"}`, sioConnect, "/", -1, 0, "", 0},
		{"0/admin,", sioConnect, "/admin", -1, 0, "", 0},
		{"0/random", sioConnect, "/random", -1, 0, "", 0},
		{"1", sioDisconnect, "/", -1, 0, "", 0},
		{`2["foo"]`, sioEvent, "/", -1, 0, "foo", 0},
		{`212["foo",1,{"a":[true]}]`, sioEvent, "/", 12, 0, "foo", 2},
		{`3/admin,13["bar"]`, sioAck, "/admin", 13, 0, "", 1},
		{`31[]`, sioAck, "/", 1, 0, "", 0},
		{`51-["baz",{"_placeholder":true,"num":0}]`, sioBinaryEvent, "/", -1, 1, "baz", 1},
		{`61-15["bar",{"_placeholder":true,"num":0}]`, sioBinaryAck, "/", 15, 1, "", 2},
	}
	for _, c := range ok {
		p, err := decodeSIO([]byte(c.in), testLimits)
		if err != nil {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		if p.typ != c.typ || p.nsp != c.nsp || p.id != c.id || p.attach != c.attach || p.event != c.event || len(p.argsJSON) != c.nargs {
			t.Errorf("%q: got %+v", c.in, p)
		}
	}
	bad := []string{
		"", "7", "abc", "2", "2{}", `2[]`, `2[1]`, "2abc[\"x\"]", `2["x"`, "1{}", "0[1]", "3[]",
		`511-["x"]`, `5-["x"]`, `5x-["x"]`, `21-["x"]`, `29999999999999999["x"]`,
		`2["` + strings.Repeat("a", 300) + `"]`,
		"2" + strings.Repeat("[", 40) + strings.Repeat("]", 40),
	}
	for _, in := range bad {
		if _, err := decodeSIO([]byte(in), testLimits); err == nil {
			t.Errorf("%q: accepted", in)
		}
	}
}

func TestEncodeEvent(t *testing.T) {
	f, err := EncodeEvent("msg", 1, "two", json.RawMessage(`{"3":[true]}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(f.text), `42["msg",1,"two",{"3":[true]},null]`; got != want {
		t.Fatalf("got %s want %s", got, want)
	}
	f, err = EncodeEvent("bin", []byte{1, 2}, "x", []byte{3})
	if err != nil {
		t.Fatal(err)
	}
	want := `452-["bin",{"_placeholder":true,"num":0},"x",{"_placeholder":true,"num":1}]`
	if string(f.text) != want || len(f.bins) != 2 || !bytes.Equal(f.bins[1], []byte{3}) {
		t.Fatalf("got %s %v", f.text, f.bins)
	}
	if got := string(f.pollBytes()); got != want+"\x1ebAQI=\x1ebAw==" {
		t.Fatalf("polling form %q", got)
	}
	if _, err := EncodeEvent("x", json.RawMessage(`{bad`)); err == nil {
		t.Fatal("invalid raw JSON accepted")
	}
	if _, err := EncodeEvent(""); err == nil {
		t.Fatal("empty event accepted")
	}
	if _, err := EncodeEvent("x", func() {}); err == nil {
		t.Fatal("unmarshalable arg accepted")
	}
	text, _, _ := encodeSIO("", 7, []any{"a"})
	if string(text) != `437["a"]` {
		t.Fatalf("ack %s", text)
	}
	text, bins, _ := encodeSIO("", 789, []any{[]byte{1}})
	if string(text) != `461-789[{"_placeholder":true,"num":0}]` || len(bins) != 1 {
		t.Fatalf("binary ack %s", text)
	}
}

func TestDecodePayload(t *testing.T) {
	var got []enginePacket
	err := decodePayload([]byte("4hello\x1ebAQIDBA==\x1e2\x1e3"), 10, func(p enginePacket) error {
		got = append(got, p)
		return nil
	})
	if err != nil || len(got) != 4 {
		t.Fatalf("err %v packets %d", err, len(got))
	}
	if string(got[0].data) != "hello" || !got[1].binary || !bytes.Equal(got[1].data, []byte{1, 2, 3, 4}) || got[2].typ != eioPing {
		t.Fatalf("bad decode %+v", got)
	}
	for _, in := range []string{"", "abc", "4a\x1e", "b!!!", "9"} {
		if err := decodePayload([]byte(in), 10, func(enginePacket) error { return nil }); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
	if err := decodePayload([]byte(strings.Repeat("3\x1e", 10)+"3"), 10, func(enginePacket) error { return nil }); err != errTooMany {
		t.Fatalf("11 packets: %v", err)
	}
}

func FuzzEnginePayload(f *testing.F) {
	for _, s := range []string{"4hello", "4a\x1ebAQID\x1e2", "1", "6", "b", "4\x1e\x1e", "2probe", "bAQIDBA=="} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		n := 0
		_ = decodePayload(in, 16, func(p enginePacket) error {
			n++
			if p.typ < eioOpen || p.typ > eioNoop {
				t.Fatalf("bad type %q", p.typ)
			}
			return nil
		})
		if n > 16 {
			t.Fatalf("%d packets over the limit", n)
		}
		_, _ = decodeEngineText(in)
	})
}

func FuzzSIODecode(f *testing.F) {
	for _, s := range []string{"0", `0{"a":1}`, "0/admin,", "1", `2["a",1]`, `212["a"]`, `3/x,1[]`,
		`52-["a",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`, `61-9[]`, "4abc", `2[[[[[]]]]]`, `2["\"",1]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		p, err := decodeSIO(in, testLimits)
		if err != nil {
			return
		}
		if p.attach > testLimits.maxAttachments || p.id > maxAckID || len(p.event) > testLimits.maxEventName {
			t.Fatalf("limits not enforced: %+v", p)
		}
		if (p.typ == sioEvent || p.typ == sioBinaryEvent) && p.event == "" && !bytes.Contains(in, []byte(`""`)) {
			t.Fatalf("event without name accepted: %q", in)
		}
	})
}
