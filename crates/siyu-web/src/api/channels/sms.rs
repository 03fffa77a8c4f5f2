//! Delivery reports and replies from the SMS providers (`channels::sms`), checked by the
//! callback token in the URL.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde_json::json;

use crate::AppState;
use crate::api::{ApiError, json_body};
use siyu::channels::sms::callbacks::{
    AliyunReply, AliyunReport, Receipt, Reply, TencentReply, TencentReport,
};
use siyu::engage::outbox;
use siyu::platform::clock::now_ms;

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
        Some(t) if siyu::platform::crypto::constant_time_eq(t.as_bytes(), token.as_bytes()) => {
            Ok(())
        }
        _ => Err(unknown()),
    }
}

async fn store_receipts(
    app: &AppState,
    provider: &str,
    receipts: impl Iterator<Item = Receipt>,
) -> Result<(), ApiError> {
    for r in receipts {
        let at = r.at.unwrap_or_else(now_ms);
        outbox::record_receipt(&app.db, provider, &r.provider_ref, r.delivered, &r.code, at)
            .await?;
    }
    Ok(())
}

async fn store_replies(
    app: &AppState,
    provider: &str,
    replies: impl Iterator<Item = Reply>,
) -> Result<(), ApiError> {
    for r in replies {
        let at = r.at.unwrap_or_else(now_ms);
        outbox::record_reply(&app.db, &app.cipher, provider, &r.phone, &r.text, at).await?;
    }
    Ok(())
}

/// `POST /callbacks/sms/aliyun/{token}/report`: a JSON array of delivery receipts.
pub(crate) async fn aliyun_report(
    State(app): State<AppState>,
    _token: SmsToken,
    b: Result<Json<Vec<AliyunReport>>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let receipts = json_body(b)?.into_iter().map(AliyunReport::receipt);
    store_receipts(&app, "aliyun", receipts).await?;
    Ok(Json(json!({"code": 0, "msg": "接收成功"})))
}

/// `POST /callbacks/sms/aliyun/{token}/reply`: a JSON array of replies (SmsUp).
pub(crate) async fn aliyun_reply(
    State(app): State<AppState>,
    _token: SmsToken,
    b: Result<Json<Vec<AliyunReply>>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let replies = json_body(b)?.into_iter().filter_map(AliyunReply::reply);
    store_replies(&app, "aliyun", replies).await?;
    Ok(Json(json!({"code": 0, "msg": "接收成功"})))
}

/// `POST /callbacks/sms/tencent/{token}/report`: a JSON array of status reports.
pub(crate) async fn tencent_report(
    State(app): State<AppState>,
    _token: SmsToken,
    b: Result<Json<Vec<TencentReport>>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let receipts = json_body(b)?.into_iter().map(TencentReport::receipt);
    store_receipts(&app, "tencent", receipts).await?;
    Ok(Json(json!({"result": 0, "errmsg": "OK"})))
}

/// `POST /callbacks/sms/tencent/{token}/reply`: one reply.
pub(crate) async fn tencent_reply(
    State(app): State<AppState>,
    _token: SmsToken,
    b: Result<Json<TencentReply>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let replies = json_body(b)?.reply().into_iter();
    store_replies(&app, "tencent", replies).await?;
    Ok(Json(json!({"result": 0, "errmsg": "OK"})))
}
