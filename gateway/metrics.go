package gateway

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	connections      prometheus.Gauge
	delivered        prometheus.Counter
	dropped          *prometheus.CounterVec
	badEnvelopes     prometheus.Counter
	pubsubReconnects prometheus.Counter
	events           *prometheus.CounterVec
	messages         prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chatstate_gateway_connections", Help: "Sockets connected to this node."}),
		delivered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chatstate_gateway_deliveries_total", Help: "Frames handed to local sockets from Pub/Sub."}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chatstate_gateway_dropped_total", Help: "Deliveries not made, by reason."}, []string{"reason"}),
		badEnvelopes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chatstate_gateway_bad_envelopes_total", Help: "Pub/Sub messages that were not gateway envelopes."}),
		pubsubReconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chatstate_gateway_pubsub_reconnects_total", Help: "Times the Pub/Sub connection was lost and restored; publications in the gap were not delivered live."}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chatstate_gateway_events_total", Help: "Client events handled, by event and result code."}, []string{"event", "code"}),
		messages: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chatstate_gateway_messages_total", Help: "New messages accepted (duplicates excluded)."}),
	}
	if reg != nil {
		reg.MustRegister(m.connections, m.delivered, m.dropped, m.badEnvelopes, m.pubsubReconnects, m.events, m.messages)
	}
	return m
}
