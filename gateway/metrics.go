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
	sendAck          *prometheus.HistogramVec
	offlinePending   prometheus.Gauge
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
		sendAck: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "chatstate_gateway_send_ack_seconds", Help: "From a message:send arriving to its ack, by result code.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}}, []string{"code"}),
		offlinePending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chatstate_gateway_offline_pending", Help: "Closed sockets whose device Redis has not taken offline yet (an outage); retried until it answers."}),
	}
	if reg != nil {
		reg.MustRegister(m.connections, m.delivered, m.dropped, m.badEnvelopes, m.pubsubReconnects, m.events, m.messages, m.sendAck, m.offlinePending)
	}
	return m
}
