//! The connect service: each tenant's WeCom corp (settings, callback crypto, API client), the
//! callback inbox and the queue behind it, and the periodic work (live-code rotas, SOP posts,
//! mass messages, callbacks left unfinished).
//!
//! A callback is decrypted, parsed and written to `wecom_inbox` before it is acknowledged, so
//! nothing acknowledged is lost; WeCom's retries of the same message hash to the same key and are
//! dropped. Then it is queued: an add with a welcome_code also goes to the urgent lane, where its
//! welcome message is sent at once (the code lives 20 s); everything, an add's other work included,
//! runs on the normal lanes: several, each in arrival order, with every callback about one
//! contact or one group on the same lane so their order holds.

use crate::platform::TenantId;
mod corps;
mod handling;
mod inbox;
mod lanes;
mod ticks;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::mpsc;

use super::client::WecomError;
use super::crypto::CallbackError;
use super::events::{Envelope, ParseError};
use super::live_codes::LiveCode;
use crate::know::audience::Audiences;
use crate::know::ingest::EventWriter;
use crate::platform::crypto::FieldCipher;
use crate::platform::db::{Db, DbError};
use crate::platform::refusal::{Refusal, Refuse};

pub use corps::{Corp, CorpSettings, SettingsView};
pub use inbox::{CallbackQuery, Received};
use lanes::{NORMAL_LANES, normal_lane, urgent_lane};
pub use ticks::TickReport;

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("WeCom is not configured for this tenant (PUT /api/v1/wecom)")]
    NotConfigured,
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error(transparent)]
    Callback(#[from] CallbackError),
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error(transparent)]
    Wecom(#[from] WecomError),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl Refuse for ConnectError {
    fn refusal(&self) -> Refusal {
        match self {
            ConnectError::NotConfigured => Refusal::NotFound("not_configured"),
            ConnectError::Db(_) => Refusal::Internal,
            ConnectError::Wecom(_) => Refusal::Upstream("wecom"),
            _ => Refusal::Invalid,
        }
    }
}

#[derive(Debug, Clone)]
struct Job {
    tenant: TenantId,
    key: String,
    env: Envelope,
    received_at: i64,
}

pub struct Connect {
    db: Db,
    cipher: FieldCipher,
    events: EventWriter,
    /// Told when a live code tags a contact, so the audiences count the tag at once.
    audiences: Option<Arc<Audiences>>,
    http: reqwest::Client,
    corps: RwLock<HashMap<TenantId, Arc<Corp>>>,
    codes: RwLock<HashMap<(TenantId, String), Arc<LiveCode>>>,
    urgent: mpsc::UnboundedSender<Job>,
    /// One round of periodic work at a time (the 30 s timer and `POST /api/v1/connect/tick`).
    tick_lock: tokio::sync::Mutex<()>,
    /// Off by default: a tenant's `base_url` may then point only at WeCom itself, not at hosts
    /// inside the network. `siyu serve` turns it on with `wecom_allow_base_url`; tests, the demo
    /// and the benchmark turn it on for the sandbox.
    any_base_url: std::sync::atomic::AtomicBool,
    normal: Vec<mpsc::UnboundedSender<Job>>,
    /// Callbacks queued in this process and not finished: the retry sweep leaves them alone.
    in_flight: std::sync::Mutex<std::collections::HashSet<(TenantId, String)>>,
}

impl Connect {
    /// The service with its two workers started on the current runtime.
    pub fn start(
        db: Db,
        cipher: FieldCipher,
        events: EventWriter,
        audiences: Option<Arc<Audiences>>,
    ) -> Arc<Connect> {
        let (urgent, urgent_rx) = mpsc::unbounded_channel();
        let (normal, normal_rx): (Vec<_>, Vec<_>) =
            (0..NORMAL_LANES).map(|_| mpsc::unbounded_channel()).unzip();
        let c = Arc::new(Connect {
            db,
            cipher,
            events,
            audiences,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
            corps: RwLock::new(HashMap::new()),
            codes: RwLock::new(HashMap::new()),
            urgent,
            tick_lock: tokio::sync::Mutex::new(()),
            any_base_url: std::sync::atomic::AtomicBool::new(false),
            normal,
            in_flight: Default::default(),
        });
        tokio::spawn(urgent_lane(Arc::downgrade(&c), urgent_rx));
        for rx in normal_rx {
            tokio::spawn(normal_lane(Arc::downgrade(&c), rx));
        }
        c
    }
}
