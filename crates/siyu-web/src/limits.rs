//! Request limits per route class: how fast one client may call, and how many requests of a
//! class may be in flight before more are turned away. They come before any handler, so a flood
//! costs a hash lookup, not a database round trip; the budgets that must hold across servers
//! (one-time codes, sign-in) stay in the store (`platform::limits`).
//!
//! A client is its address (IPv6 by /64). This machine has no budget (health checks, a proxy on
//! the same host). Nor, while `trusted_proxies` is unset, does a private address: it is a load
//! balancer or NAT in front, every customer behind it would share one budget, and a flash sale
//! would be throttled as one script. An address from the internet is always counted, whatever
//! headers it sends.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use ipnet::IpNet;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use super::client_ip::{client_of, forwarded_for, is_private};
use siyu::platform::config::RequestLimitSettings;

/// Who calls a route, which sets its limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteClass {
    /// The internet: customer pages and their JSON, tracking links, cards, health.
    Customer,
    /// SMS and WeCom callbacks: a few provider addresses sending in bursts.
    Callback,
    /// The brand's systems with an API key.
    Api,
    /// Store staff in the console.
    Console,
}

impl RouteClass {
    pub fn of(path: &str) -> RouteClass {
        if path.starts_with("/api/") {
            RouteClass::Api
        } else if path.starts_with("/console") {
            RouteClass::Console
        } else if path.starts_with("/callbacks/") {
            RouteClass::Callback
        } else {
            RouteClass::Customer
        }
    }
}

/// Who a budget is counted against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Caller {
    Address(IpAddr),
    /// The first 128 bits of the SHA-256 of an API key. A request is counted against its key and
    /// its address both, so made-up keys do not make fresh budgets.
    Key([u8; 16]),
}

/// Requests one address may have in flight at once, in every class together.
pub const IN_FLIGHT_PER_ADDRESS: u32 = 64;

impl RouteClass {
    /// The class as `/metrics` labels it.
    pub fn label(self) -> &'static str {
        match self {
            RouteClass::Customer => "customer",
            RouteClass::Callback => "callback",
            RouteClass::Api => "api",
            RouteClass::Console => "console",
        }
    }
}

/// The limits of one server, shared by every request.
pub struct RequestLimits {
    customer: DefaultKeyedRateLimiter<Caller>,
    console: DefaultKeyedRateLimiter<Caller>,
    api: DefaultKeyedRateLimiter<Caller>,
    in_flight: [Arc<Semaphore>; 4],
    /// Requests in flight by address.
    by_address: Arc<std::sync::Mutex<HashMap<IpAddr, u32>>>,
    trusted_proxies: Vec<IpNet>,
    /// Requests seen, to forget idle callers now and then.
    seen: AtomicU64,
    last_busy_warning: std::sync::atomic::AtomicI64,
    /// How long a customer page's or callback's body, and a console request's, may take.
    public_body_time: Duration,
    console_body_time: Duration,
}

/// Every this many requests the budgets of callers gone quiet are forgotten.
const FORGET_EVERY: u64 = 8_192;

fn quota(per_second: u32, burst: u32) -> Quota {
    let rate = NonZeroU32::new(per_second.max(1)).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(burst.max(per_second).max(1)).unwrap_or(NonZeroU32::MIN);
    Quota::per_second(rate).allow_burst(burst)
}

impl RequestLimits {
    pub fn new(s: &RequestLimitSettings, trusted_proxies: Vec<IpNet>) -> RequestLimits {
        let permits = |n: u32| Arc::new(Semaphore::new(n.max(1) as usize));
        RequestLimits {
            customer: RateLimiter::keyed(quota(s.customer_per_second, s.customer_burst)),
            console: RateLimiter::keyed(quota(s.console_per_second, s.console_burst)),
            api: RateLimiter::keyed(quota(s.api_per_second, s.api_burst)),
            in_flight: [
                permits(s.customer_in_flight),
                permits(s.callback_in_flight),
                permits(s.api_in_flight),
                permits(s.console_in_flight),
            ],
            by_address: Arc::default(),
            trusted_proxies,
            seen: AtomicU64::new(0),
            last_busy_warning: std::sync::atomic::AtomicI64::new(0),
            public_body_time: Duration::from_secs(u64::from(s.public_body_seconds.max(1))),
            console_body_time: Duration::from_secs(u64::from(s.console_body_seconds.max(1))),
        }
    }

