package chatstate

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestPushErrorContract(t *testing.T) {
	gone := fmt.Errorf("apns answered 410: %w", ErrTokenGone)
	if !errors.Is(gone, ErrTokenGone) || ErrorCode(gone) != ENOTFOUND || Retryable(gone) {
		t.Fatalf("wrapped ErrTokenGone: is %v, code %s, retryable %v", errors.Is(gone, ErrTokenGone), ErrorCode(gone), Retryable(gone))
	}
	retry := &Error{Code: EUNAVAILABLE, Message: "503", RetryAfter: 2 * time.Second}
	for _, err := range []error{retry, fmt.Errorf("fcm: %w", retry), Errorf(ERATELIMITED, "slow down")} {
		if !Retryable(err) {
			t.Errorf("%v: want retryable", err)
		}
	}
	for _, err := range []error{nil, errors.New("plain"), Errorf(EINVALID, "bad"), ErrTokenGone} {
		if Retryable(err) {
			t.Errorf("%v: want not retryable", err)
		}
	}
}

func TestValidatePlatformAndToken(t *testing.T) {
	for _, p := range []string{"ios", "android", "web"} {
		if err := ValidatePlatform(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	for _, p := range []string{"", "IOS", "windows", "ios "} {
		if err := ValidatePlatform(p); ErrorCode(err) != EINVALID {
			t.Errorf("%q: want invalid, got %v", p, err)
		}
	}
	if err := ValidatePushToken("dGVzdA:APA91b-xyz_0"); err != nil {
		t.Error(err)
	}
	for _, tok := range []string{"", "a b", "tab\t", "ü", strings.Repeat("a", MaxPushTokenLen+1)} {
		if err := ValidatePushToken(tok); ErrorCode(err) != EINVALID {
			t.Errorf("%q: want invalid, got %v", tok, err)
		}
	}
}

func TestPushValidateAndJSON(t *testing.T) {
	p := Push{ID: "n1", UserID: "u1", DeviceID: "d1", Platform: PlatformAndroid, Token: "tok", Title: "t", Body: "b",
		Priority: PriorityHigh, CollapseKey: "c1", Data: map[string]string{"seq": "3"}}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(p)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"id", "userId", "deviceId", "platform", "token", "title", "body", "priority", "collapseKey", "data"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON %s has no %s", b, k)
		}
	}
	for _, bad := range []func(*Push){
		func(p *Push) { p.ID = "" },
		func(p *Push) { p.UserID = "a b" },
		func(p *Push) { p.DeviceID = "" },
		func(p *Push) { p.Platform = "pager" },
		func(p *Push) { p.Token = "" },
		func(p *Push) { p.Priority = "" },
	} {
		q := p
		bad(&q)
		if err := q.Validate(); ErrorCode(err) != EINVALID {
			t.Errorf("%+v: want invalid, got %v", q, err)
		}
	}
}
