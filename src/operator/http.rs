//! `/metrics`, `/healthz` and `/readyz`.
//!
//! They are served from an OS thread of their own, with a single-threaded
//! runtime of its own, not from the runtime that watches and evaluates.
//! CPU-bound work on the shared runtime (evaluations, the RBAC analysis,
//! decoding large watch pages) can then delay an answer only as much as the
//! operating system's scheduler does: a liveness probe with a 1 s timeout
//! keeps getting its answer during a full re-evaluation of a large cluster
//! on two cores. Readiness still says whether the caches are synced.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use super::metrics::Metrics;
use super::stores::SyncState;

#[derive(Clone)]
pub struct Health {
    pub metrics: Arc<Metrics>,
    pub sync: Arc<SyncState>,
}

/// The endpoints' server; dropping it stops its thread and closes the port.
pub struct Server {
    local_addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// The address it listens on (the port chosen when `addr` asked for 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // The thread's runtime stops at once (the answers are computed
        // without awaiting anything), so joining it is short.
        drop(self.stop.take());
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::warn!("the metrics server's thread panicked");
        }
    }
}

/// Binds `addr` and serves the endpoints on a thread of their own until the
/// returned [`Server`] is dropped.
pub fn start(addr: SocketAddr, health: Health) -> std::io::Result<Server> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let local_addr = listener.local_addr()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("palisade-http".to_owned())
        .spawn(move || {
            runtime.block_on(async move {
                let listener = match TcpListener::from_std(listener) {
                    Ok(listener) => listener,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot serve /metrics, /healthz, /readyz");
                        return;
                    }
                };
                tokio::select! {
                    () = serve(listener, health) => {}
                    // Sent or dropped: the operator is stopping.
                    _ = stopped => {}
                }
            });
        })?;
    Ok(Server {
        local_addr,
        stop: Some(stop),
        thread: Some(thread),
    })
}

async fn serve(listener: TcpListener, health: Health) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!(error = %e, "cannot accept a metrics connection");
                continue;
            }
        };
        let health = health.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let health = health.clone();
                async move { Ok::<_, Infallible>(route(&req, &health)) }
            });
            if let Err(e) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(error = %e, "metrics connection ended");
            }
        });
    }
}

fn route(req: &Request<Incoming>, health: &Health) -> Response<Full<Bytes>> {
    if req.method() != Method::GET {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET\n");
    }
    match req.uri().path() {
        "/metrics" => {
            let mut response = text(StatusCode::OK, &health.metrics.encode());
            response.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            response
        }
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" if health.sync.all_synced() => text(StatusCode::OK, "ok\n"),
        "/readyz" => text(StatusCode::SERVICE_UNAVAILABLE, "caches not synced\n"),
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_owned())));
    *response.status_mut() = status;
    response
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    /// How many worker threads the busy runtime has: the 2 of a 2-core node.
    const WORKERS: usize = 2;
    /// Generous: a bound for a liveness probe, not a performance claim.
    const ANSWER_WITHIN: Duration = Duration::from_secs(5);

    fn health() -> Health {
        Health {
            metrics: Arc::new(Metrics::new()),
            sync: Arc::new(SyncState::default()),
        }
    }

    /// One GET with a plain socket (no runtime), its whole answer.
    fn get(addr: SocketAddr, path: &str) -> std::io::Result<String> {
        let mut stream = std::net::TcpStream::connect_timeout(&addr, ANSWER_WITHIN)?;
        stream.set_read_timeout(Some(ANSWER_WITHIN))?;
        stream.set_write_timeout(Some(ANSWER_WITHIN))?;
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: palisade\r\nConnection: close\r\n\r\n"
        )?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer)?;
        Ok(answer)
    }

    /// Releases the spinning tasks, also when an assertion fails (a runtime
    /// whose workers never yield cannot shut down).
    struct Release(Arc<AtomicBool>);

    impl Drop for Release {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    #[test]
    fn the_endpoints_answer_while_every_runtime_worker_computes() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(WORKERS)
            .enable_all()
            .build()
            .expect("runtime");
        let _entered = runtime.enter();
        let server = start("127.0.0.1:0".parse().expect("address"), health()).expect("start");
        let addr = server.local_addr();

        // CPU-bound work that never yields, on every worker, as evaluations
        // on the async workers did.
        let release = Release(Arc::new(AtomicBool::new(false)));
        let running = Arc::new(AtomicUsize::new(0));
        for _ in 0..WORKERS {
            let (released, running) = (release.0.clone(), running.clone());
            runtime.spawn(async move {
                running.fetch_add(1, Ordering::SeqCst);
                while !released.load(Ordering::SeqCst) {
                    std::hint::spin_loop();
                }
            });
        }
        while running.load(Ordering::SeqCst) < WORKERS {
            std::thread::yield_now();
        }

        let healthz = get(addr, "/healthz").expect("/healthz answers");
        let readyz = get(addr, "/readyz").expect("/readyz answers");
        let metrics = get(addr, "/metrics").expect("/metrics answers");
        drop(release);
        assert!(healthz.starts_with("HTTP/1.1 200"), "{healthz}");
        assert!(healthz.ends_with("ok\n"), "{healthz}");
        // Readiness follows the caches: no watch here, none to wait for.
        assert!(readyz.starts_with("HTTP/1.1 200"), "{readyz}");
        assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
        assert!(metrics.contains("# EOF"), "{metrics}");
    }

    #[test]
    fn dropping_the_server_closes_its_port() {
        let server = start("127.0.0.1:0".parse().expect("address"), health()).expect("start");
        let addr = server.local_addr();
        assert!(
            get(addr, "/healthz")
                .expect("answers")
                .starts_with("HTTP/1.1 200")
        );
        drop(server);
        assert!(std::net::TcpStream::connect_timeout(&addr, ANSWER_WITHIN).is_err());
        // The address can be served again.
        let again = start(addr, health()).expect("the port is free");
        assert!(
            get(again.local_addr(), "/nope")
                .expect("answers")
                .starts_with("HTTP/1.1 404")
        );
    }
}
