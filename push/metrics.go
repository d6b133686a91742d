package push

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics of the push pipeline. A nil *Metrics records nothing.
type Metrics struct {
	outcomes *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	queued   *prometheus.CounterVec
	depth    *prometheus.GaugeVec
}

// NewMetrics registers the push metrics with reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "chatstate_push_total",
			Help: "Push sends by provider and outcome: sent, retried, dead, token_gone; provider notifier: message rounds retried, failed or dropped."}, []string{"provider", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "chatstate_push_send_seconds",
			Help: "Provider call latency.", Buckets: prometheus.DefBuckets}, []string{"provider"}),
		queued: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "chatstate_push_queued_total",
			Help: "Push jobs queued, by priority."}, []string{"priority"}),
		depth: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "chatstate_push_queue_depth",
			Help: "Push jobs by state at the last sweep: high, normal, leased, retry, dead."}, []string{"state"}),
	}
	if reg != nil {
		reg.MustRegister(m.outcomes, m.latency, m.queued, m.depth)
	}
	return m
}

func (m *Metrics) count(provider, outcome string) {
	if m != nil {
		m.outcomes.WithLabelValues(provider, outcome).Inc()
	}
}

func (m *Metrics) observeSend(provider string, d time.Duration) {
	if m != nil {
		m.latency.WithLabelValues(provider).Observe(d.Seconds())
	}
}

func (m *Metrics) addQueued(priority string, n int) {
	if m != nil && n > 0 {
		m.queued.WithLabelValues(priority).Add(float64(n))
	}
}

// SetDepth records the queue's sizes (the Cleanup sweep calls it).
func (m *Metrics) SetDepth(state string, n int) {
	if m != nil {
		m.depth.WithLabelValues(state).Set(float64(n))
	}
}
