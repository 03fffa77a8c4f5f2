//! The one route table: every route the server answers, grouped by who calls it and by
//! capability. Handlers live in `api/<capability>/`, `h5/` and `console/`, named as the domain
//! modules they serve; a route is added here and nowhere else.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::Redirect;
use axum::routing::{delete, get, post, put};

use super::{AppState, api, console, h5};
use siyu::app::Workers;

/// Every route of the server, for an app whose background loops are `workers`.
pub fn table(workers: &Workers) -> Router<AppState> {
    let workers = workers.clone();
    Router::new()
        .route("/", get(|| async { Redirect::to("/console") }))
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(super::metrics::metrics))
        // Ready once the audience indexes are built (503 naming what it waits for until then),
        // with what the process runs besides answering requests (a test holds the test server
        // and `siyu serve` to the same list).
        .route(
            "/readyz",
            get(move || {
                let workers = workers.clone();
                async move { super::readiness(&workers) }
            }),
        )
        // Customer pages and their JSON (/t, /c, /h5): public, facing the internet.
        .merge(customer_pages())
        // Providers calling back (SMS reports and replies, WeCom): checked by token or signature.
        .merge(callbacks())
        // API, access: the tenant's keys and the audit log (admins).
        // The API's own description: the OpenAPI document and its reference page.
        .route("/api/v1/openapi.json", get(api::openapi::openapi_json))
        .route("/api/docs", get(api::openapi::reference_page))
        .route(
            "/api/v1/access/keys",
            get(api::access::list_keys).post(api::access::create_key),
        )
        .route(
            "/api/v1/access/keys/{prefix}",
            delete(api::access::revoke_key),
        )
        .route(
            "/api/v1/access/keys/{prefix}/rotate",
            post(api::access::rotate_key),
        )
        .route("/api/v1/access/audit", get(api::access::audit_log))
        // API: signing a customer in for the H5 pages.
        .route(
            "/api/v1/customer-tokens",
            post(api::customer_tokens::customer_token),
        )
        // API, know: ingestion, customers, tags, RFM, audiences, segments.
        .route("/api/v1/events", post(api::know::ingest::post_events))
        .route("/api/v1/orders", post(api::know::ingest::post_orders))
        .route("/api/v1/orders/link", post(api::know::imports::link_order))
        // API, know: exports uploaded, their receipts, the tenant's status map.
        .route(
            "/api/v1/import/orders",
            // The body is read as a stream: the handler stops at MOST_UPLOAD_BYTES itself (a
            // body limit layer does not reach a raw body).
            post(api::know::imports::upload_orders),
        )
        .route("/api/v1/import/runs", get(api::know::imports::runs))
        .route("/api/v1/import/runs/{id}", get(api::know::imports::run))
        .route(
            "/api/v1/import/runs/{id}/rejected.csv",
            get(api::know::imports::rejected_rows),
        )
        .route("/api/v1/import/statuses", get(api::know::imports::statuses))
        // API, know: marketplace shops whose orders are synced.
        .route(
            "/api/v1/shops",
            get(api::know::shops::list).post(api::know::shops::connect),
        )
        .route("/api/v1/shops/{id}", delete(api::know::shops::disconnect))
        .route(
            "/api/v1/shops/{id}/backfill",
            post(api::know::shops::backfill),
        )
        .route("/api/v1/shops/{id}/sync", post(api::know::shops::sync_now))
        .route(
            "/api/v1/import/status-map",
            put(api::know::imports::put_status_map),
        )
        .route(
            "/api/v1/customers",
            get(api::know::customers::get_customers),
        )
        .route(
            "/api/v1/customers/{id}",
            get(api::know::customers::get_customer),
        )
        .route(
            "/api/v1/tags",
            get(api::know::tags::list_tags).post(api::know::tags::create_tag),
        )
        .route("/api/v1/tags/{id}", delete(api::know::tags::delete_tag))
        .route(
            "/api/v1/tags/{id}/customers",
            post(api::know::tags::tag_customers).delete(api::know::tags::untag_customers),
        )
        .route(
            "/api/v1/customers/{id}/sessions",
            delete(api::customer_tokens::revoke_sessions),
        )
        .route(
            "/api/v1/customers/{id}/attributes",
            put(api::know::customers::put_attributes),
        )
        .route(
            "/api/v1/customers/{id}/tags",
            get(api::know::customers::customer_tags),
        )
        .route(
            "/api/v1/customers/{id}/notes",
            get(api::know::customers::get_notes).post(api::know::customers::post_note),
        )
        .route("/api/v1/rfm", get(api::know::rfm::rfm))
        .route(
            "/api/v1/rfm/settings",
            put(api::know::rfm::put_rfm_settings),
        )
        .route(
            "/api/v1/audience/count",
            post(api::know::audience::count_rule),
        )
        .route(
            "/api/v1/audience/preview",
            post(api::know::audience::preview_rule),
        )
        .route(
            "/api/v1/segments",
            get(api::know::segments::list_segments).post(api::know::segments::create_segment),
        )
        .route(
            "/api/v1/segments/{id}",
            get(api::know::segments::get_segment)
                .put(api::know::segments::update_segment)
                .delete(api::know::segments::delete_segment),
        )
        .route(
            "/api/v1/segments/{id}/preview",
            get(api::know::segments::preview_segment),
        )
        .route(
            "/api/v1/segments/{id}/export",
            get(api::know::segments::export_segment),
        )
        .route(
            "/api/v1/segments/{id}/snapshots",
            get(api::know::segments::list_snapshots).post(api::know::segments::take_snapshot),
        )
        .route(
            "/api/v1/segments/{id}/snapshots/{snapshot}",
            get(api::know::segments::snapshot_members),
        )
        // API, engage: contact policy, messages, the outbox.
        .route(
            "/api/v1/contact-policy",
            get(api::engage::policy::get_policy).put(api::engage::policy::put_policy),
        )
        .route(
            "/api/v1/unsubscribes",
            post(api::engage::policy::unsubscribe),
        )
        .route("/api/v1/messages", post(api::engage::outbox::send_message))
        .route("/api/v1/outbox", get(api::engage::outbox::outbox_counts))
        .route(
            "/api/v1/outbox/dispatch",
            post(api::engage::outbox::dispatch),
        )
        // API, acquire: links, campaigns, package-insert cards.
        .route("/api/v1/links", post(api::acquire::links::create_link))
        .route("/api/v1/links/{id}", get(api::acquire::links::link))
        .route(
            "/api/v1/campaigns",
            get(api::acquire::campaigns::list_campaigns)
                .post(api::acquire::campaigns::create_campaign),
        )
        .route(
            "/api/v1/campaigns/{id}",
            get(api::acquire::campaigns::campaign),
        )
        .route(
            "/api/v1/campaigns/{id}/launch",
            post(api::acquire::campaigns::launch),
        )
        .route(
            "/api/v1/reports/trends",
            get(api::measure::trends::get_trends),
        )
        .route(
            "/api/v1/campaigns/{id}/report",
            get(api::acquire::campaigns::campaign_report),
        )
        .route(
            "/api/v1/campaigns/{id}/report.csv",
            get(api::acquire::campaigns::campaign_report_csv),
        )
        .route(
            "/api/v1/card-batches",
            get(api::acquire::cards::list).post(api::acquire::cards::create),
        )
        .route(
            "/api/v1/card-batches/{id}",
            get(api::acquire::cards::report),
        )
        .route(
            "/api/v1/card-batches/{id}/cards.csv",
            get(api::acquire::cards::cards_csv),
        )
        .route(
            "/api/v1/card-batches/{id}/report.csv",
            get(api::acquire::cards::report_csv),
        )
        .route(
            "/api/v1/card-batches/{id}/cards.pdf",
            get(api::acquire::cards::cards_pdf),
        )
        .route(
            "/api/v1/cards/{code}/contact",
            post(api::acquire::cards::contact),
        )
        // API, connect: WeCom, live codes, groups, SOP, mass messages.
        .route(
            "/api/v1/wecom",
            get(api::connect::wecom::get_corp).put(api::connect::wecom::put_corp),
        )
        .route(
            "/api/v1/live-codes",
            get(api::connect::live_codes::list_codes).post(api::connect::live_codes::create_code),
        )
        .route(
            "/api/v1/live-codes/{id}",
            get(api::connect::live_codes::get_code).put(api::connect::live_codes::update_code),
        )
        .route(
            "/api/v1/live-codes/{id}/stop",
            post(api::connect::live_codes::stop_code),
        )
        .route(
            "/api/v1/live-codes/{id}/qr.png",
            get(api::connect::live_codes::qr_png),
        )
        .route(
            "/api/v1/live-codes/{id}/qr.svg",
            get(api::connect::live_codes::qr_svg),
        )
        .route("/api/v1/groups", get(api::connect::groups::list_groups))
        .route(
            "/api/v1/groups/sync",
            post(api::connect::groups::sync_groups),
        )
        .route(
            "/api/v1/groups/retention",
            get(api::connect::groups::retention),
        )
        .route(
            "/api/v1/groups/{chat_id}/kind",
            put(api::connect::groups::set_kind),
        )
        .route(
            "/api/v1/sop-posts",
            get(api::connect::sop::sop_calendar).post(api::connect::sop::create_post),
        )
        .route(
            "/api/v1/mass-messages",
            get(api::connect::mass::list_mass).post(api::connect::mass::create_mass),
        )
        .route(
            "/api/v1/mass-messages/{id}",
            get(api::connect::mass::get_mass),
        )
        .route("/api/v1/connect/tick", post(api::connect::wecom::tick))
        .route(
            "/api/v1/wecom/unsubscribes",
            post(api::connect::wecom::unsubscribe),
        )
        // API, convert: members, points, tiers, coupons, flash sales, group buys, bargains, gifts.
        .route(
            "/api/v1/flash-sales",
            get(api::convert::flash::list_sales).post(api::convert::flash::create_sale),
        )
        .route("/api/v1/flash-sales/{id}", get(api::convert::flash::sale))
        .route(
            "/api/v1/flash-sales/{id}/attempts",
            post(api::convert::flash::attempt),
        )
        .route(
            "/api/v1/flash-sales/{id}/orders",
            get(api::convert::flash::sale_orders),
        )
        .route(
            "/api/v1/flash-orders/{id}/pay",
            post(api::convert::flash::pay),
        )
        .route(
            "/api/v1/flash-orders/{id}/cancel",
            post(api::convert::flash::cancel),
        )
        .route("/api/v1/members", post(api::convert::members::join))
        .route("/api/v1/members/{id}", get(api::convert::members::member))
        .route(
            "/api/v1/members/{id}/points",
            get(api::convert::members::ledger).post(api::convert::members::change_points),
        )
        .route(
            "/api/v1/points/settings",
            put(api::convert::members::put_settings),
        )
        .route("/api/v1/points/expire", post(api::convert::members::expire))
        .route(
            "/api/v1/tiers/review",
            post(api::convert::members::review_tiers),
        )
        .route(
            "/api/v1/coupon-templates",
            get(api::convert::coupons::list_templates).post(api::convert::coupons::create_template),
        )
        .route(
            "/api/v1/coupon-templates/{id}/claim-via",
            put(api::convert::coupons::put_claim_via),
        )
        .route(
            "/api/v1/coupon-templates/{id}/stop",
            post(api::convert::coupons::stop_issuing),
        )
        .route(
            "/api/v1/coupon-templates/{id}/total",
            post(api::convert::coupons::add_to_total),
        )
        .route(
            "/api/v1/coupon-templates/{id}/claim",
            post(api::convert::coupons::claim),
        )
        .route(
            "/api/v1/coupon-templates/{id}/issue",
            post(api::convert::coupons::issue),
        )
        .route(
            "/api/v1/coupons/redeem",
            post(api::convert::coupons::redeem),
        )
        .route(
            "/api/v1/coupons/refund",
            post(api::convert::coupons::refund),
        )
        .route(
            "/api/v1/customers/{id}/coupons",
            get(api::convert::coupons::customer_coupons),
        )
        .route(
            "/api/v1/group-buys",
            get(api::convert::group_buy::list_buys).post(api::convert::group_buy::create_buy),
        )
        .route(
            "/api/v1/group-buys/{id}",
            get(api::convert::group_buy::buy_view),
        )
        .route(
            "/api/v1/group-buys/{id}/teams",
            post(api::convert::group_buy::open_team),
        )
        .route(
            "/api/v1/group-buys/sweep",
            post(api::convert::group_buy::sweep),
        )
        .route(
            "/api/v1/teams/{id}",
            get(api::convert::group_buy::team_view),
        )
        .route(
            "/api/v1/teams/{id}/join",
            post(api::convert::group_buy::join_team),
        )
        .route(
            "/api/v1/bargain-items",
            get(api::convert::bargain::list_items).post(api::convert::bargain::create_item),
        )
        .route(
            "/api/v1/bargain-items/{id}/bargains",
            post(api::convert::bargain::start_bargain),
        )
        .route(
            "/api/v1/bargains/{id}",
            get(api::convert::bargain::bargain_view),
        )
        .route(
            "/api/v1/bargains/{id}/assists",
            post(api::convert::bargain::assist),
        )
        .route(
            "/api/v1/bargains/{id}/buy",
            post(api::convert::bargain::buy_bargain),
        )
        .route(
            "/api/v1/gifts",
            get(api::convert::gifts::list_gifts).post(api::convert::gifts::create_gift),
        )
        .route(
            "/api/v1/gifts/{id}/redeem",
            post(api::convert::gifts::redeem_gift),
        )
        // The operators' console (/console): signed in by session cookie.
        .route(
            "/console",
            get(|| async { Redirect::to("/console/overview") }),
        )
        .route(
            "/console/login",
            get(console::login_page)
                .post(console::login_submit)
                .layer(DefaultBodyLimit::max(LOGIN_BODY_BYTES)),
        )
        .route("/console/logout", post(console::logout))
        .route("/console/lang/{code}", get(console::set_lang))
        .route("/console/overview", get(console::overview_page))
        .route(
            "/console/api/overview/trends",
            get(console::trends::trends_json),
        )
        .route(
            "/console/assets/echarts-5.6.0.min.js",
            get(console::trends::echarts),
        )
        .route("/console/statuses", post(console::data::read_status))
        .route(
            "/console/imports",
            post(console::imports::upload), // capped by the handler, as the API's upload
        )
        .route(
            "/console/imports/{id}/rejected.csv",
            get(console::imports::rejected_rows),
        )
        .route(
            "/console/coupons",
            get(console::coupons::coupons_page).post(console::coupons::create),
        )
        .route(
            "/console/coupons/{id}/claim-via",
            post(console::coupons::change_claim_via),
        )
        .route("/console/coupons/{id}/issue", post(console::coupons::issue))
        .route("/console/coupons/{id}/stop", post(console::coupons::stop))
        .route(
            "/console/coupons/{id}/total",
            post(console::coupons::add_total),
        )
        .route("/console/coupons/redeem", post(console::redemption::redeem))
        .route(
            "/console/policy",
            get(console::policy::policy_page).post(console::policy::save),
        )
        .route(
            "/console/policy/approval",
            post(console::policy::save_approval),
        )
        .route("/console/connect/wecom", post(console::wecom::save))
        .route(
            "/console/connect/live-codes",
            post(console::live_codes::create),
        )
        .route(
            "/console/connect/live-codes/{id}",
            post(console::live_codes::update),
        )
        .route(
            "/console/connect/live-codes/{id}/stop",
            post(console::live_codes::stop),
        )
        .route(
            "/console/connect/live-codes/{id}/qr.png",
            get(console::live_codes::qr_png),
        )
        .route(
            "/console/connect/live-codes/{id}/qr.svg",
            get(console::live_codes::qr_svg),
        )
        .route("/console/connect/mass", post(console::mass::create))
        .route("/console/connect/sop", post(console::sop::create))
        .route(
            "/console/connect/groups/{chat_id}/kind",
            post(console::groups::set_kind),
        )
        .route(
            "/console/connect/mass/preview",
            post(console::mass::preview),
        )
        .route("/console/connect/wecom/test", post(console::wecom::test))
        .route("/console/shops/authorize", post(console::shops::authorize))
        .route(
            console::shops::CALLBACK_PATH,
            get(console::shops::authorized),
        )
        .route(
            "/console/customers",
            get(console::customers::customers_page),
        )
        .route(
            "/console/customers/{id}",
            get(console::customers::customer_page),
        )
        .route(
            "/console/customers/{id}/coupons",
            post(console::touches::grant_coupon),
        )
        .route(
            "/console/customers/{id}/tags",
            post(console::touches::add_tag),
        )
        .route(
            "/console/customers/{id}/notes",
            post(console::touches::add_note),
        )
        .route(
            "/console/tags",
            get(console::segments::tags_page).post(console::segments::create_tag),
        )
        .route("/console/tags/upload", post(console::segments::upload_list))
        .route("/console/rfm", get(console::rfm::rfm_page))
        .route(
            "/console/rfm/segment",
            post(console::picked::bar_to_segment),
        )
        .route(
            "/console/customers/segment",
            post(console::picked::filtered_to_segment),
        )
        .route(
            "/console/customers/tag",
            post(console::picked::filtered_tag),
        )
        .route("/console/segments", get(console::segments::segments_page))
        .route(
            "/console/segments/new",
            get(console::segments::new_segment_page),
        )
        .route(
            "/console/segments/{id}",
            get(console::segments::segment_page),
        )
        .route(
            "/console/segments/{id}/export",
            get(console::segments::export_segment),
        )
        .route(
            "/console/api/audience/count",
            post(console::segments::api_count),
        )
        .route(
            "/console/api/audience/preview",
            post(console::segments::api_preview),
        )
        .route(
            "/console/api/segments",
            post(console::segments::api_save_segment),
        )
        .route(
            "/console/api/segments/{id}",
            post(console::segments::api_update_segment),
        )
        .route(
            "/console/api/segments/{id}/snapshots",
            post(console::segments::api_snapshot),
        )
        .route("/console/api/tags", post(console::segments::api_rule_tag))
        .route("/console/access", get(console::accounts::access_page))
        .route(
            "/console/brand",
            get(console::brand::brand_page).post(console::brand::save),
        )
        .route("/console/access/keys", post(console::accounts::create_key))
        .route(
            "/console/access/keys/{prefix}/rotate",
            post(console::accounts::rotate_key),
        )
        .route(
            "/console/access/keys/{prefix}/revoke",
            post(console::accounts::revoke_key),
        )
        .route("/console/access/users", post(console::accounts::add_user))
        .route(
            "/console/access/users/{username}/disable",
            post(console::accounts::disable_user),
        )
        .route(
            "/console/access/users/{username}/password",
            post(console::accounts::set_password),
        )
        .route("/console/acquire", get(console::acquire::acquire_page))
        .route(
            "/console/acquire/campaigns",
            post(console::acquire::create_campaign),
        )
        .route(
            "/console/acquire/card-batches",
            post(console::acquire::create_batch),
        )
        .route(
            "/console/acquire/card-batches/{id}/cards.pdf",
            get(console::acquire::cards_pdf),
        )
        .route(
            "/console/acquire/card-batches/{id}/cards.csv",
            get(console::acquire::cards_csv),
        )
        .route(
            "/console/acquire/campaigns/{id}/approve",
            post(console::acquire::approve_campaign),
        )
        .route(
            "/console/acquire/campaigns/{id}/report.csv",
            get(console::acquire::campaign_report_csv),
        )
        .route(
            "/console/acquire/campaigns/{id}/launch",
            post(console::acquire::launch_campaign),
        )
        .route(
            "/console/activities",
            get(console::activities::activities_page),
        )
        .route(
            "/console/activities/flash",
            post(console::activities::create_flash),
        )
        .route(
            "/console/activities/group-buys",
            post(console::activities::create_group_buy),
        )
        .route(
            "/console/activities/bargains",
            post(console::activities::create_bargain),
        )
        .route(
            "/console/activities/gifts",
            post(console::activities::create_gift),
        )
        .route("/console/members", get(console::members::members_page))
        .route("/console/connect", get(console::connect::connect_page))
}

