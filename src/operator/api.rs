//! The layer every request to the API server goes through: a deadline on
//! each call that is not a watch, and retries of throttled (429) and
//! unavailable (503, 504) answers that honour `Retry-After`, counted in
//! metrics and logged at warn at most once per [`LOG_EVERY`].
//!
//! kube's own retry layer is turned off (`Config::default_retry`): it
//! retries up to 15 times with a backoff that grows to minutes, silently.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use http::{HeaderMap, Request, Response, StatusCode};
use kube::client::Body;
use tokio::time::Instant;
use tower::{BoxError, Layer, Service, ServiceExt};

use super::metrics::Metrics;

/// How long one API call (retries included) may take, except watches,
/// which stream for minutes and have the watcher's idle timeout instead.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Retries of one request before its last answer is returned as it is.
const MAX_RETRIES: u32 = 8;
/// Backoff when the server gives no `Retry-After`: doubles from the first
/// up to the cap.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(8);
/// A `Retry-After` longer than this is cut to it (the call's deadline cuts
/// it further).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// At most one warning about throttling per this period.
pub const LOG_EVERY: Duration = Duration::from_secs(10);

/// Why an answer is retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryReason {
    /// 429: API Priority and Fairness (or a max-in-flight limit) rejected it.
    Throttled,
    /// 503 or 504: the API server is starting, stopping or overloaded.
    Unavailable,
}

impl RetryReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RetryReason::Throttled => "throttled",
            RetryReason::Unavailable => "unavailable",
        }
    }

    fn of(status: StatusCode) -> Option<RetryReason> {
        match status {
            StatusCode::TOO_MANY_REQUESTS => Some(RetryReason::Throttled),
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT => {
                Some(RetryReason::Unavailable)
            }
            _ => None,
        }
    }
}

/// A call abandoned at its deadline.
#[derive(Debug, thiserror::Error)]
#[error("no answer from the API server within {0:?}")]
pub struct CallTimedOut(pub Duration);

/// Installs [`Guard`] on a client's service stack.
#[derive(Clone)]
pub struct GuardLayer {
    shared: Arc<Shared>,
}

struct Shared {
    metrics: Arc<Metrics>,
    call_timeout: Duration,
    warnings: RateLimitedLog,
}

impl GuardLayer {
    pub fn new(metrics: Arc<Metrics>, call_timeout: Duration) -> GuardLayer {
        GuardLayer {
            shared: Arc::new(Shared {
                metrics,
                call_timeout,
                warnings: RateLimitedLog::new(LOG_EVERY),
            }),
        }
    }
}

impl<S> Layer<S> for GuardLayer {
    type Service = Guard<S>;

    fn layer(&self, inner: S) -> Guard<S> {
        Guard {
            inner: Arc::new(tokio::sync::Mutex::new(inner)),
            shared: self.shared.clone(),
        }
    }
}

/// See the module documentation.
pub struct Guard<S> {
    /// Shared so that a retry can send again from its own future; held
    /// only while a request is handed over, never while it is answered.
    inner: Arc<tokio::sync::Mutex<S>>,
    shared: Arc<Shared>,
}

