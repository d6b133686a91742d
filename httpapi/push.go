package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/chatstate/chatstate"
)

// Devices keeps users' push tokens (the store).
type Devices interface {
	SetDeviceToken(ctx context.Context, userID string, t chatstate.DeviceToken) error
	RemoveDeviceToken(ctx context.Context, userID, deviceID string) error
}

// Notifications is the design's queuePushNotification and the in-app
// list (push.Notifier).
type Notifications interface {
	QueuePushNotification(ctx context.Context, n chatstate.Notification) (chatstate.Notification, int, error)
	Notifications(ctx context.Context, userID string, limit int) ([]chatstate.Notification, error)
}

// maxNotifications caps GET /v1/users/{id}/notifications.
const maxNotifications = 100

func (s *Server) pushRoutes() {
	if s.deps.Devices != nil {
		s.mux.HandleFunc("PUT /v1/users/{id}/devices/{deviceId}", s.auth(s.putDevice))
		s.mux.HandleFunc("DELETE /v1/users/{id}/devices/{deviceId}", s.auth(s.deleteDevice))
	}
	if s.deps.Notifications != nil {
		s.mux.HandleFunc("POST /v1/users/{id}/notifications", s.auth(s.postNotification))
		s.mux.HandleFunc("GET /v1/users/{id}/notifications", s.auth(s.listNotifications))
	}
}

// DeviceRequest registers a device's push token, over HTTP and as the
// socket event device:register.
type DeviceRequest struct {
	Platform  string `json:"platform"` // ios, android or web
	PushToken string `json:"pushToken"`
}

// Token validates the request as the token of deviceID.
func (d DeviceRequest) Token(deviceID string) (chatstate.DeviceToken, error) {
	t := chatstate.DeviceToken{DeviceID: deviceID, Platform: d.Platform, Token: d.PushToken, UpdatedAt: time.Now().UnixMilli()}
	return t, t.Validate(chatstate.MaxPushTokenLen)
}

func (s *Server) putDevice(w http.ResponseWriter, r *http.Request) {
	user, device := r.PathValue("id"), r.PathValue("deviceId")
	var req DeviceRequest
	if err := s.decode(w, r, &req); err != nil {
		s.error(w, r, err)
		return
	}
	if err := chatstate.ValidateID("userId", user); err != nil {
		s.error(w, r, err)
		return
	}
	t, err := req.Token(device)
	if err == nil {
		err = s.deps.Devices.SetDeviceToken(r.Context(), user, t)
	}
	if err != nil {
		s.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"userId": user, "deviceId": device, "platform": t.Platform, "updatedAt": t.UpdatedAt})
}

func (s *Server) deleteDevice(w http.ResponseWriter, r *http.Request) {
	user, device := r.PathValue("id"), r.PathValue("deviceId")
	for _, f := range [...][2]string{{"userId", user}, {"deviceId", device}} {
		if err := chatstate.ValidateID(f[0], f[1]); err != nil {
			s.error(w, r, err)
			return
		}
	}
	if err := s.deps.Devices.RemoveDeviceToken(r.Context(), user, device); err != nil {
		s.error(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) postNotification(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Title    string             `json:"title"`
		Body     string             `json:"body"`
		Priority chatstate.Priority `json:"priority"`
		Data     map[string]string  `json:"data"`
	}
	if err := s.decode(w, r, &req); err != nil {
		s.error(w, r, err)
		return
	}
	if req.Title == "" && req.Body == "" {
		s.error(w, r, chatstate.Errorf(chatstate.EINVALID, "title or body is required"))
		return
	}
	n, pushes, err := s.deps.Notifications.QueuePushNotification(r.Context(), chatstate.Notification{
		UserID: r.PathValue("id"), Title: req.Title, Body: req.Body, Priority: req.Priority, Data: req.Data})
	if err != nil {
		s.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"notification": n, "pushes": pushes})
}

func (s *Server) listNotifications(w http.ResponseWriter, r *http.Request) {
	limit := maxNotifications
	if v := r.URL.Query().Get("limit"); v != "" {
		l, err := strconv.Atoi(v)
		if err != nil || l < 1 || l > maxNotifications {
			s.error(w, r, chatstate.Errorf(chatstate.EINVALID, "limit must be 1..%d", maxNotifications))
			return
		}
		limit = l
	}
	list, err := s.deps.Notifications.Notifications(r.Context(), r.PathValue("id"), limit)
	if err != nil {
		s.error(w, r, err)
		return
	}
	if list == nil {
		list = []chatstate.Notification{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"notifications": list})
}
