//! The service's HTTP endpoint (`[metrics] address`): `/metrics` (Prometheus), `/health`
//! (200 or 503, JSON) and `/top` (the live top-N, JSON).
//!
//! One thread of its own, with its own small runtime: nothing a client does reaches the
//! pipeline, which never waits on this side (it only tries the live top-N's lock). A client
//! is bounded in every way it could hold resources: at most [`MAX_CONNECTIONS`] connections
//! at once (one more is closed at once: a flood is refused, not queued in front of a scrape),
//! [`HEADER_TIMEOUT`] to send its request's head, [`MAX_HEAD_BYTES`] of head, [`CONNECTION_TIMEOUT`] for a whole connection, and a
//! request body is never read. It never writes anything but answers.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use maillog_aggregate::{Dimension, LiveWindow};
use tokio::sync::Semaphore;

use crate::observe::Observed;

/// The largest `n` a `/top` answers with.
const MAX_N: usize = 1000;
/// Connections open at once (each costs a task and a buffer of at most [`MAX_HEAD_BYTES`]).
const MAX_CONNECTIONS: usize = 256;
/// Time a client has to send a request's head.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// A connection's whole life, keep-alive included.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(30);
/// A request's head (request line and headers), at most.
const MAX_HEAD_BYTES: usize = 16 * 1024;

/// Starts serving; returns the address bound (the port may have been 0).
pub fn serve(address: SocketAddr, observed: Arc<Observed>) -> Result<SocketAddr> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .context("cannot start the HTTP endpoint's runtime")?;
    let listener = std::net::TcpListener::bind(address)
        .with_context(|| format!("cannot listen on {address} (`[metrics] address`)"))?;
    listener.set_nonblocking(true)?;
    let bound = listener.local_addr()?;
    std::thread::Builder::new()
        .name("maillog-http".into())
        .spawn(move || runtime.block_on(accept(listener, observed)))?;
    Ok(bound)
}

/// Accepts connections, at most [`MAX_CONNECTIONS`] at once (more are closed at once), each
/// bounded in time and size.
async fn accept(listener: std::net::TcpListener, observed: Arc<Observed>) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(e) => {
            tracing::error!("the HTTP endpoint cannot listen: {e}");
            return;
        }
    };
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::debug!("HTTP accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            tracing::debug!("HTTP: {MAX_CONNECTIONS} connections open already: one closed");
            continue; // dropped: closed
        };
        let observed = Arc::clone(&observed);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let observed = Arc::clone(&observed);
                async move { Ok::<_, Infallible>(answer(&request, &observed)) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(MAX_HEAD_BYTES)
                .serve_connection(TokioIo::new(stream), service);
            match tokio::time::timeout(CONNECTION_TIMEOUT, connection).await {
                Ok(Err(e)) => tracing::debug!("HTTP connection: {e}"),
                Err(_) => tracing::debug!("HTTP connection closed after {CONNECTION_TIMEOUT:?}"),
                Ok(Ok(())) => {}
            }
            drop(slot);
        });
    }
}

fn answer(request: &Request<Incoming>, observed: &Observed) -> Response<Full<Bytes>> {
    let query = request.uri().query().unwrap_or("");
    let (status, content_type, body) = match request.uri().path() {
        "/metrics" => (
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            observed.render_metrics(),
        ),
        "/health" => {
            let health = observed.health();
            let status = if health.problems.is_empty() {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            (status, "application/json", to_json(&health))
        }
        "/top" => match top(query, observed) {
            Ok(body) => (StatusCode::OK, "application/json", body),
            Err(message) => (
                StatusCode::BAD_REQUEST,
                "application/json",
                error_json(&message),
            ),
        },
        _ => (
            StatusCode::NOT_FOUND,
            "application/json",
            error_json("not found: the paths are /metrics, /health and /top"),
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::Instant;

    use super::*;
    use crate::observe::HealthLimits;

    fn start() -> (SocketAddr, tempfile::TempDir) {
        let spool = tempfile::tempdir().unwrap();
        let limits = HealthLimits {
            upload_failing: Duration::from_secs(600),
            max_spool_bytes: 1 << 30,
        };
        let observed = Arc::new(Observed::new(spool.path(), limits, 16));
        let address = serve("127.0.0.1:0".parse().unwrap(), observed).unwrap();
        (address, spool)
    }

    /// Sends `head` and reads the whole answer (the connection is closed after it).
    fn exchange(address: SocketAddr, head: &[u8]) -> String {
        let mut stream = TcpStream::connect(address).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        // A server that closes early may refuse the rest of an oversized head.
        let _ = stream.write_all(head);
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        String::from_utf8_lossy(&answer).into_owned()
    }

    #[test]
    fn idle_connections_cannot_shut_out_a_scrape() {
        let (address, _spool) = start();
        // Silent connections: a scrape beside them is answered at once.
        let mut idle: Vec<TcpStream> = (0..MAX_CONNECTIONS / 2)
            .map(|_| TcpStream::connect(address).unwrap())
            .collect();
        let scrape = b"GET /health HTTP/1.1\r\nConnection: close\r\n\r\n";
        let started = Instant::now();
        let answer = exchange(address, scrape);
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(
            started.elapsed() < HEADER_TIMEOUT,
            "{:?}",
            started.elapsed()
        );
        // Past the bound, a connection is closed at once; once the silent ones have timed
        // out, scrapes are answered again.
        idle.extend((0..MAX_CONNECTIONS).map(|_| TcpStream::connect(address).unwrap()));
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(exchange(address, scrape), "", "refused while full");
        std::thread::sleep(HEADER_TIMEOUT + Duration::from_secs(1));
        let answer = exchange(address, scrape);
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        drop(idle);
    }

    #[test]
    fn an_oversized_request_head_is_refused() {
        let (address, _spool) = start();
        let mut head = b"GET /metrics HTTP/1.1\r\nX-Big: ".to_vec();
        head.resize(head.len() + 4 * MAX_HEAD_BYTES, b'a');
        head.extend_from_slice(b"\r\n\r\n");
        let answer = exchange(address, &head);
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
            "{answer}"
        );
        // And the endpoint still answers.
        let answer = exchange(address, b"GET /nope HTTP/1.1\r\nConnection: close\r\n\r\n");
        assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    }
}
