//! Tracking-link redirects and `/api/v1` for links, the contact policy, messages, SMS
//! campaigns and their reports, and the SMS providers' callbacks (delivery receipts, replies).

use std::net::SocketAddr;

use axum::Json;
use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::api::{ApiCaller, ApiError, json_body, require_write};
use super::api_activities::path_id;
use crate::acquire::campaigns::{self, CampaignError, NewCampaign};
use crate::acquire::links::{self, Click, LinkError, NewLink};
use crate::acquire::{codes, qr, report};
use crate::engage::outbox::{self, NewMessage, OutboxError};
use crate::engage::policy::{self, ContactPolicy, PolicyError, Purpose};
use crate::know::phone::Phone;
use crate::platform::clock::now_ms;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/t/{code}", get(redirect))
        .route("/t/{code}/qr.svg", get(qr_svg))
        .route("/t/{code}/qr.png", get(qr_png))
        .route("/api/v1/links", post(create_link))
        .route("/api/v1/links/{id}", get(link))
        .route("/api/v1/contact-policy", get(get_policy).put(put_policy))
        .route("/api/v1/unsubscribes", post(unsubscribe))
        .route("/api/v1/messages", post(send_message))
        .route("/api/v1/outbox", get(outbox_counts))
        .route("/api/v1/outbox/dispatch", post(dispatch))
        .route(
            "/api/v1/campaigns",
            get(list_campaigns).post(create_campaign),
        )
        .route("/api/v1/campaigns/{id}", get(campaign))
        .route("/api/v1/campaigns/{id}/launch", post(launch))
        .route("/api/v1/campaigns/{id}/report", get(campaign_report))
        .route(
            "/api/v1/campaigns/{id}/report.csv",
            get(campaign_report_csv),
        )
        .route("/callbacks/sms/aliyun/{token}/report", post(aliyun_report))
        .route("/callbacks/sms/aliyun/{token}/reply", post(aliyun_reply))
        .route(
            "/callbacks/sms/tencent/{token}/report",
            post(tencent_report),
        )
        .route("/callbacks/sms/tencent/{token}/reply", post(tencent_reply))
}

impl From<LinkError> for ApiError {
    fn from(e: LinkError) -> Self {
        match e {
            LinkError::NotFound(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", e.to_string())
            }
            LinkError::Db(e) => ApiError::internal(e),
            _ => ApiError::bad_request(e.to_string()),
        }
    }
}

impl From<PolicyError> for ApiError {
    fn from(e: PolicyError) -> Self {
        match e {
            PolicyError::Db(e) => ApiError::internal(e),
            _ => ApiError::bad_request(e.to_string()),
        }
    }
}

impl From<OutboxError> for ApiError {
    fn from(e: OutboxError) -> Self {
        match e {
            OutboxError::Db(e) => ApiError::internal(e),
            OutboxError::Policy(e) => e.into(),
            OutboxError::AlreadyQueued { .. } => {
                ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string())
            }
        }
    }
}

impl From<CampaignError> for ApiError {
    fn from(e: CampaignError) -> Self {
        match e {
            CampaignError::Invalid { .. } => ApiError::bad_request(e.to_string()),
            CampaignError::NotFound(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", e.to_string())
            }
            CampaignError::Segment(e) => e.into(),
            CampaignError::Link(e) => e.into(),
            CampaignError::Db(e) => ApiError::internal(e),
            CampaignError::Outbox(e) => e.into(),
            CampaignError::Interrupted => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                e.to_string(),
            ),
        }
    }
}

/// The visitor cookie: first-party, a year, so unique visitors count people, not clicks.
const VISITOR_COOKIE: &str = "sy_v";

fn visitor_of(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, v)| {
            *k == VISITOR_COOKIE && v.len() == 16 && v.bytes().all(|b| b.is_ascii_alphanumeric())
        })
        .map(|(_, v)| v.to_string())
}

