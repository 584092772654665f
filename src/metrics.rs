//! `GET /metrics` in the Prometheus text format (version 0.0.4): queue depth by state,
//! messages by outcome, bounces by reason, flow completions (once flows exist) and a
//! request latency histogram.
//!
//! Counts come from the store at each scrape, so they survive restarts and agree with
//! `mailgate queue list` and `mailgate bounces`. Latency is measured in process by
//! [`track`], a middleware around the whole router, and kept per area of the site (api,
//! console, ops, pages) rather than per path, so strangers' URLs cannot grow the label
//! set.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::store::{Store, StoreError};

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The areas latency is kept for.
const AREAS: [&str; 4] = ["api", "console", "ops", "pages"];

struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    const fn new() -> Histogram {
        Histogram {
            buckets: [const { AtomicU64::new(0) }; BUCKETS.len()],
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }

    fn observe(&self, seconds: f64) {
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                self.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    }
}

static LATENCY: [Histogram; AREAS.len()] = [const { Histogram::new() }; AREAS.len()];

/// The area a path belongs to.
fn area(path: &str) -> usize {
    if path.starts_with("/api/") {
        0
    } else if ["/support", "/admin", "/login", "/logout"]
        .iter()
        .any(|p| path.starts_with(p))
    {
        1
    } else if path == "/healthz" || path == "/metrics" {
        2
    } else {
        3
    }
}

/// Middleware: times every request.
pub async fn track(request: Request, next: Next) -> Response {
    let which = area(request.uri().path());
    let start = Instant::now();
    let response = next.run(request).await;
    LATENCY[which].observe(start.elapsed().as_secs_f64());
    response
}

/// Flows completed (the password set), from the counter kept as flows complete;
/// `None` when the store cannot say.
pub async fn flow_completions(store: &Store) -> Option<u64> {
    let counters = store.counters("flows").await.ok()?;
    Some(
        counters
            .into_iter()
            .find(|(label, _)| label == "completed")
            .map_or(0, |(_, n)| n),
    )
}

/// The whole exposition text.
pub async fn render(store: &Store) -> Result<String, StoreError> {
    let mut out = String::new();
    // Gauges from the queue's index: the cost follows the queue, not the history.
    let statuses = store.open_status_counts().await?;
    let get = |s: &str| statuses.get(s).copied().unwrap_or(0);

    out.push_str("# HELP mailgate_queue_depth Messages waiting in the queue, by state.\n");
    out.push_str("# TYPE mailgate_queue_depth gauge\n");
    for state in ["queued", "sending", "deferred"] {
        let _ = writeln!(
            out,
            "mailgate_queue_depth{{state=\"{state}\"}} {}",
            get(state)
        );
    }

    out.push_str(
        "# HELP mailgate_deliveries_total Messages that reached a final state, by outcome.\n",
    );
    out.push_str("# TYPE mailgate_deliveries_total counter\n");
    // Monotonic counters kept by the lifecycle as messages finish, not recounted here.
    let finished: std::collections::BTreeMap<String, u64> =
        store.counters("deliveries").await?.into_iter().collect();
    for outcome in [
        "delivered",
        "failed",
        "expired",
        "bounced",
        "cancelled",
        "suppressed",
    ] {
        let _ = writeln!(
            out,
            "mailgate_deliveries_total{{outcome=\"{outcome}\"}} {}",
            finished.get(outcome).copied().unwrap_or(0)
        );
    }

    out.push_str("# HELP mailgate_bounces_total Bounces recorded, by reason.\n");
    out.push_str("# TYPE mailgate_bounces_total counter\n");
    for (reason, n) in store.counters("bounces").await? {
        let _ = writeln!(
            out,
            "mailgate_bounces_total{{reason=\"{}\"}} {n}",
            label_value(&reason)
        );
    }

    if let Some(n) = flow_completions(store).await {
        out.push_str("# HELP mailgate_flow_completions_total Setup and reset flows completed.\n");
        out.push_str("# TYPE mailgate_flow_completions_total counter\n");
        let _ = writeln!(out, "mailgate_flow_completions_total {n}");
    }

    out.push_str("# HELP mailgate_http_request_duration_seconds Time to answer an HTTP request, by area of the site.\n");
    out.push_str("# TYPE mailgate_http_request_duration_seconds histogram\n");
    for (i, name) in AREAS.iter().enumerate() {
        let h = &LATENCY[i];
        for (b, bound) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "mailgate_http_request_duration_seconds_bucket{{area=\"{name}\",le=\"{bound}\"}} {}",
                h.buckets[b].load(Ordering::Relaxed)
            );
        }
        let count = h.count.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "mailgate_http_request_duration_seconds_bucket{{area=\"{name}\",le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "mailgate_http_request_duration_seconds_sum{{area=\"{name}\"}} {}",
            h.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(
            out,
            "mailgate_http_request_duration_seconds_count{{area=\"{name}\"}} {count}"
        );
    }
    Ok(out)
}

/// Escapes a label value (backslash, quote, newline), as the text format requires.
fn label_value(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `GET /metrics`. The gauges come from the queue's index and the counters are kept
/// as things happen, so a scrape reads little.
pub async fn handler(State(store): State<Store>) -> Response {
    let rendered = render(&store).await;
    match rendered {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("store: {e}\n")).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_counts_into_every_bucket_at_or_above_the_value() {
        let h = Histogram::new();
        h.observe(0.02);
        h.observe(3.0);
        assert_eq!(h.buckets[0].load(Ordering::Relaxed), 0);
        assert_eq!(h.buckets[2].load(Ordering::Relaxed), 1);
        assert_eq!(h.buckets[BUCKETS.len() - 1].load(Ordering::Relaxed), 2);
        assert_eq!(h.count.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn label_values_are_escaped_and_paths_map_to_areas() {
        assert_eq!(label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(AREAS[area("/api/v1/log")], "api");
        assert_eq!(AREAS[area("/support")], "console");
        assert_eq!(AREAS[area("/metrics")], "ops");
        assert_eq!(AREAS[area("/v/abc")], "pages");
    }
}