/// Bodies the public may send: a phone number, a code, a quantity.
const PUBLIC_BODY_BYTES: usize = 16 * 1024;
/// Providers' callbacks: a batch of receipts or replies.
const CALLBACK_BODY_BYTES: usize = 256 * 1024;
/// The console's sign-in form, the one console write made before signing in.
const LOGIN_BODY_BYTES: usize = 8 * 1024;

/// The customer's pages and the JSON they call: anyone on the internet, so small bodies.
fn customer_pages() -> Router<AppState> {
    Router::new()
        .route("/t/{code}", get(h5::links::redirect))
        .route("/t/{code}/qr.svg", get(h5::links::qr_svg))
        .route("/t/{code}/qr.png", get(h5::links::qr_png))
        .route("/h5/v1/flash-sales/{id}", get(h5::flash::sale))
        .route("/h5/v1/flash-sales/{id}/attempts", post(h5::flash::attempt))
        .route("/h5/v1/flash-orders/{id}/pay", post(h5::flash::pay))
        .route("/h5/v1/flash-orders/{id}/cancel", post(h5::flash::cancel))
        .route("/c/{code}", get(h5::cards::landing))
        .route("/h5/v1/human-check", get(h5::cards::human_check))
        .route("/h5/v1/brand", get(h5::brand))
        .route("/h5/v1/cards/{code}/otp", post(h5::cards::send_code))
        .route("/h5/v1/cards/{code}/claim", post(h5::cards::claim))
        .route("/h5/v1/group-buys/{id}", get(h5::group_buy::offer))
        .route(
            "/h5/v1/group-buys/{id}/teams",
            post(h5::group_buy::open_team),
        )
        .route("/h5/v1/teams/{id}", get(h5::group_buy::team_view))
        .route("/h5/v1/teams/{id}/join", post(h5::group_buy::join_team))
        .route("/h5/v1/bargain-items/{id}", get(h5::bargain::offer))
        .route(
            "/h5/v1/bargain-items/{id}/bargains",
            post(h5::bargain::start_bargain),
        )
        .route("/h5/v1/bargains/{id}", get(h5::bargain::bargain_view))
        .route("/h5/v1/bargains/{id}/buy", post(h5::bargain::buy_bargain))
        .route("/h5/v1/gifts", get(h5::gifts::list))
        .route("/h5/v1/coupon-templates/{id}", get(h5::coupons::coupon))
        .route(
            "/h5/v1/coupon-templates/{id}/claim",
            post(h5::coupons::claim_coupon),
        )
        .route("/h5/v1/gifts/{id}/redeem", post(h5::gifts::redeem_gift))
        .route("/h5/flash/{id}", get(|p| h5::page("flash", "秒杀", p)))
        .route("/h5/group-buys/{id}", get(|p| h5::page("group", "拼团", p)))
        .route("/h5/teams/{id}", get(|p| h5::page("team", "拼团", p)))
        .route(
            "/h5/bargain-items/{id}",
            get(|p| h5::page("bargain_item", "砍价", p)),
        )
        .route("/h5/bargains/{id}", get(|p| h5::page("bargain", "砍价", p)))
        .route("/h5/coupons/{id}", get(|p| h5::page("coupon", "领券", p)))
        .route(
            "/h5/gifts",
            get(|| async { h5::render("gifts", "积分兑换", 0) }),
        )
        .layer(DefaultBodyLimit::max(PUBLIC_BODY_BYTES))
}

/// Providers calling back, before their token or signature is checked.
fn callbacks() -> Router<AppState> {
    Router::new()
        .route(
            "/callbacks/sms/aliyun/{token}/report",
            post(api::channels::sms::aliyun_report),
        )
        .route(
            "/callbacks/sms/aliyun/{token}/reply",
            post(api::channels::sms::aliyun_reply),
        )
        .route(
            "/callbacks/sms/tencent/{token}/report",
            post(api::channels::sms::tencent_report),
        )
        .route(
            "/callbacks/sms/tencent/{token}/reply",
            post(api::channels::sms::tencent_reply),
        )
        .route(
            "/callbacks/wecom/{tenant}",
            get(api::connect::wecom::verify_url)
                .post(api::connect::wecom::callback)
                // WeCom's callbacks are a few hundred bytes; refuse anything far larger.
                .layer(DefaultBodyLimit::max(64 * 1024)),
        )
        .layer(DefaultBodyLimit::max(CALLBACK_BODY_BYTES))
}
