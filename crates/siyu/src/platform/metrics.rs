//! What an operator scrapes on `/metrics` (Prometheus text): counters the process keeps of what
//! it refused and why, so an alert can fire on a budget spent or a flood met. Every app of a
//! process shares one recorder, installed when the first app is built.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// The hour's one-time-code budget of every tenant was spent: codes are refused until the hour
/// ends (the SMS circuit breaker opened).
pub const SMS_CIRCUIT_OPEN: &str = "siyu_sms_circuit_open_total";
/// One-time codes asked from public pages, by `outcome` (`sent`, or the budget that refused).
pub const OTP_REQUESTS: &str = "siyu_otp_requests_total";
/// Requests answered 429 or 503 before their handler, by route `class` and `why`.
pub const REQUESTS_REFUSED: &str = "siyu_requests_refused_total";

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process's recorder, installed at the first call. `None` when another recorder was
/// installed first (an embedding program's own): then that one has the counters.
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("another metrics recorder is installed; /metrics stays empty");
                return None;
            }
            metrics::describe_counter!(
                SMS_CIRCUIT_OPEN,
                "Times the hour's one-time-code budget of every tenant was spent (the SMS circuit breaker opened)"
            );
            metrics::describe_counter!(
                OTP_REQUESTS,
                "One-time codes asked from public pages, by outcome"
            );
            metrics::describe_counter!(
                REQUESTS_REFUSED,
                "Requests refused before their handler (rate or requests in flight), by route class"
            );
            Some(handle)
        })
        .as_ref()
}

/// The Prometheus text of every counter.
pub fn render() -> String {
    handle().map(PrometheusHandle::render).unwrap_or_default()
}
