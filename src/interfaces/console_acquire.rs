//! Console page for acquire: SMS recall campaigns and package-card batches, each with its
//! figures, the GMV series after send as a small bar chart, the A/B verdict and its exports.

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::AppState;
use super::api::ApiError;
use super::console::{ConsoleUser, page};
use super::i18n::{AcqTr, Lang, Tr};
use crate::acquire::{campaigns, cards, report};
use crate::know::report::yuan;

pub fn routes() -> Router<AppState> {
    Router::new().route("/console/acquire", get(acquire_page))
}

pub struct Bar {
    pub x: i64,
    pub y: i64,
    pub h: i64,
    pub label: String,
}

pub struct CampaignRow {
    pub id: i64,
    pub name: String,
    pub status: String,
    pub sent: i64,
    pub clicks: i64,
    pub buyers: i64,
    pub gmv: String,
    pub cost: String,
    pub roi: String,
    pub bars: Vec<Bar>,
    pub verdict: String,
}

pub struct BatchRow {
    pub id: i64,
    pub name: String,
    pub channel: String,
    pub shipped: i64,
    pub scanned: i64,
    pub claimed: i64,
    pub recall_rate: String,
    pub gmv: String,
    pub per_card: String,
    pub roi: String,
}

#[derive(Template)]
#[template(path = "console/acquire.html")]
struct AcquirePage {
    tr: &'static Tr,
    aq: &'static AcqTr,
    lang: &'static str,
    user: String,
    active: &'static str,
    campaigns: Vec<CampaignRow>,
    batches: Vec<BatchRow>,
}

fn roi(r: Option<f64>) -> String {
    r.map(|x| format!("{x:.1}")).unwrap_or_else(|| "–".into())
}

/// Bars of cumulative GMV at 3, 6, 12, 24 hours, scaled to the tallest.
fn bars(points: &[report::Point]) -> Vec<Bar> {
    let top = points.iter().map(|p| p.gmv).max().unwrap_or(0).max(1);
    points
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let h = (p.gmv * 40 / top).max(1);
            Bar {
                x: i as i64 * 33,
                y: 44 - h,
                h,
                label: format!("{}h: ¥{}", p.hours, yuan(p.gmv)),
            }
        })
        .collect()
}

async fn acquire_page(State(app): State<AppState>, u: ConsoleUser) -> Response {
    let tenant = u.caller.tenant_id;
    let run = async {
        let mut cs = Vec::new();
        for c in campaigns::list(&app.db, tenant).await?.into_iter().take(20) {
            let r = report::campaign_report(&app.db, tenant, c.id).await?;
            let verdict =
                r.ab.as_ref()
                    .map(|a| {
                        if u.lang == Lang::Zh {
                            a.verdict_zh.clone()
                        } else {
                            a.verdict_en.clone()
                        }
                    })
                    .unwrap_or_default();
            cs.push(CampaignRow {
                id: c.id,
                name: c.name,
                status: c.status,
                sent: r.total.sent,
                clicks: r.total.clicks,
                buyers: r.total.buyers,
                gmv: yuan(r.total.gmv),
                cost: yuan(r.total.cost),
                roi: roi(r.total.roi),
                bars: bars(&r.total.series),
                verdict,
            });
        }
        let mut bs = Vec::new();
        for b in cards::list_batches(&app.db, tenant)
            .await?
            .into_iter()
            .take(20)
        {
            let r = cards::batch_report(&app.db, tenant, b.id).await?;
            bs.push(BatchRow {
                id: b.id,
                name: b.name,
                channel: b.channel,
                shipped: r.total.shipped,
                scanned: r.total.scanned,
                claimed: r.total.claimed,
                recall_rate: format!("{:.1}%", r.total.recall_rate * 100.0),
                gmv: yuan(r.total.gmv),
                per_card: format!("{:.2}", r.total.per_card / 100.0),
                roi: roi(r.total.roi),
            });
        }
        Ok::<_, ApiError>((cs, bs))
    };
    match run.await {
        Ok((campaigns, batches)) => page(AcquirePage {
            tr: u.lang.tr(),
            aq: u.lang.aq(),
            lang: u.lang.code(),
            user: u.caller.name.clone(),
            active: "acquire",
            campaigns,
            batches,
        }),
        Err(e) => e.into_response(),
    }
}