/// `GET /t/{code}`: 302 to the target, the click queued for the writer.
async fn redirect(State(app): State<AppState>, Path(code): Path<String>, req: Request) -> Response {
    let link = match app.links.resolve(&code).await {
        Ok(Some(l)) => l,
        Ok(None) => return (StatusCode::NOT_FOUND, "链接不存在 / link not found").into_response(),
        Err(e) => return ApiError::internal(e).into_response(),
    };
    let headers = req.headers();
    let (visitor, new_visitor) = match visitor_of(headers) {
        Some(v) => (v, false),
        None => (codes::visitor_id(), true),
    };
    // Behind a proxy the client is the first X-Forwarded-For entry; only a hash is kept.
    let ip = headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(|s| s.trim().to_string())
        .or_else(|| {
            req.extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip().to_string())
        })
        .unwrap_or_default();
    let ua: String = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .chars()
        .take(256)
        .collect();
    app.links.record(Click {
        tenant_id: link.tenant_id,
        link_id: link.id,
        visitor: visitor.clone(),
        ip_hash: app.cipher.lookup_hash(&format!("ip:{ip}")),
        user_agent: ua,
        at: now_ms(),
    });
    let mut resp = (StatusCode::FOUND, [(header::CACHE_CONTROL, "no-store")]).into_response();
    if let Ok(v) = HeaderValue::from_str(&link.target) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    if new_visitor
        && let Ok(v) = HeaderValue::from_str(&format!(
            "{VISITOR_COOKIE}={visitor}; Max-Age=31536000; Path=/t; HttpOnly; SameSite=Lax"
        ))
    {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

async fn qr_for(app: &AppState, code: &str) -> Result<String, ApiError> {
    if !codes::is_link_code(code) || app.links.resolve(code).await?.is_none() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("link {code} not found"),
        ));
    }
    Ok(format!("{}/t/{code}", app.public_url))
}

/// `GET /t/{code}/qr.svg`
async fn qr_svg(
    State(app): State<AppState>,
    Path(code): Path<String>,
) -> Result<Response, ApiError> {
    let url = qr_for(&app, &code).await?;
    let svg = qr::svg(&url, 240).map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response())
}

