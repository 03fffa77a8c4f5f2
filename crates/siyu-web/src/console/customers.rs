//! The customer list and the customer 360 page (`know::customers`).

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use siyu::know::CustomerId;

use super::{ConsoleUser, MessagePage, page, server_error};
use crate::AppState;
use crate::i18n::{Tr, channel_name, kind_name, status_name};
use siyu::know::customers::{
    Customer360, ListOrder, customer_360, list_customers, ordered_page, search,
};
use siyu::know::report::yuan;
use siyu::know::rfm::{ALL_CLASSES, ALL_STAGES};
use siyu::platform::clock::{format_local, now_ms};

pub(crate) struct Row {
    id: i64,
    name: String,
    phone: String,
    orders: i64,
    spend: String,
    last_order: String,
}

#[derive(Template)]
#[template(path = "console/customers.html")]
pub(crate) struct CustomersPage {
    tr: &'static Tr,
    lang: &'static str,
    user: String,
    active: &'static str,
    q: String,
    rows: Vec<Row>,
    page: i64,
    pages: i64,
    total: i64,
    /// The filters as chosen, the choices, and the query string that keeps them across pages.
    f: Filters,
    tags: Vec<(i64, String)>,
    stages: Vec<(&'static str, &'static str)>,
    classes: Vec<(&'static str, &'static str)>,
    channels: Vec<(&'static str, String)>,
    /// The brand's member tiers, as its members hold them.
    tiers: Vec<String>,
    keep: String,
    /// The order chosen and the orders offered: (code, name).
    sort: &'static str,
    sorts: Vec<(&'static str, &'static str)>,
    size: i64,
    sizes: Vec<i64>,
    may_write: bool,
    /// Manual tags the batch action may put on or take off.
    manual_tags: Vec<(i64, String)>,
    notice: String,
}

/// The list's filters: a tag, a lifecycle stage, an RFM class, a channel bought in, a member
/// tier (all of those chosen).
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct Filters {
    #[serde(default)]
    pub tag: String,
    #[serde(default)]
    pub stage: String,
    #[serde(default)]
    pub class: String,
    #[serde(default)]
    pub channel: String,
    #[serde(default)]
    pub tier: String,
}

impl Filters {
    fn fields(&self) -> [(&'static str, &String); 5] {
        [
            ("tag", &self.tag),
            ("stage", &self.stage),
            ("class", &self.class),
            ("channel", &self.channel),
            ("tier", &self.tier),
        ]
    }

    pub(crate) fn any(&self) -> bool {
        self.fields().iter().any(|(_, v)| !v.is_empty())
    }

    /// The filters as a segment rule, or why not (a value the page did not offer).
    pub(crate) fn rule(&self) -> Result<siyu::know::rule::Rule, String> {
        let mut all = Vec::new();
        if !self.tag.is_empty() {
            let id: i64 = self
                .tag
                .parse()
                .map_err(|_| format!("tag: {:?}", self.tag))?;
            all.push(serde_json::json!({"tags": {"any": [id]}}));
        }
        if !self.stage.is_empty() {
            all.push(serde_json::json!({"stage": [self.stage]}));
        }
        if !self.class.is_empty() {
            all.push(serde_json::json!({"rfm": {"class": [self.class]}}));
        }
        if !self.channel.is_empty() {
            all.push(serde_json::json!({"channel": [self.channel]}));
        }
        if !self.tier.is_empty() {
            all.push(serde_json::json!({"tier": [self.tier]}));
        }
        serde_json::from_value(serde_json::json!({"and": all})).map_err(|e| e.to_string())
    }

    /// The filters as query parameters (`&tag=…`), to keep them across links.
    pub(crate) fn query(&self) -> String {
        let mut q = String::new();
        for (k, v) in self.fields() {
            if !v.is_empty() {
                q.push('&');
                q.push_str(k);
                q.push('=');
                q.extend(form_urlencoded::byte_serialize(v.as_bytes()));
            }
        }
        q
    }
}

/// Rows a list page may show; the second is the default.
const PAGE_SIZES: [i64; 4] = [20, 50, 100, 200];

fn sort_name(lang: crate::i18n::Lang, o: ListOrder) -> &'static str {
    let zh = lang == crate::i18n::Lang::Zh;
    match (o, zh) {
        (ListOrder::Newest, true) => "最新加入",
        (ListOrder::Spend, true) => "消费金额从高到低",
        (ListOrder::LastOrder, true) => "最近购买在前",
        (ListOrder::Orders, true) => "订单数从多到少",
        (ListOrder::Newest, false) => "Newest",
        (ListOrder::Spend, false) => "Spend, highest first",
        (ListOrder::LastOrder, false) => "Last order, latest first",
        (ListOrder::Orders, false) => "Orders, most first",
    }
}

#[derive(Deserialize)]
pub(crate) struct ListQuery {
    #[serde(default)]
    q: Option<String>,
    #[serde(default)]
    page: Option<i64>,
    /// The order (`newest`, `spend`, `last_order`, `orders`) and the page size (20 to 200).
    #[serde(default)]
    sort: Option<String>,
    #[serde(default)]
    size: Option<i64>,
    /// After a batch tagging: how many changed, and which tag (numbers only, so a crafted link
    /// says nothing false).
    #[serde(default)]
    tagged: Option<String>,
    #[serde(default)]
    removed: Option<String>,
    #[serde(default)]
    tag_name: Option<String>,
    #[serde(flatten)]
    f: Filters,
}

pub(crate) async fn customers_page(
    State(app): State<AppState>,
    u: ConsoleUser,
    Query(lq): Query<ListQuery>,
) -> Response {
    let q = lq.q.unwrap_or_default().trim().to_owned();
    let tenant = u.caller.tenant_id;
    // A search is its own list: the filters do not apply to it, and the page shows none chosen.
    let mut f = if q.is_empty() {
        lq.f
    } else {
        Filters::default()
    };
    // A tag id as the page writes it (05 is 5), so the choice shows selected and links keep it.
    if let Ok(id) = f.tag.trim().parse::<i64>() {
        f.tag = id.to_string();
    }
    let per_page = lq
        .size
        .filter(|n| PAGE_SIZES.contains(n))
        .unwrap_or(PAGE_SIZES[1]);
    let order = lq
        .sort
        .as_deref()
        .and_then(ListOrder::parse)
        .unwrap_or_default();
    let page_no = lq.page.unwrap_or(1).clamp(1, 1_000_000);
    let result: Result<_, String> = async {
        if q.is_empty() && order != ListOrder::Newest {
            // Sorted by what they bought: the store sorts and pages the rule's people.
            let rule = f
                .rule()
                .unwrap_or_else(|_| siyu::know::rule::Rule::Or(Vec::new()));
            let total = if f.any() {
                app.audiences
                    .count(tenant, &rule)
                    .await
                    .map_err(|e| e.to_string())? as i64
            } else {
                let (n,): (i64,) = app
                    .db
                    .fetch_one(
                        &siyu::platform::db::sql(
                            "SELECT COUNT(*) FROM customers WHERE tenant_id = $1 AND merged_into IS NULL",
                        )
                        .bind(tenant),
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                n
            };
            let ids = ordered_page(&app.db, tenant, &rule, order, page_no, per_page, now_ms())
                .await
                .map_err(|e| e.to_string())?;
            let mut p = list_customers(&app.db, &app.cipher, tenant, 1, per_page, Some(&ids), false)
                .await
                .map_err(|e| e.to_string())?;
            p.total = total;
            p.page = page_no;
            return Ok(p);
        }
        if q.is_empty() && f.any() {
            // Filtered through the audience index: the page's ids from the people who match,
            // newest first, and their count. A value the page did not offer matches nobody.
            let members = match f.rule() {
                Ok(rule) => app
                    .audiences
                    .members(tenant, &rule)
                    .await
                    .map_err(|e| e.to_string())?,
                Err(_) => Default::default(),
            };
            let total = members.len() as i64;
            let ids: Vec<CustomerId> = members
                .iter()
                .rev()
                .skip(((page_no - 1).saturating_mul(per_page)) as usize)
                .take(per_page as usize)
                .map(|c| CustomerId::new(c.into()))
                .collect();
            let mut p =
                list_customers(&app.db, &app.cipher, tenant, 1, per_page, Some(&ids), false)
                    .await
                    .map_err(|e| e.to_string())?;
            p.total = total;
            p.page = page_no;
            return Ok(p);
        }
        let only = if q.is_empty() {
            None
        } else {
            Some(
                search(&app.db, &app.cipher, tenant, &q)
                    .await
                    .map_err(|e| e.to_string())?,
            )
        };
        list_customers(
            &app.db,
            &app.cipher,
            tenant,
            page_no,
            per_page,
            only.as_deref(),
            false,
        )
        .await
        .map_err(|e| e.to_string())
    }
    .await;
    let p = match result {
        Ok(p) => p,
        Err(e) => return server_error(e),
    };
    let all_tags = match siyu::know::tags::list(&app.db, tenant).await {
        Ok(t) => t,
        Err(e) => return server_error(e),
    };
    let tags: Vec<(i64, String)> = all_tags
        .iter()
        .map(|t| (t.id, format!("{} · {}", t.group_name, t.name)))
        .collect();
    let manual_tags: Vec<(i64, String)> = all_tags
        .iter()
        .filter(|t| t.rule.is_none())
        .map(|t| (t.id, format!("{} · {}", t.group_name, t.name)))
        .collect();
    let tiers: Vec<(String,)> = match app
        .db
        .fetch_all(
            &siyu::platform::db::sql(
                "SELECT DISTINCT tier FROM members WHERE tenant_id = $1 AND tier IS NOT NULL ORDER BY tier",
            )
            .bind(tenant),
        )
        .await
    {
        Ok(t) => t,
        Err(e) => return server_error(e),
    };
    // After a batch tagging: the count and the tag's name as stored, never the link's text.
    let counted = |v: &Option<String>| v.as_deref().and_then(|n| n.parse::<u64>().ok());
    let named = lq
        .tag_name
        .as_deref()
        .and_then(|n| n.parse::<i64>().ok())
        .and_then(|id| all_tags.iter().find(|t| t.id == id))
        .map(|t| t.name.clone());
    let zh = u.lang == crate::i18n::Lang::Zh;
    let notice = match (counted(&lq.tagged), counted(&lq.removed), named) {
        (Some(n), _, Some(t)) if zh => format!("已给 {n} 位客户打上「{t}」"),
        (_, Some(n), Some(t)) if zh => format!("已从 {n} 位客户去掉「{t}」"),
        (Some(n), _, Some(t)) => format!("Tagged {n} customers {t:?}"),
        (_, Some(n), Some(t)) => format!("Removed {t:?} from {n} customers"),
        _ => String::new(),
    };
    let rows = p
        .customers
        .into_iter()
        .map(|c| Row {
            id: c.id.get(),
            name: c.display_name.unwrap_or_default(),
            phone: c.phone.unwrap_or_default(),
            orders: c.order_count,
            spend: yuan(c.total_spend),
            last_order: c.last_order_at.map(format_local).unwrap_or_default(),
        })
        .collect();
    page(CustomersPage {
        tr: u.lang.tr(),
        lang: u.lang.code(),
        user: u.caller.name.clone(),
        active: "customers",
        q,
        rows,
        page: p.page,
        pages: ((p.total + p.per_page - 1) / p.per_page).max(1),
        total: p.total,
        keep: format!(
            "{}{}{}",
            f.query(),
            if order == ListOrder::Newest {
                String::new()
            } else {
                format!("&sort={}", order.as_str())
            },
            if per_page == PAGE_SIZES[1] {
                String::new()
            } else {
                format!("&size={per_page}")
            }
        ),
        sort: order.as_str(),
        sorts: ListOrder::ALL
            .iter()
            .map(|o| (o.as_str(), sort_name(u.lang, *o)))
            .collect(),
        size: per_page,
        sizes: PAGE_SIZES.to_vec(),
        f,
        tags,
        stages: ALL_STAGES
            .iter()
            .map(|s| (s.as_str(), if zh { s.zh() } else { s.en() }))
            .collect(),
        classes: ALL_CLASSES
            .iter()
            .map(|c| (c.as_str(), if zh { c.zh() } else { c.en() }))
            .collect(),
        channels: crate::i18n::CHANNELS
            .iter()
            .map(|c| (*c, channel_name(u.lang, c)))
            .collect(),
        tiers: tiers.into_iter().map(|(t,)| t).collect(),
        may_write: u.caller.role.may_write(),
        manual_tags,
        notice,
    })
}

pub(crate) struct OrderRow {
    time: String,
    channel: String,
    order_no: String,
    status: String,
    amount: String,
    refund: String,
    items: i64,
    store: String,
}

#[derive(Template)]
#[template(path = "console/customer.html")]
pub(crate) struct CustomerPage {
    tr: &'static Tr,
    lang: &'static str,
    user: String,
    active: &'static str,
    c: Customer360,
    name: String,
    spend: String,
    aov: String,
    first_order: String,
    last_order: String,
    channels: String,
    identities: Vec<(String, String)>,
    orders: Vec<OrderRow>,
    events: Vec<(String, String, String, String)>,
    may_unmask: bool,
    stage: String,
    rfm_class: String,
    repurchase: String,
    /// Membership, points, coupons, messages, WeCom staff and groups; and the actions.
    t: super::touches::Touches,
    may_write: bool,
    /// Staff who may write notes (guides too).
    may_note: bool,
    notice: String,
    /// A note refused: why, and what was typed.
    note_error: String,
    note_typed: String,
}

#[derive(Default, Deserialize)]
pub(crate) struct UnmaskQuery {
    #[serde(default)]
    unmask: Option<String>,
    /// After an action: the template given, the tag put on (checked before it is said).
    #[serde(default)]
    granted: Option<i64>,
    #[serde(default)]
    tagged: Option<i64>,
}

pub(crate) async fn customer_page(
    State(app): State<AppState>,
    u: ConsoleUser,
    Path(id): Path<String>,
    Query(uq): Query<UnmaskQuery>,
) -> Response {
    show_360(&app, &u, &id, uq, None).await
}

/// A note refused, and what was typed for it.
pub(crate) struct NoteRefused {
    pub said: String,
    pub typed: String,
}

/// The 360 page; with a refused note, its reason and the text typed, answered 400.
pub(crate) async fn show_360(
    app: &AppState,
    u: &ConsoleUser,
    id: &str,
    uq: UnmaskQuery,
    note: Option<NoteRefused>,
) -> Response {
    let not_found = || {
        let mut r = page(MessagePage {
            tr: u.lang.tr(),
            lang: u.lang.code(),
            user: u.caller.name.clone(),
            active: "customers",
            message: u.lang.tr().not_found,
        });
        *r.status_mut() = StatusCode::NOT_FOUND;
        r
    };
    let Ok(id) = id.parse::<CustomerId>() else {
        return not_found();
    };
    let may = u.caller.role.may_see_phone();
    let unmask = may && uq.unmask.as_deref() == Some("1");
    let c = match customer_360(&app.db, &app.cipher, u.caller.tenant_id, id, unmask).await {
        Ok(Some(c)) => c,
        Ok(None) => return not_found(),
        Err(e) => return server_error(e),
    };
    if unmask {
        tracing::info!(user = %u.caller.name, customer = %c.id, "full phone number shown in the console");
    }
    let t = match super::touches::read(app, u, c.id).await {
        Ok(t) => t,
        Err(e) => return server_error(e),
    };
    let notice = super::touches::notice(app, u, c.id, uq.granted, uq.tagged).await;
    let refused_note = note.is_some();
    let (note_error, note_typed) = note.map(|n| (n.said, n.typed)).unwrap_or_default();
    let l = u.lang;
    let mut r = page(CustomerPage {
        tr: l.tr(),
        lang: l.code(),
        user: u.caller.name.clone(),
        active: "customers",
        name: c.display_name.clone().unwrap_or_default(),
        spend: yuan(c.summary.total_spend),
        aov: yuan(c.summary.average_order_value),
        stage: siyu::know::rfm::Stage::parse(&c.layer.stage)
            .map(|s| {
                if l == crate::i18n::Lang::Zh {
                    s.zh()
                } else {
                    s.en()
                }
            })
            .unwrap_or("-")
            .to_owned(),
        rfm_class: c
            .layer
            .rfm_class
            .as_deref()
            .and_then(siyu::know::rfm::RfmClass::parse)
            .map(|k| {
                if l == crate::i18n::Lang::Zh {
                    k.zh()
                } else {
                    k.en()
                }
            })
            .unwrap_or("-")
            .to_owned(),
        repurchase: c
            .layer
            .repurchase_at
            .map(format_local)
            .unwrap_or_else(|| "-".into()),
        t,
        may_write: u.caller.role.may_write(),
        may_note: u.caller.role.may_write() || u.caller.role == siyu::platform::access::Role::Guide,
        notice,
        note_error,
        note_typed,
        first_order: c
            .summary
            .first_order_at
            .map(format_local)
            .unwrap_or_else(|| "-".into()),
        last_order: c
            .summary
            .last_order_at
            .map(format_local)
            .unwrap_or_else(|| "-".into()),
        channels: c
            .summary
            .channels
            .iter()
            .map(|ch| channel_name(l, ch))
            .collect::<Vec<_>>()
            .join(" · "),
        identities: c
            .identities
            .iter()
            .map(|i| (kind_name(l, &i.kind), i.value.clone()))
            .collect(),
        orders: c
            .recent_orders
            .iter()
            .map(|o| OrderRow {
                time: format_local(o.ordered_at),
                channel: channel_name(l, &o.channel),
                order_no: o.order_no.clone(),
                status: status_name(l, &o.status),
                amount: yuan(o.amount),
                refund: yuan(o.refund_amount),
                items: o.item_count,
                store: o.store_id.clone().unwrap_or_default(),
            })
            .collect(),
        events: c
            .recent_events
            .iter()
            .map(|e| {
                (
                    format_local(e.occurred_at),
                    crate::i18n::event_name(l, &e.kind),
                    e.channel
                        .as_deref()
                        .map(|c| channel_name(l, c))
                        .unwrap_or_default(),
                    e.touchpoint
                        .as_deref()
                        .map(|t| crate::i18n::touchpoint_name(l, t))
                        .unwrap_or_default(),
                )
            })
            .collect(),
        may_unmask: may && !unmask,
        c,
    });
    if refused_note {
        *r.status_mut() = StatusCode::BAD_REQUEST;
    }
    r
}
