//! Console page for convert: members by tier with their points, and coupon reports.

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::api::ApiError;
use crate::console::{ConsoleUser, page};
use crate::i18n::Tr;
use siyu::platform::clock::{format_local, now_ms};

pub struct MemberRow {
    pub member_no: String,
    pub customer_id: i64,
    pub tier: String,
    pub points: i64,
    pub store: String,
    pub joined: String,
}

#[derive(Template)]
#[template(path = "console/members.html")]
pub(crate) struct MembersPage {
    tr: &'static Tr,
    lang: &'static str,
    user: String,
    active: &'static str,
    tiers: Vec<(String, i64)>,
    rows: Vec<MemberRow>,
    /// (name, issued, redeemed, GMV of the orders that used it)
    coupons: Vec<(String, i64, i64, String)>,
}

/// `/console/members`: members by tier, the newest members with their points, and every coupon
/// template's report.
pub(crate) async fn members_page(State(app): State<AppState>, u: ConsoleUser) -> Response {
    let tenant = u.caller.tenant_id;
    let run = async {
        let tiers: Vec<(Option<String>, i64)> = app
            .db
            .fetch_all(
                &siyu::platform::db::sql(
                    "SELECT tier, count(*) FROM members WHERE tenant_id = $1 GROUP BY tier ORDER BY count(*) DESC",
                )
                .bind(tenant),
            )
            .await?;
        type Row = (String, i64, Option<String>, i64, Option<String>, i64);
        let rows: Vec<Row> = app
            .db
            .fetch_all(
                &siyu::platform::db::sql(
                    "SELECT m.member_no, m.customer_id, m.tier, \
                     (SELECT CAST(COALESCE(SUM(p.delta), 0) AS BIGINT) FROM points_entries p \
                      WHERE p.tenant_id = m.tenant_id AND p.customer_id = m.customer_id), \
                     m.store_id, m.joined_at FROM members m WHERE m.tenant_id = $1 \
                     ORDER BY m.joined_at DESC, m.customer_id DESC LIMIT 100",
                )
                .bind(tenant),
            )
            .await?;
        let now = now_ms();
        let mut coupons = Vec::new();
        for t in siyu::convert::coupons::templates(&app.db, tenant).await? {
            let r = siyu::convert::coupons::report(&app.db, tenant, t.id, now).await?;
            coupons.push((
                t.name,
                r.issued,
                r.redeemed,
                siyu::know::report::yuan(r.order_gmv),
            ));
        }
        Ok::<_, ApiError>((tiers, rows, coupons))
    };
    match run.await {
        Ok((tiers, rows, coupons)) => page(MembersPage {
            tr: u.lang.tr(),
            lang: u.lang.code(),
            user: u.caller.name.clone(),
            active: "members",
            tiers: tiers
                .into_iter()
                .map(|(t, n)| (t.unwrap_or_else(|| "-".into()), n))
                .collect(),
            rows: rows
                .into_iter()
                .map(|(no, id, tier, points, store, joined)| MemberRow {
                    member_no: no,
                    customer_id: id,
                    tier: tier.unwrap_or_else(|| "-".into()),
                    points,
                    store: store.unwrap_or_default(),
                    joined: format_local(joined),
                })
                .collect(),
            coupons,
        }),
        Err(e) => e.into_response(),
    }
}
