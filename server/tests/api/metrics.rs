//! `GET /metrics`: the Prometheus text format with the server's own series.
//!
//! The metrics are global to the test process, where other tests run at the same
//! time, so these tests check increases, not exact values.

use serde_json::json;

use crate::common::TestServer;

/// The value of the first sample of `name` (without labels) in a text exposition.
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|line| line.starts_with(name) && line[name.len()..].starts_with(' '))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no sample {name} in:\n{text}"))
}

async fn scrape(server: &TestServer) -> String {
    let response = server
        .anonymous(reqwest::Method::GET, "/metrics")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    response.text().await.unwrap()
}

#[tokio::test]
async fn metrics_lists_every_series() {
    let server = TestServer::start().await;
    let text = scrape(&server).await;
    for name in [
        "roomler_websocket_connections",
        "roomler_events_published_total",
        "roomler_events_delivered_total",
        "roomler_event_delivery_seconds_count",
        "roomler_bus_lag_seconds_count",
        "roomler_slow_clients_closed_total",
        "roomler_active_calls",
        "roomler_call_participants",
    ] {
        sample(&text, name);
    }
    assert!(
        text.contains("roomler_store_operation_seconds_bucket"),
        "{text}"
    );
}

#[tokio::test]
async fn metrics_count_connections_and_deliveries() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;
    let before = scrape(&server).await;

    let mut socket = alice.connect().await;
    socket.send_json(json!({"type": "ping"})).await;
    socket.next_event("pong").await;
    let during = scrape(&server).await;
    assert!(
        sample(&during, "roomler_websocket_connections")
            >= sample(&before, "roomler_websocket_connections") + 1.0
    );

    alice.send(room, "counted").await;
    socket.next_event("message.created").await;
    let after = scrape(&server).await;
    assert!(
        sample(&after, "roomler_events_published_total")
            > sample(&before, "roomler_events_published_total")
    );
    assert!(
        sample(&after, "roomler_events_delivered_total")
            > sample(&before, "roomler_events_delivered_total")
    );
    assert!(
        sample(&after, "roomler_event_delivery_seconds_count")
            > sample(&before, "roomler_event_delivery_seconds_count")
    );
    assert!(
        sample(&after, "roomler_bus_lag_seconds_count")
            > sample(&before, "roomler_bus_lag_seconds_count")
    );
}
