package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chatstate/chatstate/internal/pushtest"
	"github.com/chatstate/chatstate/internal/redistest"
	"github.com/chatstate/chatstate/pushqueue"
)

const pushSecret = "push-webhook-secret-e2e"

// TestPushE2E runs testdata/e2e/push.test.mjs: two gateways push to a
// webhook that the Node test serves itself, so it sees every signed POST.
func TestPushE2E(t *testing.T) {
	redis := redistest.StartServer(t)
	port := freeTCPPort(t)
	env := faultEnv(t, redis)
	env["CHATSTATE_PUSH_WEBHOOK_URL"] = fmt.Sprintf("http://127.0.0.1:%d/push", port)
	env["CHATSTATE_PUSH_WEBHOOK_SECRET"] = pushSecret
	gws := startGateways(t, env, "a", "b")
	runNodeTests(t, []string{
		"GATEWAY_A=" + gws[0].URL, "GATEWAY_B=" + gws[1].URL,
		"CHATSTATE_API_KEY=" + env["CHATSTATE_API_KEY"], "CHATSTATE_JWT_SECRET=" + env["CHATSTATE_JWT_SECRET"],
		fmt.Sprintf("PUSH_HOOK_PORT=%d", port), "PUSH_HOOK_SECRET=" + pushSecret,
	}, "push.test.mjs")
	// The senders' node (A) queued the pushes and counted its acks and
	// Redis script calls; either node's worker may have sent a push.
	scrape := func(url string) []byte {
		res, err := http.Get(url + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return body
	}
	a, b := scrape(gws[0].URL), scrape(gws[1].URL)
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^chatstate_push_queued_total\{priority="(high|normal)"\} [1-9]`),
		regexp.MustCompile(`(?m)^chatstate_gateway_send_ack_seconds_count\{code="ok"\} [1-9]`),
		regexp.MustCompile(`(?m)^chatstate_redis_script_seconds_count\{script="message_commit"\} [1-9]`),
	} {
		if !want.Match(a) {
			t.Errorf("node A's metrics lack %s:\n%s", want, grepLines(a, "chatstate_"))
		}
	}
	// push.test.mjs's webhook answered 2xx to seven pushes (and 410 to one);
	// each worker counts its sends right after the answer.
	sent := regexp.MustCompile(`(?m)^chatstate_push_total\{outcome="sent",provider="webhook"\} ([0-9]+)`)
	deadline := time.Now().Add(10 * time.Second)
	for {
		total := 0
		for _, m := range [][]byte{a, b} {
			if g := sent.FindSubmatch(m); g != nil {
				n, _ := strconv.Atoi(string(g[1]))
				total += n
			}
		}
		if total == 7 {
			break
		}
		if total > 7 || time.Now().After(deadline) {
			t.Fatalf("the nodes counted %d sent pushes, want the 7 the webhook took", total)
		}
		time.Sleep(50 * time.Millisecond)
		a, b = scrape(gws[0].URL), scrape(gws[1].URL)
	}
}

func TestPushWorkerKilledMidSend(t *testing.T) {
	redis := redistest.StartServer(t)
	hook := pushtest.NewWebhook(t, pushSecret)
	// The first POST is held until its sender dies; the next one succeeds.
	hook.Reply(pushtest.Reply{Delay: time.Minute})
	env := faultEnv(t, redis)
	env["CHATSTATE_PUSH_WEBHOOK_URL"] = hook.URL
	env["CHATSTATE_PUSH_WEBHOOK_SECRET"] = pushSecret
	// A is killed as soon as its POST arrives, well within its 4 s timeout.
	env["CHATSTATE_PUSH_TIMEOUT"] = "4s"
	env["CHATSTATE_PUSH_LEASE"] = "5s"
	a := startGateways(t, env, "a")[0]
	api := func(base, method, path, body string) int {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+env["CHATSTATE_API_KEY"])
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode
	}
	if c := api(a.URL, "PUT", "/v1/users/bob/devices/phone", `{"platform":"android","pushToken":"tok-1"}`); c != 200 {
		t.Fatalf("register device: %d", c)
	}
	if c := api(a.URL, "POST", "/v1/users/bob/notifications", `{"title":"hi","body":"wake up","priority":"high"}`); c != 201 {
		t.Fatalf("notify: %d", c)
	}
	first := hook.Wait(t, 1, 10*time.Second)[0]
	claimedAt := time.Now()
	a.cmd.Process.Signal(syscall.SIGKILL)
	a.cmd.Wait()

	b := startGateways(t, env, "b")[0]
	reqs := hook.Wait(t, 2, 60*time.Second)
	if !reqs[1].SignatureOK || reqs[1].Push.ID != first.Push.ID || reqs[1].Push.DeviceID != "phone" {
		t.Fatalf("redelivery %+v", reqs[1])
	}
	if since := reqs[1].At.Sub(claimedAt); since < 4*time.Second {
		t.Fatalf("redelivered %v after the claim, before the 5 s lease ended", since)
	}
	// Exactly once: the queue empties and nothing else arrives.
	q := pushqueue.New(redis.Client(t), pushqueue.Config{KeyPrefix: env["CHATSTATE_KEY_PREFIX"]})
	ctx := redistest.Ctx(t)
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := q.Recover(ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		if st.High+st.Normal+st.Leased+st.Retry == 0 {
			if st.Dead != 0 {
				t.Fatalf("dead letters: %+v", st)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue not empty: %+v", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := len(hook.Requests()); n != 2 {
		t.Fatalf("%d webhook requests, want the killed one and one delivery", n)
	}
	res, err := http.Get(b.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !bytes.Contains(body, []byte(`chatstate_push_total{outcome="sent",provider="webhook"} 1`)) {
		t.Fatalf("node B's metrics lack the sent push:\n%s", grepLines(body, "chatstate_push"))
	}
}

func grepLines(b []byte, sub string) string {
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