impl<S> Clone for Guard<S> {
    fn clone(&self) -> Self {
        Guard {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
        }
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = Result<T, BoxError>> + Send>>;

impl<S, B> Service<Request<Body>> for Guard<S>
where
    S: Service<Request<Body>, Response = Response<B>, Error = BoxError> + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<B>;
    type Error = BoxError;
    type Future = BoxFuture<Response<B>>;

    fn poll_ready(&mut self, _: &mut TaskContext<'_>) -> Poll<Result<(), BoxError>> {
        // Readiness of the inner service is awaited per call, under the lock.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let inner = self.inner.clone();
        let shared = self.shared.clone();
        Box::pin(async move {
            if is_watch(&request) {
                return send_with_retries(&inner, &shared, request).await;
            }
            let deadline = shared.call_timeout;
            match tokio::time::timeout(deadline, send_with_retries(&inner, &shared, request)).await
            {
                Ok(answer) => answer,
                Err(_) => {
                    shared.metrics.api_timeout();
                    Err(Box::new(CallTimedOut(deadline)) as BoxError)
                }
            }
        })
    }
}

/// A watch request streams until the server ends it.
fn is_watch(request: &Request<Body>) -> bool {
    request.uri().query().is_some_and(|q| {
        q.split('&')
            .any(|pair| pair == "watch=true" || pair == "watch=1")
    })
}

async fn send_with_retries<S, B>(
    inner: &tokio::sync::Mutex<S>,
    shared: &Shared,
    mut request: Request<Body>,
) -> Result<Response<B>, BoxError>
where
    S: Service<Request<Body>, Response = Response<B>, Error = BoxError>,
{
    let mut retries: u32 = 0;
    loop {
        let again = clone_request(&request);
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        let pending = {
            let mut service = inner.lock().await;
            service.ready().await?;
            service.call(request)
        };
        let response = pending.await?;
        let Some(reason) = RetryReason::of(response.status()) else {
            return Ok(response);
        };
        if reason == RetryReason::Throttled {
            shared.metrics.api_throttled();
        }
        let Some(next) = again.filter(|_| retries < MAX_RETRIES) else {
            shared.warnings.warn(|suppressed| {
                tracing::warn!(%method, %path, status = response.status().as_u16(), retries, suppressed, "API server kept refusing a request; giving up");
            });
            return Ok(response);
        };
        let delay = retry_delay(response.headers(), retries);
        let status = response.status().as_u16();
        drop(response);
        shared.metrics.api_retry(reason.as_str());
        shared.warnings.warn(|suppressed| {
            tracing::warn!(%method, %path, status, reason = reason.as_str(), delay_ms = delay.as_millis() as u64, suppressed, "API server {} a request; retrying", if reason == RetryReason::Throttled { "throttled" } else { "could not serve" });
        });
        tokio::time::sleep(delay).await;
        retries = retries.saturating_add(1);
        request = next;
    }
}

/// How long to wait before retry number `retries` (0 for the first): the
/// server's `Retry-After` when it gives one, else an exponential backoff.
pub fn retry_delay(headers: &HeaderMap, retries: u32) -> Duration {
    if let Some(seconds) = headers
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
    {
        return Duration::from_secs(seconds).min(MAX_RETRY_AFTER);
    }
    let factor = 1u32.checked_shl(retries).unwrap_or(u32::MAX);
    FIRST_BACKOFF
        .checked_mul(factor)
        .map_or(MAX_BACKOFF, |d| d.min(MAX_BACKOFF))
}

/// The same request again, when its body can be sent twice (kube's bodies
/// are in memory, except for streamed uploads, which are not retried).
fn clone_request(request: &Request<Body>) -> Option<Request<Body>> {
    let body = request.body().try_clone()?;
    let mut copy = Request::new(body);
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = request.version();
    *copy.headers_mut() = request.headers().clone();
    *copy.extensions_mut() = request.extensions().clone();
    Some(copy)
}

/// Lets one log line through per period and counts the ones held back,
/// so that a storm of throttled requests gives one warning every few
/// seconds, not thousands.
pub struct RateLimitedLog {
    every: Duration,
    last: Mutex<Option<Instant>>,
    suppressed: AtomicU64,
}

impl RateLimitedLog {
    pub fn new(every: Duration) -> RateLimitedLog {
        RateLimitedLog {
            every,
            last: Mutex::new(None),
            suppressed: AtomicU64::new(0),
        }
    }

    /// Calls `log` with the number of lines held back since the last one,
    /// unless a line went out less than a period ago.
    pub fn warn(&self, log: impl FnOnce(u64)) {
        let now = Instant::now();
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|at| now.saturating_duration_since(at) < self.every) {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            return;
        }
        *last = Some(now);
        drop(last);
        log(self.suppressed.swap(0, Ordering::Relaxed));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU32;

    use super::*;

    /// A service answering with `statuses` in turn (then 200), recording
    /// when each request arrived.
    fn scripted(
        statuses: Vec<(u16, Option<&'static str>)>,
        arrivals: Arc<Mutex<Vec<Instant>>>,
    ) -> impl Service<
        Request<Body>,
        Response = Response<()>,
        Error = BoxError,
        Future = BoxFuture<Response<()>>,
    > + Send
    + 'static {
        let calls = Arc::new(AtomicU32::new(0));
        tower::service_fn(move |_request: Request<Body>| {
            let n = calls.fetch_add(1, Ordering::SeqCst) as usize;
            arrivals.lock().unwrap().push(Instant::now());
            let (status, retry_after) = statuses.get(n).copied().unwrap_or((200, None));
            Box::pin(async move {
                let mut response = Response::builder().status(status);
                if let Some(seconds) = retry_after {
                    response = response.header("Retry-After", seconds);
                }
                Ok(response.body(()).unwrap())
            }) as BoxFuture<Response<()>>
        })
    }