/// `GET /t/{code}/qr.png`
async fn qr_png(
    State(app): State<AppState>,
    Path(code): Path<String>,
) -> Result<Response, ApiError> {
    let url = qr_for(&app, &code).await?;
    let png = qr::png(&url, 8).map_err(ApiError::internal)?;
    Ok(([(header::CONTENT_TYPE, "image/png")], png).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkBody {
    target: String,
    #[serde(default = "default_channel")]
    channel: String,
    campaign_id: Option<i64>,
    variant: Option<String>,
}

fn default_channel() -> String {
    "direct".into()
}

/// `POST /api/v1/links`
async fn create_link(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    b: Result<Json<LinkBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    require_write(&caller)?;
    let b = json_body(b)?;
    let mut tx = app.db.begin().await?;
    let made = links::create_in(
        &mut tx,
        caller.tenant_id,
        &[NewLink {
            target: b.target,
            channel: b.channel,
            campaign_id: b.campaign_id,
            variant: b.variant,
            ..NewLink::default()
        }],
        now_ms(),
    )
    .await?;
    tx.commit().await?;
    let l = made
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::internal("no link made"))?;
    let url = format!("{}/t/{}", app.public_url, l.code);
    Ok((
        StatusCode::CREATED,
        Json(json!({"link": l, "url": url, "qr_svg": format!("{url}/qr.svg"), "qr_png": format!("{url}/qr.png")})),
    )
        .into_response())
}

/// `GET /api/v1/links/{id}`: the link and its clicks.
async fn link(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let l = links::get(&app.db, caller.tenant_id, path_id("link", &id)?).await?;
    app.links.flush().await;
    let counts = links::click_counts(&app.db, caller.tenant_id, l.id).await?;
    Ok(Json(
        json!({"link": l, "url": format!("{}/t/{}", app.public_url, l.code), "clicks": counts}),
    ))
}

/// `GET /api/v1/contact-policy`
async fn get_policy(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
) -> Result<Json<ContactPolicy>, ApiError> {
    Ok(Json(policy::load(&app.db, caller.tenant_id).await?))
}

/// `PUT /api/v1/contact-policy`
async fn put_policy(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    b: Result<Json<ContactPolicy>, JsonRejection>,
) -> Result<Json<ContactPolicy>, ApiError> {
    require_write(&caller)?;
    let p = json_body(b)?;
    policy::save(&app.db, caller.tenant_id, &p).await?;
    Ok(Json(policy::load(&app.db, caller.tenant_id).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PhoneBody {
    phone: String,
}

fn parse_phone(field: &str, raw: &str) -> Result<Phone, ApiError> {
    Phone::parse(raw).map_err(|e| ApiError::bad_request(format!("{field}: {e}")))
}

/// `POST /api/v1/unsubscribes`: a number asked (by phone, in a store) not to get SMS.
async fn unsubscribe(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    b: Result<Json<PhoneBody>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    require_write(&caller)?;
    let p = parse_phone("phone", &json_body(b)?.phone)?;
    policy::unsubscribe(
        &app.db,
        caller.tenant_id,
        "sms",
        &app.cipher.lookup_hash(p.as_str()),
        "api",
        now_ms(),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MessageBody {
    phone: String,
    content: String,
    purpose: Purpose,
    customer_id: Option<i64>,
    template_code: Option<String>,
    #[serde(default)]
    template_params: Vec<(String, String)>,
    /// The caller's own key for this message: the same key is queued once.
    dedupe_key: Option<String>,
    not_before: Option<i64>,
}

/// `POST /api/v1/messages`: queue one SMS through the outbox and its policy.
async fn send_message(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    b: Result<Json<MessageBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    require_write(&caller)?;
    let b = json_body(b)?;
    let phone = parse_phone("phone", &b.phone)?;
    let content = b.content.trim().to_string();
    if content.is_empty() || content.chars().count() > 500 {
        return Err(ApiError::bad_request("content: must be 1–500 characters"));
    }
    let now = now_ms();
    let key = match b.dedupe_key {
        Some(k) if !k.is_empty() && k.len() <= 128 => format!("api:{k}"),
        Some(_) => {
            return Err(ApiError::bad_request(
                "dedupe_key: must be 1–128 characters",
            ));
        }
        None => format!("api:{}", crate::platform::crypto::random_token(16)),
    };
    let written = outbox::enqueue(
        &app.db,
        &[NewMessage {
            tenant_id: caller.tenant_id,
            purpose: b.purpose,
            customer_id: b.customer_id,
            address: outbox::Address::of_phone(&app.cipher, phone.as_str()),
            content,
            template_code: b.template_code,
            template_params: b.template_params,
            dedupe_key: key.clone(),
            campaign_id: None,
            variant: None,
            not_before: b.not_before.unwrap_or(now),
        }],
        now,
    )
    .await?;
    app.outbox.notify();
    let status = if written == 1 {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(json!({"queued": written == 1, "dedupe_key": key})),
    )
        .into_response())
}

/// `GET /api/v1/outbox`: the tenant's messages by status.
async fn outbox_counts(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
) -> Result<Json<serde_json::Value>, ApiError> {
    let rows = outbox::counts(&app.db, caller.tenant_id).await?;
    let map: serde_json::Map<String, serde_json::Value> =
        rows.into_iter().map(|(s, n)| (s, json!(n))).collect();
    Ok(Json(
        json!({"provider": app.outbox.provider_name(), "by_status": map}),
    ))
}

/// `POST /api/v1/outbox/dispatch`: send what is due now instead of waiting for the next tick.
async fn dispatch(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
) -> Result<Json<serde_json::Value>, ApiError> {
    require_write(&caller)?;
    let r = app.outbox.drain(now_ms()).await?;
    Ok(Json(json!(r)))
}

/// Tracking links are `{public_url}/t/XXXXXXXX`; the content check counts them at that length.
pub(super) fn link_len(app: &AppState) -> usize {
    app.public_url.chars().count() + 3 + codes::LINK_CODE_LEN
}

/// `POST /api/v1/campaigns`
async fn create_campaign(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    b: Result<Json<NewCampaign>, JsonRejection>,
) -> Result<Response, ApiError> {
    require_write(&caller)?;
    let b = json_body(b)?;
    let (c, content) =
        campaigns::create(&app.db, caller.tenant_id, &b, link_len(&app), now_ms()).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"campaign": c, "content": content})),
    )
        .into_response())
}

async fn list_campaigns(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(
        json!({"campaigns": campaigns::list(&app.db, caller.tenant_id).await?}),
    ))
}

async fn campaign(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = path_id("campaign", &id)?;
    let c = campaigns::get(&app.db, caller.tenant_id, id).await?;
    let launch = campaigns::launch_report(&app.db, caller.tenant_id, id).await?;
    Ok(Json(json!({"campaign": c, "launch": launch})))
}

/// `POST /api/v1/campaigns/{id}/launch`: the audience becomes outbox messages (idempotent).
async fn launch(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    require_write(&caller)?;
    let id = path_id("campaign", &id)?;
    let r = campaigns::launch_then(
        &app.db,
        &app.cipher,
        &app.public_url,
        caller.tenant_id,
        id,
        now_ms(),
        Some(&app.outbox),
    )
    .await?;
    app.outbox.notify();
    Ok(Json(json!({"launch": r})))
}

async fn campaign_report(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
) -> Result<Json<report::CampaignReport>, ApiError> {
    app.links.flush().await;
    Ok(Json(
        report::campaign_report(&app.db, caller.tenant_id, path_id("campaign", &id)?).await?,
    ))
}

