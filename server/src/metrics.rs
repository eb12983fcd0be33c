//! Prometheus metrics, served at `GET /metrics` in the text exposition format.
//!
//! Latencies are measured from the moment a handler publishes an event (after the
//! store committed it): to the hub of each replica (`bus_lag`) and to the WebSocket
//! write (`delivery`). Across replicas both include the hosts' clock difference.

use std::sync::LazyLock;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntGauge, Registry, TextEncoder,
};

use crate::AppState;

/// Buckets from 0.5 ms to 10 s, for latencies of local work and of delivery.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

pub struct Metrics {
    registry: Registry,
    pub websocket_connections: IntGauge,
    pub events_published: IntCounter,
    pub events_delivered: IntCounter,
    pub delivery_seconds: Histogram,
    pub bus_lag_seconds: Histogram,
    pub store_seconds: HistogramVec,
    pub slow_clients_closed: IntCounter,
    pub active_calls: IntGauge,
    pub call_participants: IntGauge,
}

pub static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

fn histogram(name: &str, help: &str) -> Histogram {
    let options = HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec());
    Histogram::with_opts(options).expect("valid histogram options")
}

impl Metrics {
    fn new() -> Self {
        let registry = Registry::new_custom(Some("roomler".into()), None).expect("a valid prefix");
        let gauge = |name: &str, help: &str| IntGauge::new(name, help).expect("a valid gauge");
        let counter =
            |name: &str, help: &str| IntCounter::new(name, help).expect("a valid counter");
        let store_options = HistogramOpts::new(
            "store_operation_seconds",
            "Time of store operations, by kind (read or write).",
        )
        .buckets(LATENCY_BUCKETS.to_vec());
        let metrics = Metrics {
            websocket_connections: gauge(
                "websocket_connections",
                "Open WebSocket connections on this replica.",
            ),
            events_published: counter(
                "events_published_total",
                "Events committed and published by this replica; rate() gives events per second.",
            ),
            events_delivered: counter(
                "events_delivered_total",
                "Events written to WebSockets of this replica.",
            ),
            delivery_seconds: histogram(
                "event_delivery_seconds",
                "Time from publishing an event to writing it to a WebSocket.",
            ),
            bus_lag_seconds: histogram(
                "bus_lag_seconds",
                "Time from publishing an event to its arrival at this replica's hub.",
            ),
            store_seconds: HistogramVec::new(store_options, &["kind"]).expect("valid options"),
            slow_clients_closed: counter(
                "slow_clients_closed_total",
                "WebSockets closed because their client did not read events fast enough.",
            ),
            // Set from the call registry at each scrape.
            active_calls: gauge("active_calls", "Calls going on, on this replica."),
            call_participants: gauge("call_participants", "Participants of those calls."),
            registry,
        };
        metrics.register_all();
        metrics
    }

    fn register_all(&self) {
        let registry = &self.registry;
        let collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(self.websocket_connections.clone()),
            Box::new(self.events_published.clone()),
            Box::new(self.events_delivered.clone()),
            Box::new(self.delivery_seconds.clone()),
            Box::new(self.bus_lag_seconds.clone()),
            Box::new(self.store_seconds.clone()),
            Box::new(self.slow_clients_closed.clone()),
            Box::new(self.active_calls.clone()),
            Box::new(self.call_participants.clone()),
        ];
        for collector in collectors {
            registry
                .register(collector)
                .expect("each metric registers once");
        }
        #[cfg(target_os = "linux")]
        {
            let process = prometheus::process_collector::ProcessCollector::for_self();
            registry
                .register(Box::new(process))
                .expect("the process collector registers once");
        }
    }

    /// The metrics in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        let encoder = TextEncoder::new();
        if let Err(error) = encoder.encode(&self.registry.gather(), &mut buffer) {
            tracing::warn!(%error, "failed to encode metrics");
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}

/// Seconds since `published_at_micros`, a Unix time in microseconds.
pub fn seconds_since(published_at_micros: i64) -> Option<f64> {
    if published_at_micros <= 0 {
        return None;
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000;
    let elapsed = (now - i128::from(published_at_micros)) as f64 / 1_000_000.0;
    Some(elapsed.max(0.0))
}

pub fn now_micros() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000) as i64
}

pub async fn handler(State(state): State<AppState>) -> impl IntoResponse {
    let (calls, participants) = state.calls.counts().await;
    METRICS.active_calls.set(calls as i64);
    METRICS.call_participants.set(participants as i64);
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        METRICS.render(),
    )
}
