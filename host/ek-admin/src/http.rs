//! The admin HTTP endpoint: `GET /metrics`, `/healthz` and `/readyz` over HTTP/1.1.
//!
//! Every connection runs in its own task, so one slow client never delays another. A
//! client is bounded three ways: it must send a complete request head within
//! [`AdminConfig::header_read_timeout`], at most [`AdminConfig::max_connections`]
//! connections are served at once (further ones are closed on accept), and no
//! connection lives longer than [`AdminConfig::max_connection_age`], which also frees a
//! slot held by a client that stops reading its response.

#[cfg(test)]
mod tests;

use crate::metrics::{Metrics, CONTENT_TYPE};
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE as CONTENT_TYPE_HEADER};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};

/// A hook the node installs to copy fresh gauges into [`Metrics`] right before a scrape.
pub type RefreshHook = Box<dyn Fn() + Send + Sync>;

/// What the admin endpoint serves: the metrics, and the node's health and readiness.
///
/// Health starts `true` and readiness `false`; the node flips readiness once it serves
/// clients, and health when it detects it cannot recover by itself.
pub struct AdminState {
    /// The node's metrics, rendered on `/metrics`.
    pub metrics: Arc<Metrics>,
    healthy: AtomicBool,
    ready: AtomicBool,
    refresh: Option<RefreshHook>,
}

impl std::fmt::Debug for AdminState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminState")
            .field("healthy", &self.is_healthy())
            .field("ready", &self.is_ready())
            .field("refresh", &self.refresh.is_some())
            .finish_non_exhaustive()
    }
}

impl AdminState {
    /// Healthy, not ready, no refresh hook.
    pub fn new(metrics: Arc<Metrics>) -> AdminState {
        AdminState {
            metrics,
            healthy: AtomicBool::new(true),
            ready: AtomicBool::new(false),
            refresh: None,
        }
    }

    /// Installs `refresh`, called on every `/metrics` request before rendering. It runs
    /// on the admin server's task, so it should only copy numbers, never block.
    pub fn with_refresh(mut self, refresh: impl Fn() + Send + Sync + 'static) -> AdminState {
        self.refresh = Some(Box::new(refresh));
        self
    }

    /// Marks the node as serving clients (`/readyz` answers 200) or not (503).
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Relaxed);
    }

    /// Whether `/readyz` answers 200: ready and also healthy.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Relaxed) && self.is_healthy()
    }

    /// Marks the node as healthy (`/healthz` answers 200) or not (503).
    pub fn set_healthy(&self, healthy: bool) {
        self.healthy.store(healthy, Relaxed);
    }

    /// Whether `/healthz` answers 200.
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Relaxed)
    }
}

/// Limits of the admin server.
#[derive(Clone, Debug)]
pub struct AdminConfig {
    /// Time a client has to send a whole request head, for the first request and for
    /// each later one on a kept-alive connection. Default 5 s.
    pub header_read_timeout: Duration,
    /// Connections served at once; more are closed as soon as they are accepted.
    /// Default 64.
    pub max_connections: usize,
    /// Longest life of one connection; it is then asked to close after its current
    /// response, and dropped [`AdminConfig::shutdown_grace`] later. Default 120 s.
    pub max_connection_age: Duration,
    /// How long a closing connection may take to finish its response. Default 5 s.
    pub shutdown_grace: Duration,
}

impl Default for AdminConfig {
    fn default() -> AdminConfig {
        AdminConfig {
            header_read_timeout: Duration::from_secs(5),
            max_connections: 64,
            max_connection_age: Duration::from_secs(120),
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

/// Serves the admin endpoint on `listener` with [`AdminConfig::default`] until `shutdown`
/// completes. See [`serve_with_config`].
pub async fn serve(
    listener: TcpListener,
    state: Arc<AdminState>,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    serve_with_config(listener, state, AdminConfig::default(), shutdown).await
}

/// Serves the admin endpoint on `listener` until `shutdown` completes, then stops
/// accepting, asks open connections to close, and returns once they have (at most
/// [`AdminConfig::shutdown_grace`] later).
///
/// Errors from accepting a connection are logged and skipped (they are per-connection,
/// such as a reset before accept, or running out of file descriptors for a moment);
/// this returns `Ok` on shutdown.
pub async fn serve_with_config(
    listener: TcpListener,
    state: Arc<AdminState>,
    config: AdminConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let config = Arc::new(config);
    let slots = Arc::new(Semaphore::new(config.max_connections));
    let (closing_tx, closing_rx) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "admin http: accept failed");
                // Avoid a hot loop when the process is out of file descriptors.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            tracing::debug!(%peer, "admin http: connection limit reached, closing");
            continue;
        };
        let state = Arc::clone(&state);
        let config = Arc::clone(&config);
        let closing_rx = closing_rx.clone();
        tokio::spawn(async move {
            serve_connection(stream, state, &config, closing_rx).await;
            drop(slot);
        });
    }
    drop(listener);
    let _ = closing_tx.send(true);
    // Every connection task holds one slot until it ends; getting them all back means
    // every task is done. Each task bounds itself by `shutdown_grace`.
    let all = u32::try_from(config.max_connections).unwrap_or(u32::MAX);
    let _ = slots.acquire_many(all).await;
    Ok(())
}

/// Runs one connection to its end, its age limit, or server shutdown.
async fn serve_connection(
    stream: TcpStream,
    state: Arc<AdminState>,
    config: &AdminConfig,
    mut closing_rx: watch::Receiver<bool>,
) {
    let service = service_fn(move |request| {
        let response = route(&state, &request);
        async move { Ok::<_, Infallible>(response) }
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    let finished = tokio::select! {
        result = connection.as_mut() => Some(result),
        () = tokio::time::sleep(config.max_connection_age) => None,
        // Also fires if the server future is dropped, which drops the sender.
        _ = closing_rx.wait_for(|closing| *closing) => None,
    };
    let result = match finished {
        Some(result) => result,
        None => {
            // Close after the response in flight; a client that will not read it is
            // dropped after the grace period.
            connection.as_mut().graceful_shutdown();
            tokio::time::timeout(config.shutdown_grace, connection)
                .await
                .unwrap_or(Ok(()))
        }
    };
    if let Err(error) = result {
        tracing::debug!(%error, "admin http: connection ended with an error");
    }
}

/// Answers one request. Unknown paths are 404 whatever the method; known paths accept
/// GET and HEAD (hyper sends no body for HEAD) and answer 405 to anything else.
fn route<B>(state: &AdminState, request: &Request<B>) -> Response<Full<Bytes>> {
    let path = request.uri().path();
    if !matches!(path, "/healthz" | "/readyz" | "/metrics") {
        return text(StatusCode::NOT_FOUND, "not found\n");
    }
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    match path {
        "/healthz" if state.is_healthy() => text(StatusCode::OK, "ok\n"),
        "/healthz" => text(StatusCode::SERVICE_UNAVAILABLE, "unhealthy\n"),
        "/readyz" if state.is_ready() => text(StatusCode::OK, "ready\n"),
        "/readyz" => text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n"),
        _ => {
            if let Some(refresh) = &state.refresh {
                refresh();
            }
            let body = state.metrics.render();
            let mut response = Response::new(Full::new(Bytes::from(body)));
            response
                .headers_mut()
                .insert(CONTENT_TYPE_HEADER, HeaderValue::from_static(CONTENT_TYPE));
            response
        }
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE_HEADER,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