async fn campaign_report_csv(
    State(app): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = path_id("campaign", &id)?;
    app.links.flush().await;
    let r = report::campaign_report(&app.db, caller.tenant_id, id).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"campaign-{id}.csv\""),
            ),
        ],
        // A BOM, so Excel opens the Chinese variant names as UTF-8.
        format!("\u{feff}{}", report::campaign_csv(&r)),
    )
        .into_response())
}

/// Providers push to a URL holding the configured token; anything else is refused.
fn check_token(app: &AppState, token: &str) -> Result<(), ApiError> {
    match &app.sms_callback_token {
        Some(t) if crate::platform::crypto::constant_time_eq(t.as_bytes(), token.as_bytes()) => {
            Ok(())
        }
        _ => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "unknown callback",
        )),
    }
}

/// Aliyun's times are China time, `yyyy-MM-dd HH:mm:ss`.
fn china_time(s: &str) -> Option<i64> {
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
        .ok()
        .map(|t| t.and_utc().timestamp_millis() - 8 * 3_600_000)
}

#[derive(Debug, Deserialize)]
struct AliyunReport {
    biz_id: String,
    success: bool,
    #[serde(default)]
    err_code: String,
    #[serde(default)]
    report_time: String,
}

/// `POST /callbacks/sms/aliyun/{token}/report`: a JSON array of delivery receipts.
async fn aliyun_report(
    State(app): State<AppState>,
    Path(token): Path<String>,
    b: Result<Json<Vec<AliyunReport>>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    check_token(&app, &token)?;
    for r in json_body(b)? {
        let at = china_time(&r.report_time).unwrap_or_else(now_ms);
        outbox::record_receipt(&app.db, "aliyun", &r.biz_id, r.success, &r.err_code, at).await?;
    }
    Ok(Json(json!({"code": 0, "msg": "接收成功"})))
}

#[derive(Debug, Deserialize)]
struct AliyunReply {
    phone_number: String,
    content: String,
    #[serde(default)]
    send_time: String,
}

/// `POST /callbacks/sms/aliyun/{token}/reply`: a JSON array of replies (SmsUp).
async fn aliyun_reply(
    State(app): State<AppState>,
    Path(token): Path<String>,
    b: Result<Json<Vec<AliyunReply>>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    check_token(&app, &token)?;
    for r in json_body(b)? {
        let Ok(phone) = Phone::parse(&r.phone_number) else {
            continue;
        };
        let at = china_time(&r.send_time).unwrap_or_else(now_ms);
        outbox::record_reply(
            &app.db,
            &app.cipher,
            "aliyun",
            phone.as_str(),
            &r.content,
            at,
        )
        .await?;
    }
    Ok(Json(json!({"code": 0, "msg": "接收成功"})))
}

#[derive(Debug, Deserialize)]
struct TencentReport {
    sid: String,
    report_status: String,
    #[serde(default)]
    errmsg: String,
    user_receive_time: Option<String>,
}

/// `POST /callbacks/sms/tencent/{token}/report`: a JSON array of status reports.
async fn tencent_report(
    State(app): State<AppState>,
    Path(token): Path<String>,
    b: Result<Json<Vec<TencentReport>>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    check_token(&app, &token)?;
    for r in json_body(b)? {
        let at = r
            .user_receive_time
            .as_deref()
            .and_then(china_time)
            .unwrap_or_else(now_ms);
        outbox::record_receipt(
            &app.db,
            "tencent",
            &r.sid,
            r.report_status == "SUCCESS",
            &r.errmsg,
            at,
        )
        .await?;
    }
    Ok(Json(json!({"result": 0, "errmsg": "OK"})))
}

#[derive(Debug, Deserialize)]
struct TencentReply {
    mobile: String,
    text: String,
    time: Option<i64>,
}

/// `POST /callbacks/sms/tencent/{token}/reply`: one reply.
async fn tencent_reply(
    State(app): State<AppState>,
    Path(token): Path<String>,
    b: Result<Json<TencentReply>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    check_token(&app, &token)?;
    let r = json_body(b)?;
    if let Ok(phone) = Phone::parse(&r.mobile) {
        let at = r.time.map(|t| t * 1000).unwrap_or_else(now_ms);
        outbox::record_reply(&app.db, &app.cipher, "tencent", phone.as_str(), &r.text, at).await?;
    }
    Ok(Json(json!({"result": 0, "errmsg": "OK"})))
}
