//! Console page for convert: members by tier with their points, and coupon reports.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

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
    /// (tier, members, link that lists them)
    tiers: Vec<(String, i64, String)>,
    rows: Vec<MemberRow>,
    /// The search and tier asked for, the members they match, the page and the pages.
    q: String,
    tier: String,
    total: i64,
    page: i64,
    pages: i64,
    /// The query string that keeps the search and tier across pages.
    keep: String,
    /// (name, issued, redeemed, GMV of the orders that used it)
    coupons: Vec<(String, i64, i64, String)>,
}

const PER_PAGE: i64 = 50;

#[derive(Default, Deserialize)]
pub(crate) struct MembersQuery {
    /// A member number or a store id, as written.
    #[serde(default)]
    q: Option<String>,
    #[serde(default)]
    tier: Option<String>,
    #[serde(default)]
    page: Option<i64>,
}

/// `/console/members`: members by tier (each a link that lists them), the members found by
/// member number or store, newest first and paged, with their points, and every coupon
/// template's report.
pub(crate) async fn members_page(
    State(app): State<AppState>,
    u: ConsoleUser,
    Query(mq): Query<MembersQuery>,
) -> Response {
    let tenant = u.caller.tenant_id;
    let q = mq.q.unwrap_or_default().trim().to_owned();
    let tier = mq.tier.unwrap_or_default().trim().to_owned();
    let page_no = mq.page.unwrap_or(1).clamp(1, 1_000_000);
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
        // The same conditions for the count and the page: $2 a tier, $3 a member number or store.
        let cond = "m.tenant_id = $1 AND ($2 = '' OR m.tier = $2) \
                    AND ($3 = '' OR m.member_no = $3 OR m.store_id = $3)";
        let (total,): (i64,) = app
            .db
            .fetch_one(
                &siyu::platform::db::sql(format!("SELECT COUNT(*) FROM members m WHERE {cond}"))
                    .bind(tenant)
                    .bind(tier.clone())
                    .bind(q.clone()),
            )
            .await?;
        type Row = (String, i64, Option<String>, i64, Option<String>, i64);
        let rows: Vec<Row> = app
            .db
            .fetch_all(
                &siyu::platform::db::sql(format!(
                    "SELECT m.member_no, m.customer_id, m.tier, \
                     (SELECT CAST(COALESCE(SUM(p.delta), 0) AS BIGINT) FROM points_entries p \
                      WHERE p.tenant_id = m.tenant_id AND p.customer_id = m.customer_id), \
                     m.store_id, m.joined_at FROM members m WHERE {cond} \
                     ORDER BY m.joined_at DESC, m.customer_id DESC LIMIT {PER_PAGE} OFFSET $4"
                ))
                .bind(tenant)
                .bind(tier.clone())
                .bind(q.clone())
                .bind((page_no - 1) * PER_PAGE),
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
        Ok::<_, ApiError>((tiers, total, rows, coupons))
    };
    let link = |k: &str, v: &str| -> String {
        let mut s = String::new();
        if !v.is_empty() {
            s.push('&');
            s.push_str(k);
            s.push('=');
            s.extend(form_urlencoded::byte_serialize(v.as_bytes()));
        }
        s
    };
    match run.await {
        Ok((tiers, total, rows, coupons)) => page(MembersPage {
            tr: u.lang.tr(),
            lang: u.lang.code(),
            user: u.caller.name.clone(),
            active: "members",
            tiers: tiers
                .into_iter()
                .map(|(t, n)| {
                    let href = match &t {
                        Some(t) => format!("/console/members?{}", &link("tier", t)[1..]),
                        None => "/console/members".into(),
                    };
                    (t.unwrap_or_else(|| "-".into()), n, href)
                })
                .collect(),
            keep: format!("{}{}", link("q", &q), link("tier", &tier)),
            pages: ((total + PER_PAGE - 1) / PER_PAGE).max(1),
            page: page_no,
            total,
            q,
            tier,
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
