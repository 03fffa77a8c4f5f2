//! The overview's channel data: shops synced from their platforms, the latest receipts of
//! imports and syncs, and the status texts no one reads yet, which an operator reads here.

use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use siyu::platform::TenantId;

use crate::AppState;
use crate::console::ConsoleUser;
use crate::i18n::{DataTr, Lang, status_name};
use siyu::channels::marketplaces::Platform;
use siyu::know::import::{receipts, status_map};
use siyu::know::shops;
use siyu::platform::clock::{format_local, now_ms};

/// A shop as the overview lists it.
pub(crate) struct ShopRow {
    pub name: String,
    pub platform: String,
    pub synced_to: String,
    pub lag_minutes: i64,
    pub orders: i64,
    /// 正常, 已断开, or 同步出错 with the error's detail in `detail`.
    pub state: &'static str,
    pub detail: String,
}

/// A receipt as the overview lists it.
pub(crate) struct ReceiptRow {
    pub id: i64,
    /// The run kept a file of its rejected rows (an import does; a sync does not).
    pub has_rejected_file: bool,
    pub at: String,
    pub source: &'static str,
    pub name: String,
    pub read: i64,
    pub imported: i64,
    pub updated: i64,
    pub unknown_status: i64,
    pub unlinked: i64,
    pub rejected: i64,
}

pub(crate) struct ChannelData {
    pub shops: Vec<ShopRow>,
    pub receipts: Vec<ReceiptRow>,
    /// (status text, orders) read as nothing yet.
    pub waiting: Vec<(String, i64)>,
    /// The statuses a text may be read as: (value, name in the page's language).
    pub readings: Vec<(&'static str, String)>,
}

/// A receipt's name for people: a sync's `platform:shop` with the platform named in the
/// page's language; a file imported from the command line by its own name, not the server's
/// path to it.
fn run_name(lang: Lang, name: &str) -> String {
    match name
        .split_once(':')
        .and_then(|(p, shop)| Some((Platform::parse(p)?, shop)))
    {
        Some((p, shop)) if lang == Lang::Zh => format!("{} {shop}", p.zh()),
        _ => name.rsplit(['/', '\\']).next().unwrap_or(name).to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_named_for_people() {
        assert_eq!(run_name(Lang::Zh, "pdd:10086"), "拼多多 10086");
        assert_eq!(run_name(Lang::En, "pdd:10086"), "pdd:10086");
        assert_eq!(
            run_name(Lang::Zh, "/tmp/x/demo/jd_orders.csv"),
            "jd_orders.csv"
        );
        assert_eq!(run_name(Lang::Zh, "C:\\exports\\天猫.csv"), "天猫.csv");
        assert_eq!(run_name(Lang::Zh, "天猫订单.csv"), "天猫订单.csv");
    }
}

pub(crate) async fn channel_data(
    app: &AppState,
    tenant: TenantId,
    lang: Lang,
) -> Result<ChannelData, String> {
    let d: &DataTr = lang.data();
    let now = now_ms();
    let shops = shops::list(&app.db, tenant)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|s| {
            let (state, detail) = match (&s.disconnected_at, &s.last_error) {
                (Some(_), _) => (d.disconnected, String::new()),
                (None, Some(e)) => (d.sync_failed, e.clone()),
                (None, None) => (d.healthy, String::new()),
            };
            ShopRow {
                platform: match (Platform::parse(&s.platform), lang) {
                    (Some(p), Lang::Zh) => p.zh().to_owned(),
                    _ => s.platform.clone(),
                },
                synced_to: format_local(s.sync_cursor),
                lag_minutes: s.lag_ms(now) / 60_000,
                orders: s.orders_synced,
                name: s.name,
                state,
                detail,
            }
        })
        .collect();
    let receipts = receipts::list(&app.db, tenant, 5)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|r| ReceiptRow {
            id: r.id,
            has_rejected_file: r.has_rejected_file,
            at: format_local(r.finished_at),
            source: if r.source == "sync" {
                d.source_sync
            } else {
                d.source_file
            },
            name: run_name(lang, &r.name),
            read: r.read,
            imported: r.imported,
            updated: r.updated,
            unknown_status: r.unknown_status,
            unlinked: r.unlinked,
            rejected: r.rejected,
        })
        .collect();
    let waiting = status_map::waiting(&app.db, tenant)
        .await
        .map_err(|e| e.to_string())?;
    let readings = [
        "paid",
        "shipped",
        "completed",
        "refunded",
        "closed",
        "pending",
    ]
    .into_iter()
    .map(|s| (s, status_name(lang, s)))
    .collect();
    Ok(ChannelData {
        shops,
        receipts,
        waiting,
        readings,
    })
}

#[derive(Deserialize)]
pub(crate) struct ReadStatusForm {
    text: String,
    status: String,
}

/// `POST /console/statuses`: an operator reads a waiting status text as a status; the orders
/// that carry it are re-read and the buyers' figures follow.
pub(crate) async fn read_status(
    State(app): State<AppState>,
    u: ConsoleUser,
    Form(f): Form<ReadStatusForm>,
) -> Response {
    let d = u.lang.data();
    if !u.caller.role.may_write() {
        return super::render_overview(
            &app,
            &u,
            vec![d.read_only.to_owned()],
            StatusCode::FORBIDDEN,
        )
        .await;
    }
    let tenant = u.caller.tenant_id;
    let map = match status_map::load(&app.db, tenant).await {
        Ok(m) => m,
        Err(e) => return super::server_error(e),
    };
    let entries: Vec<(String, String)> = map
        .entries()
        .filter(|(t, _)| *t != f.text.trim())
        .map(|(t, s)| (t.to_owned(), s.as_str().to_owned()))
        .chain([(f.text.clone(), f.status.clone())])
        .collect();
    let map = match status_map::StatusMap::new(entries) {
        Ok(m) => m,
        Err(e) => {
            let said = format!("{}「{}」: {e}", d.status_text, f.text);
            return super::render_overview(&app, &u, vec![said], StatusCode::BAD_REQUEST).await;
        }
    };
    match siyu::workflows::status_map_saved(&app.db, tenant, &map, now_ms()).await {
        Ok(_) => Redirect::to("/console/overview#channel-data").into_response(),
        Err(e) => super::server_error(e),
    }
}
