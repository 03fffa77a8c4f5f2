//! The composition root: the one way the application is put together.
//!
//! `siyu serve`, the demo, every benchmark and every test server call [`App::build`] with
//! [`AppSettings`] of their own (a port, a fresh database, the sandbox's WeCom), then
//! [`Workers::start`] through the web layer's `serve`. Nothing changes an `App` once it is built,
//! so a background loop never holds a part that another was swapped for.

pub mod workers;

use std::sync::Arc;

use crate::acquire::human_check::{self, HumanCheck};
use crate::acquire::links::Tracker;
use crate::acquire::otp::OtpLimits;
use crate::channels::sms::{SmsError, SmsSettings};
use crate::connect::service::Connect;
use crate::convert::flash::{FlashError, FlashSales};
use crate::convert::payments::{PaymentError, Payments};
use crate::engage::outbox::Outbox;
use crate::know::audience::Audiences;
use crate::know::ingest::EventWriter;
use crate::platform::config::{RequestLimitSettings, Settings};
use crate::platform::crypto::FieldCipher;
use crate::platform::customer_sessions::CustomerSessions;
use crate::platform::db::Db;

pub use workers::Workers;

/// Everything that differs between a server, a test, the demo and a benchmark.
#[derive(Debug, Clone)]
pub struct AppSettings {
    /// How customers reach this server (`https://s.brand.cn`): the start of tracking links.
    pub public_url: String,
    /// `[sms]`: the provider messages go out through, its callback token, the one-time-code
    /// template.
    pub sms: SmsSettings,
    /// Flash-sale stock counted in Redis (for several servers selling one sale) instead of in
    /// this process's memory.
    pub flash_gate: Option<FlashGate>,
    /// Lets tenants point WeCom's `base_url` elsewhere (a proxy, the sandbox).
    pub wecom_allow_base_url: bool,
    /// Lets tenants point a shop's `api_base` elsewhere (a proxy, the sandbox).
    pub marketplace_allow_api_base: bool,
    /// The event writer's largest group (see [`EventWriter::start_with`]).
    pub event_group_size: usize,
    /// Who takes customers' money (see [`Payments::configured`]): none unless named.
    pub payment_provider: Option<String>,
    /// Proxies whose `X-Forwarded-For` is believed (see [`parse_trusted_proxies`]).
    pub trusted_proxies: Option<String>,
    /// Request rates and requests in flight per route class (`[limits]`).
    pub limits: RequestLimitSettings,
    /// Who besides this host may read `/metrics` (see [`parse_trusted_proxies`] for the form).
    pub metrics_scrapers: Option<String>,
}

/// Where the flash-sale gate's Redis is, and the prefix of its keys.
#[derive(Debug, Clone)]
pub struct FlashGate {
    pub url: String,
    pub prefix: String,
}

impl AppSettings {
    /// A server's settings from `siyu.toml` and `SIYU_*`, for one bound to `listening`.
    pub fn from_settings(s: &Settings, listening: std::net::SocketAddr) -> AppSettings {
        AppSettings {
            public_url: s
                .public_url
                .clone()
                .unwrap_or_else(|| format!("http://{listening}")),
            sms: s.sms.clone(),
            flash_gate: s.flash_gate.as_ref().map(|url| FlashGate {
                url: url.clone(),
                prefix: "siyu:flash".into(),
            }),
            wecom_allow_base_url: s.wecom_allow_base_url,
            marketplace_allow_api_base: s.marketplace_allow_api_base,
            event_group_size: crate::know::ingest::GROUP_EVENTS,
            payment_provider: s.payment_provider.clone(),
            trusted_proxies: s.trusted_proxies.clone(),
            limits: s.limits,
            metrics_scrapers: s.metrics_scrapers.clone(),
        }
    }

