//! Uploading an order export from the console (上传订单导出): the page's script sends the file
//! as the request body (showing the upload's progress, then that the import runs), the export
//! is imported as the API imports it, and the receipt appears on the overview with a download
//! of its rejected rows.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::AppState;
use crate::api::know::imports::{MOST_UPLOAD_BYTES, UploadQuery, UploadRefused, import_upload};
use crate::console::ConsoleUser;
use crate::i18n::{Lang, channel_name};
use siyu::know::import::{presets, receipts};

/// The presets an operator may pick, named in the page's language.
pub(crate) fn preset_choices(lang: Lang) -> Vec<(&'static str, String)> {
    presets::PRESET_NAMES
        .iter()
        .map(|p| {
            let name = match (*p, lang) {
                ("pos", Lang::Zh) => "门店收银（POS）".to_owned(),
                ("generic", Lang::Zh) => "通用模板".to_owned(),
                ("pos", Lang::En) => "Store POS".to_owned(),
                ("generic", Lang::En) => "Generic".to_owned(),
                (p, lang) => channel_name(lang, p),
            };
            (*p, name)
        })
        .collect()
}

/// A preset's name in the page's language.
fn preset_name(lang: Lang, preset: &str) -> String {
    preset_choices(lang)
        .into_iter()
        .find(|(p, _)| *p == preset)
        .map(|(_, n)| n)
        .unwrap_or_else(|| preset.to_owned())
}

fn said(lang: Lang, r: &UploadRefused) -> String {
    match (lang, r) {
        (Lang::Zh, UploadRefused::Busy) => {
            "本服务器正在导入两个文件：等它们完成后再上传这个".to_owned()
        }
        (Lang::Zh, UploadRefused::Preset(p)) => format!("导出模板：不认识「{p}」，请从列表中选择"),
        (Lang::Zh, UploadRefused::EmptyFile) => "文件：是空的，请选择平台导出的订单文件".to_owned(),
        (Lang::Zh, UploadRefused::MissingColumn { wanted, preset, .. }) => format!(
            "文件：表头里没有「{}」模板需要的列，它找的是 {wanted}；请确认选对了平台模板",
            preset_name(lang, preset)
        ),
        (Lang::Zh, UploadRefused::TooLarge) => format!(
            "文件：超过 {} MB，请按月份分开导出后再上传",
            MOST_UPLOAD_BYTES >> 20
        ),
        (Lang::Zh, UploadRefused::Unread(_)) => "文件：没有传完整（网络中断？），请重新上传".to_owned(),
        (Lang::Zh, UploadRefused::Header(why)) => format!("文件：读不出表头（{why}）"),
        (Lang::Zh, UploadRefused::Internal(_)) => {
            "导入时服务器出错：已导入的部分保留，重新上传同一文件即可补全（重复导入只更新、不重复）"
                .to_owned()
        }
        (Lang::En, UploadRefused::Busy) => {
            "Two exports are being imported on this server; upload this one when they finish"
                .to_owned()
        }
        (Lang::En, UploadRefused::Preset(p)) => format!("Preset: {p:?} is not one of the list"),
        (Lang::En, UploadRefused::EmptyFile) => "File: it is empty".to_owned(),
        (Lang::En, UploadRefused::MissingColumn { wanted, preset, .. }) => format!(
            "File: the header has no column the {} preset needs; it looks for {wanted}",
            preset_name(lang, preset)
        ),
        (Lang::En, UploadRefused::TooLarge) => format!(
            "File: over {} MB; export it month by month and upload each",
            MOST_UPLOAD_BYTES >> 20
        ),
        (Lang::En, UploadRefused::Unread(_)) => {
            "File: it did not arrive whole (network?); upload it again".to_owned()
        }
        (Lang::En, UploadRefused::Header(why)) => format!("File: cannot read the header ({why})"),
        (Lang::En, UploadRefused::Internal(_)) => {
            "The server failed while importing: what was stored stays; upload the same file again to complete it"
                .to_owned()
        }
    }
}

/// `POST /console/imports?preset=…&name=…`: the body is the export file. Answers JSON for the
/// page's script: the receipt, or an `error` in the page's language.
pub(crate) async fn upload(
    State(app): State<AppState>,
    u: ConsoleUser,
    Query(q): Query<UploadQuery>,
    body: Body,
) -> Response {
    if !u.caller.role.may_write() {
        let error = match u.lang {
            Lang::Zh => "你的角色只能查看，不能导入订单；请找管理员或运营",
            Lang::En => "Your role can view but not import orders; ask an admin or operator",
        };
        return (StatusCode::FORBIDDEN, axum::Json(json!({"error": error}))).into_response();
    }
    // The body is read only from here: a viewer's file is never taken in.
    match import_upload(&app, u.caller.tenant_id, q, body).await {
        Ok(receipt) => {
            (StatusCode::CREATED, axum::Json(json!({"receipt": receipt}))).into_response()
        }
        Err(r) => {
            let status = match r {
                UploadRefused::Busy => StatusCode::SERVICE_UNAVAILABLE,
                UploadRefused::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
                UploadRefused::Internal(ref e) => {
                    tracing::error!(error = %e, "console upload failed");
                    StatusCode::INTERNAL_SERVER_ERROR
                }
                _ => StatusCode::BAD_REQUEST,
            };
            (status, axum::Json(json!({"error": said(u.lang, &r)}))).into_response()
        }
    }
}

/// `GET /console/imports/{id}/rejected.csv`: the rows a run refused, each with its line, column
/// and reason, as the export wrote them (phones included: admins only).
pub(crate) async fn rejected_rows(
    State(app): State<AppState>,
    u: ConsoleUser,
    Path(id): Path<String>,
) -> Response {
    if !u.caller.role.may_see_phone() {
        let text = match u.lang {
            Lang::Zh => "被拒行里有客户的手机号：只有管理员可以下载",
            Lang::En => "Rejected rows carry customers' phones: admins only",
        };
        return (StatusCode::FORBIDDEN, text).into_response();
    }
    let Ok(id) = id.parse::<i64>() else {
        return (StatusCode::NOT_FOUND, "").into_response();
    };
    match receipts::rejected_file(&app.db, &app.cipher, u.caller.tenant_id, id).await {
        // A run without a file of rejected rows (a sync's) has nothing to download.
        Ok(Some(None)) | Ok(None) => (StatusCode::NOT_FOUND, "").into_response(),
        Ok(Some(Some(text))) => {
            let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
            // The file's own columns follow as the export named them; Siyu's three lead.
            let text = match (u.lang, text.strip_prefix("line,column,reason")) {
                (Lang::Zh, Some(rest)) => format!("行号,列,原因{rest}"),
                _ => text.to_owned(),
            };
            crate::api::csv_response(&format!("import-{id}-rejected"), text.into_bytes())
        }
        Err(e) => super::server_error(e),
    }
}