    /// How long a request of the class may take to send its body: a client that sends half a
    /// body does not keep its slot. The API has none (uploads of exports take minutes).
    fn body_time(&self, class: RouteClass) -> Option<Duration> {
        match class {
            RouteClass::Customer | RouteClass::Callback => Some(self.public_body_time),
            RouteClass::Console => Some(self.console_body_time),
            RouteClass::Api => None,
        }
    }

    /// The address a request's budget is counted against, or `None` when it has none of its
    /// own (this machine; everyone behind an unnamed proxy).
    fn address_of(&self, peer: IpAddr, forwarded: Option<&str>) -> Option<IpAddr> {
        let client = client_of(peer, forwarded, &self.trusted_proxies);
        if client.is_loopback() || (self.trusted_proxies.is_empty() && is_private(client)) {
            return None;
        }
        Some(match client {
            IpAddr::V6(v6) => {
                // One subscriber holds a /64: count it as one address.
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(bits.into())
            }
            v4 => v4,
        })
    }

    /// How long the caller must wait, if their budget for the class is spent.
    fn wait(&self, class: RouteClass, caller: Caller) -> Option<std::time::Duration> {
        let limiter = match class {
            RouteClass::Customer => &self.customer,
            RouteClass::Console => &self.console,
            RouteClass::Api => &self.api,
            RouteClass::Callback => return None,
        };
        limiter
            .check_key(&caller)
            .err()
            .map(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    /// Says in the log that a class is full, at most once a second: under a flood a line per
    /// refusal would cost more than the refusals.
    fn warn_busy(&self, class: RouteClass) {
        let now = siyu::platform::clock::now_ms();
        let last = self.last_busy_warning.load(Ordering::Relaxed);
        if now - last >= 1_000
            && self
                .last_busy_warning
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(?class, "requests in flight at the limit; answering busy");
        }
    }

    fn forget_idle_callers(&self) {
        if self.seen.fetch_add(1, Ordering::Relaxed) % FORGET_EVERY == FORGET_EVERY - 1 {
            for l in [&self.customer, &self.console, &self.api] {
                l.retain_recent();
                l.shrink_to_fit();
            }
        }
    }

    fn permits(&self, class: RouteClass) -> &Arc<Semaphore> {
        &self.in_flight[match class {
            RouteClass::Customer => 0,
            RouteClass::Callback => 1,
            RouteClass::Api => 2,
            RouteClass::Console => 3,
        }]
    }
}

/// A slot of an address's requests in flight, given back when the request ends.
struct AddressSlot {
    address: IpAddr,
    by_address: Arc<std::sync::Mutex<HashMap<IpAddr, u32>>>,
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut m = self
            .by_address
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = m.get_mut(&self.address) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&self.address);
            }
        }
    }
}

impl RequestLimits {
    fn take_address_slot(&self, address: IpAddr) -> Option<AddressSlot> {
        let mut m = self
            .by_address
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = m.entry(address).or_insert(0);
        if *n >= IN_FLIGHT_PER_ADDRESS {
            return None;
        }
        *n += 1;
        Some(AddressSlot {
            address,
            by_address: self.by_address.clone(),
        })
    }
}

/// The console's upload of an order export (`console::imports::upload`).
pub const CONSOLE_UPLOAD_PATH: &str = "/console/imports";
/// How long that upload may take to send its file.
const CONSOLE_UPLOAD_TIME: Duration = Duration::from_secs(30 * 60);

