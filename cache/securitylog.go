package cache

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/chatstate/chatstate"
)

// maxIPLen fits an IPv6 address with a zone.
const maxIPLen = 64

type securityEventBody struct {
	Type     string            `json:"type"`
	IP       string            `json:"ip,omitempty"`
	DeviceID string            `json:"deviceId,omitempty"`
	Details  map[string]string `json:"details,omitempty"`
}

// LogSecurityEvent prepends ev to the user's security log (newest first,
// capped at SecurityLogLimit, kept SecurityLogTTL after the last event).
// ev.At 0 means Redis time.
func (c *Cache) LogSecurityEvent(ctx context.Context, userID string, ev chatstate.SecurityEvent) error {
	if err := chatstate.ValidateID("userId", userID); err != nil {
		return err
	}
	if err := chatstate.ValidateID("event type", ev.Type); err != nil {
		return err
	}
	if ev.DeviceID != "" {
		if err := chatstate.ValidateID("deviceId", ev.DeviceID); err != nil {
			return err
		}
	}
	if len(ev.IP) > maxIPLen {
		return chatstate.Errorf(chatstate.EINVALID, "ip is longer than %d bytes", maxIPLen)
	}
	if ev.At < 0 || ev.At >= chatstate.MaxSeq {
		return chatstate.Errorf(chatstate.EINVALID, "at %d out of range", ev.At)
	}
	body, err := json.Marshal(securityEventBody{Type: ev.Type, IP: ev.IP, DeviceID: ev.DeviceID, Details: ev.Details})
	if err != nil {
		return err
	}
	if len(body) > c.cfg.MaxValueBytes {
		return chatstate.Errorf(chatstate.ETOOLARGE, "security event is %d bytes, the limit is %d", len(body), c.cfg.MaxValueBytes)
	}
	return mapErr(scriptSecurityLogAdd.Exec(ctx, c.client, []string{c.keys.SecurityLog(userID)},
		[]string{string(body), itoa(ev.At), itoa(int64(c.cfg.SecurityLogLimit)), ms(c.cfg.SecurityLogTTL)}).Error())
}

// SecurityEvents returns a user's security events, newest first. limit 0 (or
// above SecurityLogLimit) means SecurityLogLimit.
func (c *Cache) SecurityEvents(ctx context.Context, userID string, limit int) ([]chatstate.SecurityEvent, error) {
	if err := chatstate.ValidateID("userId", userID); err != nil {
		return nil, err
	}
	l, err := limitArg("limit", limit, c.cfg.SecurityLogLimit)
	if err != nil {
		return nil, err
	}
	raws, err := c.client.Do(ctx, c.client.B().Lrange().Key(c.keys.SecurityLog(userID)).Start(0).Stop(int64(l-1)).Build()).AsStrSlice()
	if err != nil {
		return nil, mapErr(err)
	}
	out := make([]chatstate.SecurityEvent, 0, len(raws))
	for _, raw := range raws {
		var ev chatstate.SecurityEvent
		if err := json.Unmarshal([]byte(raw), &ev); err != nil {
			return nil, fmt.Errorf("cache: stored security event: %w", err)
		}
		out = append(out, ev)
	}
	return out, nil
}

// RememberDevice records a login of the user from deviceID and reports
// whether it is a new device: one the user has not logged in from within
// KnownDevicesTTL (a reconnect of a known device is not).
func (c *Cache) RememberDevice(ctx context.Context, userID, deviceID string) (bool, error) {
	if err := chatstate.ValidateID("userId", userID); err != nil {
		return false, err
	}
	if err := chatstate.ValidateID("deviceId", deviceID); err != nil {
		return false, err
	}
	n, err := scriptDeviceRemember.Exec(ctx, c.client, []string{c.keys.KnownDevices(userID)},
		[]string{deviceID, ms(c.cfg.KnownDevicesTTL), itoa(int64(c.cfg.MaxKnownDevices))}).AsInt64()
	return n == 1, mapErr(err)
}
