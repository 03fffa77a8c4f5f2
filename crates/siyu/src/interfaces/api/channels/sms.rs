//! Delivery reports and replies from the SMS providers (`channels::sms`), checked by the
//! callback token in the URL.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::Deserialize;
use serde_json::json;

use crate::engage::outbox;
use crate::interfaces::AppState;
use crate::interfaces::api::{ApiError, json_body};
use crate::know::phone::Phone;
use crate::platform::clock::now_ms;

/// A callback whose URL holds the configured token. Checked from the path before the body is
/// read, so a stranger's large body is never parsed.
pub(crate) struct SmsToken;

impl FromRequestParts<AppState> for SmsToken {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        let Path(token) = Path::<String>::from_request_parts(parts, app)
            .await
            .map_err(|_| unknown())?;
        check_token(app, &token).map(|()| SmsToken)
    }
}

fn unknown() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "unknown callback")
}

/// Providers push to a URL holding the configured token; anything else is refused.
pub(crate) fn check_token(app: &AppState, token: &str) -> Result<(), ApiError> {
    match &app.sms_callback_token {
        Some(t) if crate::platform::crypto::constant_time_eq(t.as_bytes(), token.as_bytes()) => {
            Ok(())
        }
        _ => Err(unknown()),
    }
}

/// Aliyun's times are China time, `yyyy-MM-dd HH:mm:ss`.
pub(crate) fn china_time(s: &str) -> Option<i64> {
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
        .ok()
        .map(|t| t.and_utc().timestamp_millis() - 8 * 3_600_000)
}

#[derive(Debug, Deserialize)]
pub(crate) struct AliyunReport {
    biz_id: String,
    success: bool,
    #[serde(default)]
    err_code: String,
    #[serde(default)]
    report_time: String,
}

/// `POST /callbacks/sms/aliyun/{token}/report`: a JSON array of delivery receipts.
pub(crate) async fn aliyun_report(
    State(app): State<AppState>,
    _token: SmsToken,
    b: Result<Json<Vec<AliyunReport>>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    for r in json_body(b)? {
        let at = china_time(&r.report_time).unwrap_or_else(now_ms);
        outbox::record_receipt(&app.db, "aliyun", &r.biz_id, r.success, &r.err_code, at).await?;
    }
    Ok(Json(json!({"code": 0, "msg": "接收成功"})))
}

#[derive(Debug, Deserialize)]
pub(crate) struct AliyunReply {
    phone_number: String,
    content: String,
    #[serde(default)]
    send_time: String,
}

/// `POST /callbacks/sms/aliyun/{token}/reply`: a JSON array of replies (SmsUp).
pub(crate) async fn aliyun_reply(
    State(app): State<AppState>,
    _token: SmsToken,
    b: Result<Json<Vec<AliyunReply>>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
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
pub(crate) struct TencentReport {
    sid: String,
    report_status: String,
    #[serde(default)]
    errmsg: String,
    user_receive_time: Option<String>,
}

/// `POST /callbacks/sms/tencent/{token}/report`: a JSON array of status reports.
pub(crate) async fn tencent_report(
    State(app): State<AppState>,
    _token: SmsToken,
    b: Result<Json<Vec<TencentReport>>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
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
pub(crate) struct TencentReply {
    mobile: String,
    text: String,
    time: Option<i64>,
}

/// `POST /callbacks/sms/tencent/{token}/reply`: one reply.
pub(crate) async fn tencent_reply(
    State(app): State<AppState>,
    _token: SmsToken,
    b: Result<Json<TencentReply>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let r = json_body(b)?;
    if let Ok(phone) = Phone::parse(&r.mobile) {
        let at = r.time.map(|t| t * 1000).unwrap_or_else(now_ms);
        outbox::record_reply(&app.db, &app.cipher, "tencent", phone.as_str(), &r.text, at).await?;
    }
    Ok(Json(json!({"result": 0, "errmsg": "OK"})))
}
