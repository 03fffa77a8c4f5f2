//! HTTP: `/api/v1` (JSON), `/console` (the operators' web console), health and readiness.

pub mod api;
pub mod api_acquire;
pub mod api_activities;
pub mod api_cards;
pub mod api_connect;
pub mod api_convert;
pub mod api_layering;
pub mod api_teams;
pub mod console;
pub mod console_acquire;
pub mod console_activities;
pub mod console_connect;
pub mod console_convert;
mod console_form;
pub mod console_layering;
pub mod h5;
pub mod i18n;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::Redirect;
use axum::routing::get;

use crate::acquire::links::Tracker;
use crate::channels::sms::log::LogProvider;
use crate::connect::service::Connect;
use crate::convert::flash::FlashSales;
use crate::convert::payments::Payments;
use crate::engage::outbox::Outbox;
use crate::know::audience::Audiences;
use crate::know::ingest::EventWriter;
use crate::platform::crypto::FieldCipher;
use crate::platform::db::Db;

/// What every handler needs.
#[derive(Clone)]
pub struct App {
    pub db: Db,
    pub cipher: FieldCipher,
    /// Group-commit writer for ingested events.
    pub events: EventWriter,
    /// The audience index of every tenant.
    pub audiences: Arc<Audiences>,
    /// Flash sales being sold, with their counters in memory.
    pub flash: Arc<FlashSales>,
    /// The payment provider for activities, and Siyu's record of payments.
    pub payments: Payments,
    /// Every outbound message goes through here; the dispatcher starts with the server.
    pub outbox: Arc<Outbox>,
    /// Tracking-link redirects and their click writer.
    pub links: Arc<Tracker>,
    /// WeCom: corps, the callback queue and its workers.
    pub connect: Arc<Connect>,
    /// How customers reach this server (`https://s.brand.cn`): the start of tracking links.
    pub public_url: String,
    /// The token in SMS providers' callback URLs; callbacks are refused without one.
    pub sms_callback_token: Option<String>,
    /// The provider's approved template for one-time codes (`sms.otp_template`).
    pub otp_template: Option<String>,
}

impl App {
    /// The application state; starts the event writer on the current runtime.
    pub fn new(db: Db, cipher: FieldCipher) -> App {
        Self::with_event_groups(db, cipher, crate::know::ingest::GROUP_EVENTS)
    }

    /// The same with the event writer's group size set (see [`EventWriter::start_with`]).
    pub fn with_event_groups(db: Db, cipher: FieldCipher, group_events: usize) -> App {
        let audiences = Audiences::new(db.clone());
        let events = EventWriter::start_with(
            db.clone(),
            cipher.clone(),
            group_events,
            Some(audiences.clone()),
        );
        let flash = FlashSales::new(db.clone());
        flash.spawn_expiry(std::time::Duration::from_secs(1));
        let payments = Payments::local(db.clone());
        spawn_activity_sweeps(db.clone(), payments.clone());
        let outbox = Outbox::new(
            db.clone(),
            cipher.clone(),
            Arc::new(LogProvider::new(db.clone())),
        );
        let links = Tracker::start(db.clone());
        let connect = Connect::start(db.clone(), cipher.clone(), events.clone());
        App {
            connect,
            outbox,
            links,
            public_url: "http://127.0.0.1:8080".into(),
            sms_callback_token: None,
            otp_template: None,
            payments,
            db,
            cipher,
            events,
            audiences,
            flash,
        }
    }
}

pub type AppState = Arc<App>;

/// Every 30 s: cancel group-buy teams past their deadline and refund their members (and any
/// payment left without a seat), and end bargains past theirs. Stops when the pool closes.
fn spawn_activity_sweeps(db: Db, payments: Payments) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(30));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if db.is_closed() {
                return;
            }
            let now = crate::platform::clock::now_ms();
            if let Err(e) =
                crate::convert::group_buy::sweep(&db, &payments, None, now, 600_000).await
            {
                tracing::error!(error = %e, "group-buy sweep failed; will retry");
            }
            if let Err(e) = crate::convert::bargain::expire_due(&db, now).await {
                tracing::error!(error = %e, "bargain expiry failed; will retry");
            }
        }
    });
}

pub fn router(app: App) -> Router {
    let state: AppState = Arc::new(app);
    Router::new()
        .route("/", get(|| async { Redirect::to("/console") }))
        .route("/healthz", get(|| async { "ok" }))
        .merge(api::routes())
        .merge(api_acquire::routes())
        .merge(api_cards::routes())
        .merge(api_connect::routes())
        .merge(api_layering::routes())
        .merge(api_convert::routes())
        .merge(api_activities::routes())
        .merge(api_teams::routes())
        .merge(h5::routes())
        .merge(console::routes())
        .merge(console_layering::routes())
        .merge(console_convert::routes())
        .merge(console_activities::routes())
        .merge(console_acquire::routes())
        .merge(console_connect::routes())
        // 1,000 events with properties fit comfortably; larger bodies are refused with 413.
        .layer(DefaultBodyLimit::max(16 * 1024 * 1024))
        .with_state(state)
}

/// Serves until the future `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: App,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    app.outbox.spawn(std::time::Duration::from_secs(1));
    app.connect.spawn_ticks(std::time::Duration::from_secs(30));
    axum::serve(
        listener,
        router(app).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