    fn request(uri: &str) -> Request<Body> {
        Request::builder()
            .method("PATCH")
            .uri(uri)
            .body(Body::from(b"{}".to_vec()))
            .unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_throttled_request_is_retried_after_retry_after_and_counted() {
        let metrics = Arc::new(Metrics::new());
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        let inner = scripted(vec![(429, Some("3")), (429, Some("1"))], arrivals.clone());
        let mut guard = GuardLayer::new(metrics.clone(), CALL_TIMEOUT).layer(inner);
        let response = guard
            .call(request("/apis/palisade.dev/v1alpha1/x"))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let at = arrivals.lock().unwrap().clone();
        assert_eq!(at.len(), 3);
        assert_eq!(at[1] - at[0], Duration::from_secs(3), "Retry-After: 3");
        assert_eq!(at[2] - at[1], Duration::from_secs(1), "Retry-After: 1");
        let text = metrics.encode();
        assert!(text.contains("palisade_api_throttled_total 2"), "{text}");
        assert!(
            text.contains(r#"palisade_api_retries_total{reason="throttled"} 2"#),
            "{text}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn without_retry_after_the_backoff_doubles_and_gives_up() {
        let metrics = Arc::new(Metrics::new());
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        let inner = scripted(vec![(503, None); 20], arrivals.clone());
        let mut guard = GuardLayer::new(metrics.clone(), Duration::from_secs(3600)).layer(inner);
        let response = guard.call(request("/api/v1/pods")).await.unwrap();
        assert_eq!(response.status(), 503, "the last answer, after the retries");
        let at = arrivals.lock().unwrap().clone();
        assert_eq!(at.len() as u32, MAX_RETRIES + 1);
        let gaps: Vec<Duration> = at.windows(2).map(|w| w[1] - w[0]).collect();
        assert_eq!(gaps[0], FIRST_BACKOFF);
        assert_eq!(gaps[1], FIRST_BACKOFF * 2);
        assert_eq!(*gaps.last().unwrap(), MAX_BACKOFF);
        assert!(
            !metrics.encode().contains("palisade_api_throttled_total 1"),
            "503 is not throttling"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_hung_call_ends_at_its_deadline_but_a_watch_does_not() {
        let metrics = Arc::new(Metrics::new());
        let hung = tower::service_fn(|_request: Request<Body>| {
            Box::pin(std::future::pending()) as BoxFuture<Response<()>>
        });
        let mut guard = GuardLayer::new(metrics.clone(), Duration::from_secs(5)).layer(hung);
        let started = Instant::now();
        let error = guard.call(request("/api/v1/pods/x")).await.unwrap_err();
        assert!(error.is::<CallTimedOut>(), "{error}");
        assert_eq!(started.elapsed(), Duration::from_secs(5));
        assert!(metrics.encode().contains("palisade_api_timeouts_total 1"));

        let watch = guard.call(request("/api/v1/pods?watch=true&resourceVersion=1"));
        let waited = tokio::time::timeout(Duration::from_secs(600), watch).await;
        assert!(waited.is_err(), "a watch has no call deadline");
    }

    #[test]
    fn retry_delays_are_bounded() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_delay(&headers, 0), FIRST_BACKOFF);
        assert_eq!(retry_delay(&headers, 40), MAX_BACKOFF, "no overflow");
        headers.insert("Retry-After", "99999999999".parse().unwrap());
        assert_eq!(retry_delay(&headers, 0), MAX_RETRY_AFTER);
        headers.insert("Retry-After", "garbage".parse().unwrap());
        assert_eq!(retry_delay(&headers, 1), FIRST_BACKOFF * 2);
    }

    #[tokio::test(start_paused = true)]
    async fn warnings_are_rate_limited() {
        let log = RateLimitedLog::new(Duration::from_secs(10));
        let mut lines = Vec::new();
        for _ in 0..5 {
            log.warn(|held| lines.push(held));
        }
        tokio::time::advance(Duration::from_secs(10)).await;
        log.warn(|held| lines.push(held));
        assert_eq!(lines, vec![0, 4]);
    }
}