    /// A process of its own on this machine (tests, the demo, benchmarks): the `log` SMS
    /// provider, flash-sale stock in memory, WeCom wherever a tenant points it, payments
    /// settled locally without taking money.
    pub fn local(public_url: impl Into<String>) -> AppSettings {
        AppSettings {
            public_url: public_url.into(),
            sms: SmsSettings::default(),
            flash_gate: None,
            wecom_allow_base_url: true,
            marketplace_allow_api_base: true,
            event_group_size: crate::know::ingest::GROUP_EVENTS,
            payment_provider: Some(crate::convert::payments::LOCAL_DEMO.into()),
            trusted_proxies: None,
            limits: RequestLimitSettings::default(),
            metrics_scrapers: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("configuring the SMS provider ([sms] in siyu.toml)")]
    Sms(#[from] SmsError),
    #[error("{0}: {1:?} is not an address or a range such as 10.0.0.0/8")]
    AddressList(&'static str, String),
    #[error("configuring payments (payment_provider in siyu.toml)")]
    Payments(#[from] PaymentError),
    #[error("connecting the flash-sale gate to {url}")]
    FlashGate { url: String, source: FlashError },
    #[error("starting the password-check threads")]
    PasswordChecks(#[source] std::io::Error),
}

/// What every handler and background loop needs.
#[derive(Clone)]
pub struct App {
    pub db: Db,
    pub cipher: FieldCipher,
    /// Group-commit writer for ingested events.
    pub events: EventWriter,
    /// The audience index of every tenant.
    pub audiences: Arc<Audiences>,
    /// Flash sales being sold, with their counters in memory or Redis.
    pub flash: Arc<FlashSales>,
    /// The payment provider for activities, and Siyu's record of payments.
    pub payments: Payments,
    /// Every outbound message goes through here.
    pub outbox: Arc<Outbox>,
    /// Tracking-link redirects and their click writer.
    pub links: Arc<Tracker>,
    /// WeCom: corps, the callback queue and its lanes.
    pub connect: Arc<Connect>,
    /// How customers reach this server: the start of tracking links.
    pub public_url: String,
    /// The token in SMS providers' callback URLs; callbacks are refused without one.
    pub sms_callback_token: Option<String>,
    /// The provider's approved template for one-time codes (`sms.otp_template`).
    pub otp_template: Option<String>,
    /// How many one-time codes the public may have sent (`sms.otp_*`).
    pub otp_limits: OtpLimits,
    /// The proof of work a public page solves before a code is sent.
    pub human_check: HumanCheck,
    /// Card scans already counted, by card and address.
    pub card_scans: Arc<crate::acquire::scans::ScanDebounce>,
    /// Brands' looks as customer pages show them, kept a minute.
    pub brands: Arc<crate::platform::brand::BrandCache>,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Who besides this host may read `/metrics`, directly.
    pub metrics_scrapers: Vec<ipnet::IpNet>,
    /// Whether shops' own `api_base` is called (`marketplace_allow_api_base`).
    pub marketplace_allow_api_base: bool,
    /// Customer tokens: issued, checked against the customer's revocations, revoked.
    pub customer_sessions: Arc<CustomerSessions>,
    /// Request rates and requests in flight per route class (the web layer's `limits`).
    pub request_limits: RequestLimitSettings,
    /// Export uploads being imported on this server: each recomputes its brand, so two at a time.
    pub upload_turns: Arc<tokio::sync::Semaphore>,
}

/// Uploaded exports one server imports at once.
pub const UPLOAD_TURNS: usize = 2;

pub type AppState = Arc<App>;

/// `trusted_proxies`: addresses and ranges separated by commas; a bare address is one host.
pub fn parse_trusted_proxies(list: Option<&str>) -> Result<Vec<ipnet::IpNet>, BuildError> {
    parse_addresses("trusted_proxies", list)
}

/// A setting's addresses and ranges separated by commas; a bare address is one host.
fn parse_addresses(
    setting: &'static str,
    list: Option<&str>,
) -> Result<Vec<ipnet::IpNet>, BuildError> {
    list.unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<ipnet::IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| BuildError::AddressList(setting, s.to_owned()))
        })
        .collect()
}

impl App {
    /// Builds the application on an open, migrated store. The writers that answer requests
    /// (events, clicks, flash reservations, WeCom callbacks) start with their parts, on the
    /// current runtime; the loops that run on their own start with [`Workers::start`].
    pub async fn build(db: Db, cipher: FieldCipher, s: AppSettings) -> Result<App, BuildError> {
        crate::platform::access::start_password_checks().map_err(BuildError::PasswordChecks)?;
        tokio::task::spawn_blocking(crate::platform::access::prepare_password_checks);
        // Before anything counts: a counter met before the recorder is lost.
        crate::platform::metrics::handle();
        let audiences = Audiences::new(db.clone());
        let events = EventWriter::start_with(
            db.clone(),
            cipher.clone(),
            s.event_group_size,
            Some(audiences.clone()),
        );
        let flash = match &s.flash_gate {
            None => FlashSales::new(db.clone()),
            Some(g) => FlashSales::with_redis(db.clone(), &g.url, &g.prefix)
                .await
                .map_err(|source| BuildError::FlashGate {
                    url: crate::platform::runtime::redact_url(&g.url),
                    source,
                })?,
        };
        let provider = s.sms.provider(&db)?;
        let outbox = Outbox::new(db.clone(), cipher.clone(), provider);
        let connect = Connect::start(
            db.clone(),
            cipher.clone(),
            events.clone(),
            Some(audiences.clone()),
        );
        if s.wecom_allow_base_url {
            connect.allow_any_base_url();
        }
        Ok(App {
            payments: Payments::configured(db.clone(), s.payment_provider.as_deref())?,
            links: Tracker::start(db.clone()),
            public_url: s.public_url.trim_end_matches('/').to_owned(),
            sms_callback_token: s.sms.callback_token.clone(),
            otp_template: s.sms.otp_template.clone(),
            otp_limits: OtpLimits::from_settings(&s.sms),
            card_scans: Arc::default(),
            brands: Arc::default(),
            human_check: HumanCheck::new(
                cipher.clone(),
                s.sms.otp_work_bits.unwrap_or(human_check::DEFAULT_BITS),
            ),
            trusted_proxies: parse_trusted_proxies(s.trusted_proxies.as_deref())?,
            metrics_scrapers: parse_addresses("metrics_scrapers", s.metrics_scrapers.as_deref())?,
            marketplace_allow_api_base: s.marketplace_allow_api_base,
            connect,
            outbox,
            flash,
            events,
            audiences,
            db,
            customer_sessions: Arc::new(CustomerSessions::new(cipher.clone())),
            request_limits: s.limits,
            upload_turns: Arc::new(tokio::sync::Semaphore::new(UPLOAD_TURNS)),
            cipher,
        })
    }
}