/// The middleware: 429 when the caller's rate is spent, 503 when the class (or the caller's own
/// share of requests in flight) is full; a body not sent in its class's time is cut off (the
/// handler then answers that it could not read it).
pub async fn limit(State(limits): State<Arc<RequestLimits>>, req: Request, next: Next) -> Response {
    limits.forget_idle_callers();
    let class = RouteClass::of(req.uri().path());
    let address = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .and_then(|c| limits.address_of(c.0.ip(), forwarded_for(req.headers()).as_deref()));
    let key = api_key(&req).filter(|_| class == RouteClass::Api);
    let callers = [address.map(Caller::Address), key.map(Caller::Key)];
    for caller in callers.into_iter().flatten() {
        if let Some(wait) = limits.wait(class, caller) {
            return refused(
                class,
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                wait.as_secs() + 1,
            );
        }
    }
    let _address_slot = match address {
        Some(a) => match limits.take_address_slot(a) {
            Some(slot) => Some(slot),
            None => return refused(class, StatusCode::SERVICE_UNAVAILABLE, "unavailable", 1),
        },
        None => None,
    };
    let Ok(_permit) = limits.permits(class).clone().try_acquire_owned() else {
        limits.warn_busy(class);
        return refused(class, StatusCode::SERVICE_UNAVAILABLE, "unavailable", 1);
    };
    // The console's export upload sends a file for minutes; its handler reads the body only for
    // a signed-in operator, and a stalled one gives its upload turn back after half an hour.
    let deadline = match limits.body_time(class) {
        Some(_) if req.uri().path() == CONSOLE_UPLOAD_PATH => Some(CONSOLE_UPLOAD_TIME),
        other => other,
    };
    let req = match deadline {
        None => req,
        Some(limit) => {
            let deadline = tokio::time::Instant::now() + limit;
            req.map(|body| axum::body::Body::new(BodyDeadline::new(body, deadline)))
        }
    };
    next.run(req).await
}

