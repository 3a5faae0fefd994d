//! Metrics for Prometheus to scrape, without a collector.
//!
//! The names follow OpenTelemetry's Prometheus compatibility rules (the ones the
//! Collector's `prometheus` exporter applies too), so the dashboards and alert
//! rules in `deploy/` work whichever way the metrics arrive:
//! `gen_ai.client.operation.duration` (unit `s`) becomes
//! `gen_ai_client_operation_duration_seconds_{bucket,sum,count}`, the counter
//! `otel_agent.step.calls` becomes `otel_agent_step_calls_total`, and units in
//! braces (`{token}`, `{step}`) add no suffix.
//!
//! `/metrics` is served by hyper (HTTP/1.1) on the telemetry's private one-thread
//! Tokio runtime, the one gRPC export already uses: hyper and Tokio are already in
//! the build for the OTLP exporters, no thread is added, and an idle endpoint costs
//! nothing. Each scrape reads the current values from the SDK and encodes them
//! with the `prometheus` crate's text encoder.

use std::convert::Infallible;
use std::net::{SocketAddr, TcpListener as StdListener, ToSocketAddrs};
use std::time::Duration;

use ::prometheus::{Encoder as _, TextEncoder};
use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};

use crate::error::InitError;

/// The metric reader to install in the meter provider, and what serves it.
pub(crate) struct PrometheusPipeline {
    pub reader: opentelemetry_prometheus::PrometheusExporter,
    pub endpoint: PrometheusEndpoint,
}

/// The sockets `/metrics` is served on. The serving tasks live on the export
/// runtime and stop with it.
#[derive(Debug)]
pub(crate) struct PrometheusEndpoint {
    listeners: Vec<StdListener>,
    registry: ::prometheus::Registry,
}

impl PrometheusPipeline {
    /// Binds `host:port` now, so that a taken port is an error of `init()`, and
    /// builds the reader. Serving starts with [`PrometheusEndpoint::serve`].
    pub(crate) fn bind(host: &str, port: u16) -> Result<Self, InitError> {
        let registry = ::prometheus::Registry::new();
        let reader = opentelemetry_prometheus::exporter()
            .with_registry(registry.clone())
            .build()
            .map_err(|e| InitError::PrometheusBind {
                address: format!("{host}:{port}"),
                source: std::io::Error::other(e.to_string()),
            })?;
        let listeners = bind(host, port)?;
        Ok(Self {
            reader,
            endpoint: PrometheusEndpoint {
                listeners,
                registry,
            },
        })
    }
}

/// Binds every address `host` resolves to (`localhost` is often both 127.0.0.1
/// and ::1, and a scrape may use either). An address family the machine lacks is
/// skipped; any other failure, such as a port in use, is an error.
fn bind(host: &str, port: u16) -> Result<Vec<StdListener>, InitError> {
    let shown = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let error = |source: std::io::Error| InitError::PrometheusBind {
        address: shown.clone(),
        source,
    };
    let mut addrs: Vec<SocketAddr> = Vec::new();
    for addr in (host, port).to_socket_addrs().map_err(error)? {
        if !addrs.contains(&addr) {
            addrs.push(addr);
        }
    }
    // An ephemeral port would differ per address: take the first address only.
    if port == 0 {
        addrs.truncate(1);
    }
    let mut listeners = Vec::new();
    let mut skipped = None;
    for addr in addrs {
        match StdListener::bind(addr) {
            Ok(listener) => listeners.push(listener),
            Err(e) if e.kind() == std::io::ErrorKind::AddrNotAvailable => skipped = Some(e),
            Err(e) => return Err(error(std::io::Error::new(e.kind(), format!("{addr}: {e}")))),
        }
    }
    if listeners.is_empty() {
        return Err(error(skipped.unwrap_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::AddrNotAvailable,
                "the host resolves to no address",
            )
        })));
    }
    Ok(listeners)
}

impl PrometheusEndpoint {
    /// Starts serving on `runtime`; returns the addresses actually bound.
    pub(crate) fn serve(
        self,
        runtime: &tokio::runtime::Handle,
    ) -> Result<Vec<SocketAddr>, InitError> {
        let mut bound = Vec::new();
        for listener in self.listeners {
            let local = listener.local_addr();
            let address = local
                .as_ref()
                .map_or_else(|_| "?".to_owned(), ToString::to_string);
            let failed = |source| InitError::PrometheusBind {
                address: address.clone(),
                source,
            };
            listener.set_nonblocking(true).map_err(failed)?;
            let listener = {
                let _entered = runtime.enter();
                tokio::net::TcpListener::from_std(listener).map_err(failed)?
            };
            bound.push(local.map_err(failed)?);
            runtime.spawn(accept_loop(listener, self.registry.clone()));
        }
        Ok(bound)
    }
}

async fn accept_loop(listener: tokio::net::TcpListener, registry: ::prometheus::Registry) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            // Out of file descriptors and the like: wait instead of spinning.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let registry = registry.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let response = respond(&request, &registry);
                async move { Ok::<_, Infallible>(response) }
            });
            // A client that never finishes its request headers is cut off.
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn respond<B>(request: &Request<B>, registry: &::prometheus::Registry) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, content_type: &str, body: Vec<u8>| {
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        if let Ok(value) = header::HeaderValue::from_str(content_type) {
            response.headers_mut().insert(header::CONTENT_TYPE, value);
        }
        response
    };
    const TEXT: &str = "text/plain; charset=utf-8";
    if request.uri().path() != "/metrics" {
        return reply(
            StatusCode::NOT_FOUND,
            TEXT,
            b"otel-agent serves Prometheus metrics at /metrics\n".to_vec(),
        );
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut response = reply(
            StatusCode::METHOD_NOT_ALLOWED,
            TEXT,
            b"use GET /metrics\n".to_vec(),
        );
        response
            .headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let encoder = TextEncoder::new();
    let mut body = Vec::new();
    match encoder.encode(&registry.gather(), &mut body) {
        Ok(()) => reply(StatusCode::OK, encoder.format_type(), body),
        Err(e) => reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            TEXT,
            format!("could not encode the metrics: {e}\n").into_bytes(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taken_port_is_an_init_error_naming_the_address() {
        let taken = StdListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        let err = PrometheusPipeline::bind("127.0.0.1", port)
            .err()
            .expect("the port is taken");
        let message = err.to_string();
        assert!(matches!(err, InitError::PrometheusBind { .. }), "{message}");
        assert!(
            message.starts_with(&format!(
                "cannot serve Prometheus metrics on 127.0.0.1:{port}"
            )) && message.contains("OTEL_EXPORTER_PROMETHEUS_PORT"),
            "{message}"
        );
    }

    #[test]
    fn only_get_and_head_of_metrics_are_served() {
        let registry = ::prometheus::Registry::new();
        let get = |method: Method, path: &str| {
            let request = Request::builder()
                .method(method)
                .uri(path)
                .body(())
                .unwrap();
            respond(&request, &registry).status()
        };
        assert_eq!(get(Method::GET, "/metrics"), StatusCode::OK);
        assert_eq!(get(Method::HEAD, "/metrics"), StatusCode::OK);
        assert_eq!(
            get(Method::POST, "/metrics"),
            StatusCode::METHOD_NOT_ALLOWED
        );
        assert_eq!(get(Method::GET, "/"), StatusCode::NOT_FOUND);
    }
}
