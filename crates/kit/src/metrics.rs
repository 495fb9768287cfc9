//! Prometheus text metrics: requests by route and status class, latency histogram.

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

const BUCKETS_MS: [u64; 10] = [1, 5, 10, 25, 50, 100, 250, 500, 1000, 5000];

#[derive(Default)]
struct Inner {
    /// Per route template: answers by (method, status), time by method.
    routes: BTreeMap<String, RouteStats>,
    buckets: [u64; BUCKETS_MS.len()],
    count: u64,
    sum_ms: f64,
}

#[derive(Default)]
struct RouteStats {
    answers: BTreeMap<(&'static str, u16), u64>,
    /// (requests, milliseconds in all) by method.
    time: BTreeMap<&'static str, (u64, f64)>,
}

#[derive(Clone, Default)]
pub struct Metrics(Arc<Mutex<Inner>>);

impl Metrics {
    /// Count one answer. The route's name is copied only the first time it
    /// is seen (this runs on every request, under one lock).
    pub fn observe(&self, method: &'static str, route: &str, status: u16, elapsed_ms: f64) {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let r = match m.routes.get_mut(route) {
            Some(r) => r,
            None => m.routes.entry(route.to_string()).or_default(),
        };
        *r.answers.entry((method, status)).or_default() += 1;
        let t = r.time.entry(method).or_default();
        t.0 += 1;
        t.1 += elapsed_ms;
        for (i, b) in BUCKETS_MS.iter().enumerate() {
            if elapsed_ms <= *b as f64 {
                m.buckets[i] += 1;
            }
        }
        m.count += 1;
        m.sum_ms += elapsed_ms;
    }

    /// The request metrics, then `extra` samples given as (name, type, help, value).
    pub fn render(&self, extra: &[(&str, &str, &str, f64)]) -> String {
        use std::fmt::Write;
        let m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        out.push_str("# HELP yizhan_http_requests_total HTTP requests by method, route and status.\n");
        out.push_str("# TYPE yizhan_http_requests_total counter\n");
        for (route, r) in &m.routes {
            for ((method, status), n) in &r.answers {
                let _ = writeln!(
                    out,
                    "yizhan_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {n}"
                );
            }
        }
        out.push_str("# HELP yizhan_http_route_seconds Time spent answering, by method and route.\n");
        out.push_str("# TYPE yizhan_http_route_seconds summary\n");
        for (route, r) in &m.routes {
            for (method, (n, ms)) in &r.time {
                let labels = format!("method=\"{method}\",route=\"{route}\"");
                let _ = writeln!(out, "yizhan_http_route_seconds_sum{{{labels}}} {}", ms / 1000.0);
                let _ = writeln!(out, "yizhan_http_route_seconds_count{{{labels}}} {n}");
            }
        }
        out.push_str("# HELP yizhan_http_request_duration_seconds Time to answer a request.\n");
        out.push_str("# TYPE yizhan_http_request_duration_seconds histogram\n");
        for (i, b) in BUCKETS_MS.iter().enumerate() {
            let _ = writeln!(
                out,
                "yizhan_http_request_duration_seconds_bucket{{le=\"{}\"}} {}",
                *b as f64 / 1000.0,
                m.buckets[i]
            );
        }
        let _ = writeln!(out, "yizhan_http_request_duration_seconds_bucket{{le=\"+Inf\"}} {}", m.count);
        let _ = writeln!(out, "yizhan_http_request_duration_seconds_sum {}", m.sum_ms / 1000.0);
        let _ = writeln!(out, "yizhan_http_request_duration_seconds_count {}", m.count);
        for (name, kind, help, v) in extra {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
        }
        out
    }
}

/// The methods counted by name; any other is `other`, so a client cannot
/// grow the label sets by inventing methods.
const KNOWN_METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// The labels of a request: a known method, and the route template it
/// matched (never the raw path), or `other`.
pub fn labels<'a>(method: &axum::http::Method, matched: Option<&'a MatchedPath>) -> (&'static str, &'a str) {
    let method = KNOWN_METHODS.iter().find(|m| **m == method.as_str()).copied().unwrap_or("other");
    (method, matched.map_or("other", |p| p.as_str()))
}

pub async fn track(State(metrics): State<Metrics>, req: Request, next: Next) -> Response {
    let matched = req.extensions().get::<MatchedPath>().cloned();
    let (method, route) = labels(req.method(), matched.as_ref());
    let start = Instant::now();
    let resp = next.run(req).await;
    metrics.observe(method, route, resp.status().as_u16(), start.elapsed().as_secs_f64() * 1000.0);
    resp
}

/// Whether this caller may read `/metrics`: from loopback, from a listed
/// address, or with the operator's bearer token. An unknown peer (no socket
/// address) is refused.
pub fn may_read(
    peer: Option<std::net::IpAddr>,
    headers: &axum::http::HeaderMap,
    allow: &[std::net::IpAddr],
    token: Option<&str>,
) -> bool {
    if let Some(ip) = peer {
        let ip = match ip {
            std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map(std::net::IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        if ip.is_loopback() || allow.contains(&ip) {
            return true;
        }
    }
    match (token.filter(|t| !t.is_empty()), crate::extract::bearer(headers)) {
        (Some(want), Some(given)) => crate::extract::constant_time_eq(want.as_bytes(), given.as_bytes()),
        _ => false,
    }
}