/// A request body that must arrive by a deadline. The timer is set only if the body is not all
/// there at once, so the usual small body that comes with its headers costs no timer.
struct BodyDeadline {
    body: axum::body::Body,
    deadline: tokio::time::Instant,
    sleep: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl BodyDeadline {
    fn new(body: axum::body::Body, deadline: tokio::time::Instant) -> BodyDeadline {
        BodyDeadline {
            body,
            deadline,
            sleep: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the request body was not sent in time")]
struct BodyTooSlow;

impl axum::body::HttpBody for BodyDeadline {
    type Data = axum::body::Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        use std::future::Future;
        use std::task::Poll;
        let this = &mut *self;
        if let Poll::Ready(frame) = std::pin::Pin::new(&mut this.body).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let deadline = this.deadline;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTooSlow)))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

fn api_key(req: &Request) -> Option<[u8; 16]> {
    let key = req
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")?;
    let digest = Sha256::digest(key.trim().as_bytes());
    let mut k = [0u8; 16];
    k.copy_from_slice(&digest[..16]);
    Some(k)
}

/// The answer each class's callers read: JSON for programs and customer pages, a sentence in
/// Chinese (English after it) for the console.
fn refused(
    class: RouteClass,
    status: StatusCode,
    code: &'static str,
    retry_after: u64,
) -> Response {
    let busy = status == StatusCode::SERVICE_UNAVAILABLE;
    metrics::counter!(
        siyu::platform::metrics::REQUESTS_REFUSED,
        "class" => class.label(),
        "why" => if busy { "busy" } else { "rate" },
    )
    .increment(1);
    let mut r = if class == RouteClass::Console {
        let text = if busy {
            "系统繁忙，请稍后再试 / The server is busy, try again shortly"
        } else {
            "操作过于频繁，请稍后再试 / Too many requests, try again shortly"
        };
        (status, text).into_response()
    } else {
        let message = match status {
            StatusCode::SERVICE_UNAVAILABLE => "the server is busy; try again shortly",
            _ => "too many requests from this caller; try again after Retry-After seconds",
        };
        (
            status,
            axum::Json(serde_json::json!({"error": {"code": code, "message": message}})),
        )
            .into_response()
    };
    if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn limits(trusted: &[&str]) -> RequestLimits {
        let settings = RequestLimitSettings {
            customer_per_second: 1,
            customer_burst: 3,
            ..RequestLimitSettings::default()
        };
        let nets = trusted.iter().map(|t| t.parse().expect("net")).collect();
        RequestLimits::new(&settings, nets)
    }

    #[test]
    fn routes_fall_into_their_class() {
        assert_eq!(RouteClass::of("/api/v1/orders"), RouteClass::Api);
        assert_eq!(RouteClass::of("/console/login"), RouteClass::Console);
        assert_eq!(
            RouteClass::of("/callbacks/sms/aliyun/x"),
            RouteClass::Callback
        );
        for p in [
            "/h5/v1/gifts",
            "/t/abc",
            "/c/XYZ",
            "/healthz",
            "/",
            "/nothing",
        ] {
            assert_eq!(RouteClass::of(p), RouteClass::Customer, "{p}");
        }
    }

    #[test]
    fn a_caller_gets_the_burst_then_waits_and_others_are_untouched() {
        let l = limits(&[]);
        let a = Caller::Address(ip("203.0.113.9"));
        for _ in 0..3 {
            assert_eq!(l.wait(RouteClass::Customer, a), None);
        }
        let wait = l.wait(RouteClass::Customer, a).expect("the fourth waits");
        assert!(wait <= std::time::Duration::from_secs(1), "{wait:?}");
        assert_eq!(
            l.wait(RouteClass::Customer, Caller::Address(ip("203.0.113.10"))),
            None
        );
        assert_eq!(
            l.wait(RouteClass::Console, a),
            None,
            "classes have budgets of their own"
        );
        for _ in 0..100 {
            assert_eq!(
                l.wait(RouteClass::Callback, a),
                None,
                "callbacks are not rated"
            );
        }
    }

    #[test]
    fn this_machine_and_unnamed_proxies_have_no_budget_of_their_own() {
        let l = limits(&[]);
        assert_eq!(l.address_of(ip("127.0.0.1"), None), None);
        assert_eq!(l.address_of(ip("::1"), None), None);
        for header in [Some("203.0.113.9"), None] {
            assert_eq!(
                l.address_of(ip("10.0.0.5"), header),
                None,
                "a private peer while no proxy is named: everyone behind it would share"
            );
        }
        assert_eq!(
            l.address_of(ip("198.51.100.4"), Some("10.0.0.5")),
            Some(ip("198.51.100.4")),
            "an internet address cannot exempt itself with a header"
        );
        assert_eq!(
            l.address_of(ip("203.0.113.9"), None),
            Some(ip("203.0.113.9"))
        );
        assert_eq!(
            l.address_of(ip("203.0.113.9"), Some("198.51.100.1")),
            Some(ip("203.0.113.9")),
            "a client's own header is ignored"
        );
        let named = limits(&["127.0.0.1/32"]);
        assert_eq!(
            named.address_of(ip("127.0.0.1"), Some("198.51.100.1")),
            Some(ip("198.51.100.1"))
        );
        assert_eq!(
            named.address_of(ip("2001:db8::1"), None),
            Some(ip("2001:db8::")),
            "IPv6 counted by /64"
        );
        assert_eq!(
            named.address_of(ip("2001:db8::1:2:3:4"), None),
            named.address_of(ip("2001:db8::9"), None)
        );
    }
}

#[cfg(test)]
mod slot_tests {
    use super::*;

    #[test]
    fn an_address_holds_at_most_its_share_of_requests_in_flight() {
        let l = RequestLimits::new(&RequestLimitSettings::default(), vec![]);
        let a: IpAddr = "203.0.113.9".parse().expect("ip");
        let held: Vec<_> = (0..IN_FLIGHT_PER_ADDRESS)
            .map(|_| l.take_address_slot(a).expect("a slot"))
            .collect();
        assert!(l.take_address_slot(a).is_none(), "one more is refused");
        assert!(
            l.take_address_slot("203.0.113.10".parse().expect("ip"))
                .is_some()
        );
        drop(held);
        let again = l.take_address_slot(a);
        assert!(again.is_some(), "slots come back when requests end");
        let m = l.by_address.lock().expect("lock");
        assert_eq!(m.get(&a), Some(&1));
    }
}
