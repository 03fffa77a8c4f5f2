//! The RFM page (RFM 分层): the eight classes and the lifecycle stages as bar charts, with the
//! model's cut points; each group with people can be saved as a segment (`console::picked`).

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::Value as Json_;

use crate::AppState;
use crate::api::know::rfm::rfm_json;
use crate::console::{ConsoleUser, page};
use crate::i18n::{LayerTr, Tr};

pub struct Bar {
    pub key: String,
    pub label: String,
    pub count: u64,
    /// Bar width and the x of its figure, in chart units (a full bar is 480).
    pub width: String,
    pub text_x: String,
}

#[derive(Template)]
#[template(path = "console/rfm.html")]
pub(crate) struct RfmPage {
    tr: &'static Tr,
    lt: &'static LayerTr,
    lang: &'static str,
    user: String,
    active: &'static str,
    classes: Vec<Bar>,
    stages: Vec<Bar>,
    window_days: i64,
    cuts: String,
    customers: u64,
    may_write: bool,
}

pub(crate) fn bars(list: &Json_, key: &str, zh: bool) -> Vec<Bar> {
    let items = list.as_array().cloned().unwrap_or_default();
    let max = items
        .iter()
        .filter_map(|i| i["customers"].as_u64())
        .max()
        .unwrap_or(0)
        .max(1);
    items
        .iter()
        .map(|i| {
            let count = i["customers"].as_u64().unwrap_or(0);
            Bar {
                key: i[key].as_str().unwrap_or("").to_owned(),
                label: i[if zh { "zh" } else { "en" }]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
                count,
                width: format!("{:.1}", count as f64 * 480.0 / max as f64),
                text_x: format!("{:.1}", count as f64 * 480.0 / max as f64 + 158.0),
            }
        })
        .collect()
}

pub(crate) async fn rfm_page(State(app): State<AppState>, u: ConsoleUser) -> Response {
    let v = match rfm_json(&app, u.caller.tenant_id).await {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let zh = u.lang.code() == "zh-CN";
    let model = &v["model"];
    let cuts = if model.is_null() {
        "-".to_owned()
    } else {
        // Spend cut points are stored in fen: shown in yuan.
        let m: Vec<String> = model["m_cuts"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_i64())
                    .map(|f| siyu::know::report::yuan(siyu::platform::Fen::new(f)))
                    .collect()
            })
            .unwrap_or_default();
        format!(
            "R {} · F {} · M [{}]",
            model["r_cuts"],
            model["f_cuts"],
            m.join(", ")
        )
    };
    page(RfmPage {
        tr: u.lang.tr(),
        lt: u.lang.lt(),
        lang: u.lang.code(),
        user: u.caller.name.clone(),
        active: "rfm",
        classes: bars(&v["classes"], "class", zh),
        stages: bars(&v["stages"], "stage", zh),
        window_days: v["settings"]["window_days"].as_i64().unwrap_or(365),
        cuts,
        customers: v["customers"].as_u64().unwrap_or(0),
        may_write: u.caller.role.may_write(),
    })
}
