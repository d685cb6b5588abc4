//! The service's HTTP endpoint (`[metrics] address`): `/metrics` (Prometheus), `/health`
//! (200 or 503, JSON) and `/top` (the live top-N, JSON).
//!
//! One thread of its own, answering one request at a time from [`Observed`]: a slow or
//! hostile client can delay other scrapes, never the pipeline. It never writes anything but
//! answers.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Result, anyhow};
use maillog_aggregate::{Dimension, LiveWindow};
use tiny_http::{Header, Request, Response, Server};

use crate::observe::Observed;

/// The largest `n` a `/top` answers with.
const MAX_N: usize = 1000;

/// Starts serving; returns the address bound (the port may have been 0).
pub fn serve(address: SocketAddr, observed: Arc<Observed>) -> Result<SocketAddr> {
    let server = Server::http(address)
        .map_err(|e| anyhow!("cannot listen on {address} (`[metrics] address`): {e}"))?;
    let bound = server
        .server_addr()
        .to_ip()
        .ok_or_else(|| anyhow!("{address}: not an IP address"))?;
    std::thread::Builder::new()
        .name("maillog-http".into())
        .spawn(move || {
            for request in server.incoming_requests() {
                answer(request, &observed);
            }
        })?;
    Ok(bound)
}

fn answer(request: Request, observed: &Observed) {
    let url = request.url().to_owned();
    let (path, query) = url.split_once('?').unwrap_or((&url, ""));
    let (status, content_type, body) = match path {
        "/metrics" => (
            200,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            observed.render_metrics(),
        ),
        "/health" => {
            let health = observed.health();
            let status = if health.problems.is_empty() { 200 } else { 503 };
            (status, "application/json", to_json(&health))
        }
        "/top" => match top(query, observed) {
            Ok(body) => (200, "application/json", body),
            Err(message) => (400, "application/json", error_json(&message)),
        },
        _ => (
            404,
            "application/json",
            error_json("not found: the paths are /metrics, /health and /top"),
        ),
    };
    let mut response = Response::from_string(body).with_status_code(status);
    if let Ok(header) = Header::from_bytes("Content-Type", content_type) {
        response = response.with_header(header);
    }
    if let Err(e) = request.respond(response) {
        tracing::debug!("HTTP answer not delivered: {e}");
    }
}

/// `/top?by=KEY&n=N&window=5m|1h|24h`.
fn top(query: &str, observed: &Observed) -> Result<String, String> {
    let (mut by, mut n, mut window) = (None, 10, LiveWindow::Hour);
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        match &*name {
            "by" => by = Some(value.parse::<Dimension>().map_err(|e| e.to_string())?),
            "n" => {
                n = value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_N).contains(n))
                    .ok_or_else(|| format!("n={value}: expected 1 to {MAX_N}"))?;
            }
            "window" => window = value.parse::<LiveWindow>().map_err(|e| e.to_string())?,
            other => {
                return Err(format!(
                    "unknown parameter {other:?}: expected by, n, window"
                ));
            }
        }
    }
    let by = by.ok_or("by= is missing: dest, src, mailserver, relay, dest_domain or src_domain")?;
    let live = observed
        .live
        .as_ref()
        .ok_or("the live top-N is off ([top] max_keys = 0)")?;
    let answer = live
        .lock()
        .map_err(|_| "the live top-N is unavailable")?
        .top(by, n, window);
    Ok(to_json(&answer))
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|e| error_json(&e.to_string()))
}

fn error_json(message: &str) -> String {
    serde_json::json!({ "error": message }).to_string()
}
