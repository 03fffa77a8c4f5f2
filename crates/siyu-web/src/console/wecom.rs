//! WeCom set up from the console (企业微信设置): the corp id, the customer-contact app's secret,
//! the callback's token and key, with the callback address to paste into WeCom's admin console;
//! saving asks WeCom for a token at once ("test the connection"), so a wrong secret is found
//! here rather than when the first welcome message fails.

use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use crate::AppState;
use crate::console::ConsoleUser;
use crate::i18n::Lang;
use siyu::connect::client::WecomError;
use siyu::connect::service::{ConnectError, CorpSettings};
use siyu::platform::access::Role;
use siyu::platform::clock::{format_local, now_ms};

/// What was typed, kept for the form (the secret, the token and the key are never written
/// back). No `Debug`: it holds the secret.
#[derive(Clone, Default, Deserialize)]
pub(crate) struct WecomForm {
    #[serde(default)]
    pub corp_id: String,
    #[serde(default)]
    pub secret: String,
    #[serde(default)]
    pub token: String,
    #[serde(default)]
    pub encoding_aes_key: String,
    #[serde(default)]
    pub base_url: String,
    /// Save even though WeCom refused the test (a secret being rotated, WeCom down).
    #[serde(default)]
    pub save_anyway: String,
}

/// The settings section of the connect page.
pub(crate) struct WecomSection {
    /// What is set now, in the page's words; empty when nothing is.
    pub state: String,
    pub configured: bool,
    pub callback_url: String,
    pub errors: Vec<String>,
    pub notice: String,
    pub form: WecomForm,
    pub allow_base_url: bool,
    pub may_configure: bool,
}

impl WecomSection {
    pub(crate) async fn new(
        app: &AppState,
        u: &ConsoleUser,
        errors: Vec<String>,
        notice: String,
        form: WecomForm,
    ) -> WecomSection {
        let cn = u.lang.cn();
        let tenant = u.caller.tenant_id;
        let view = app.connect.settings_view(tenant).await.ok();
        let state = match &view {
            Some(v) => {
                cn.configured
                    .replace("{corp}", &v.corp_id)
                    .replace("{received}", &v.callbacks_received.to_string())
                    .replace("{done}", &v.callbacks_done.to_string())
                    + &format!(" · {}", format_local(v.updated_at))
            }
            None => cn.not_configured.to_owned(),
        };
        let form = WecomForm {
            secret: String::new(),
            token: String::new(),
            encoding_aes_key: String::new(),
            save_anyway: String::new(),
            corp_id: if form.corp_id.is_empty() {
                view.as_ref().map(|v| v.corp_id.clone()).unwrap_or_default()
            } else {
                form.corp_id
            },
            ..form
        };
        WecomSection {
            state,
            configured: view.is_some(),
            callback_url: format!("{}/callbacks/wecom/{tenant}", app.public_url),
            errors,
            notice,
            form,
            allow_base_url: app.connect.any_base_url_allowed(),
            may_configure: u.caller.role == Role::Admin,
        }
    }
}

/// A refusal of the settings, in the page's language, naming the field.
fn said(lang: Lang, e: &ConnectError) -> String {
    match (lang, e) {
        (Lang::Zh, ConnectError::Invalid { field, .. }) => match *field {
            "corp_id" => "企业 ID：必填".into(),
            "secret" => "Secret：必填".into(),
            "token" => "Token：须 1–32 个字符".into(),
            "encoding_aes_key" => {
                "EncodingAESKey：须为企业微信后台生成的 43 位字符（字母和数字）".into()
            }
            "base_url" => "接口地址：须是网址，且仅在服务器允许时可填写".into(),
            _ => super::form::unworded(lang, e),
        },
        (Lang::Zh, ConnectError::NotConfigured) => "还没有设置企业微信：先填写并保存".into(),
        (_, e) => super::form::unworded(lang, e),
    }
}

/// What testing the connection found, in the page's language.
fn tested(lang: Lang, r: &Result<(), WecomError>) -> Result<String, String> {
    match (lang, r) {
        (Lang::Zh, Ok(())) => Ok("连接正常：已用企业 ID 和 Secret 从企业微信取得令牌".into()),
        (Lang::En, Ok(())) => Ok("Connected: WeCom gave a token for the corp id and secret".into()),
        (
            Lang::Zh,
            Err(WecomError::Api {
                errcode, errmsg, ..
            }),
        ) => Err(format!(
            "连接失败：企业微信答复 errcode {errcode}（{errmsg}），请核对企业 ID 和 Secret"
        )),
        (Lang::Zh, Err(e)) => Err(format!("连接失败：连不上企业微信接口（{e}）")),
        (Lang::En, Err(e)) => Err(format!("Connection failed: {e}")),
    }
}

async fn answer(
    app: &AppState,
    u: &ConsoleUser,
    errors: Vec<String>,
    notice: String,
    form: WecomForm,
    status: StatusCode,
) -> Response {
    let forms = super::connect::ConnectForms {
        wecom: Some(WecomSection::new(app, u, errors, notice, form).await),
        ..Default::default()
    };
    super::connect::render(app, u, forms, status).await
}

/// `POST /console/connect/wecom`: saves the settings, then tests them.
pub(crate) async fn save(
    State(app): State<AppState>,
    u: ConsoleUser,
    Form(f): Form<WecomForm>,
) -> Response {
    let cn = u.lang.cn();
    if u.caller.role != Role::Admin {
        let e = vec![cn.admin_only.to_owned()];
        return answer(&app, &u, e, String::new(), f, StatusCode::FORBIDDEN).await;
    }
    let settings = CorpSettings {
        corp_id: f.corp_id.trim().to_owned(),
        secret: f.secret.trim().to_owned(),
        token: f.token.trim().to_owned(),
        encoding_aes_key: f.encoding_aes_key.trim().to_owned(),
        base_url: Some(f.base_url.trim().to_owned()).filter(|b| !b.is_empty()),
    };
    // Tested before it is saved: a typo must not replace settings that work.
    let tested_first = match app.connect.check_settings(&settings).await {
        Ok(()) => Ok(()),
        Err(ConnectError::Wecom(e)) => Err(e),
        Err(ConnectError::Db(e)) => return super::server_error(e),
        Err(e) => {
            let e = vec![said(u.lang, &e)];
            return answer(&app, &u, e, String::new(), f, StatusCode::BAD_REQUEST).await;
        }
    };
    if tested_first.is_err() && f.save_anyway != "1" {
        let refused = tested(u.lang, &tested_first).unwrap_or_else(|e| e);
        let kept = match u.lang {
            Lang::Zh => "；设置没有保存（确认无误可勾选“连接测试不通过也保存”再提交）",
            Lang::En => {
                "; the settings were not saved (tick 'save even if the test fails' to save them)"
            }
        };
        let e = vec![refused + kept];
        return answer(&app, &u, e, String::new(), f, StatusCode::BAD_GATEWAY).await;
    }
    match app
        .connect
        .configure(u.caller.tenant_id, settings, now_ms())
        .await
    {
        Ok(_) => {}
        Err(ConnectError::Db(e)) => return super::server_error(e),
        Err(e) => {
            let e = vec![said(u.lang, &e)];
            return answer(&app, &u, e, String::new(), f, StatusCode::BAD_REQUEST).await;
        }
    }
    match tested(u.lang, &tested_first) {
        Ok(n) => answer(&app, &u, Vec::new(), n, f, StatusCode::OK).await,
        Err(e) => {
            let saved = match u.lang {
                Lang::Zh => "；设置已按要求保存",
                Lang::En => "; the settings were saved as asked",
            };
            answer(
                &app,
                &u,
                vec![e + saved],
                String::new(),
                f,
                StatusCode::BAD_GATEWAY,
            )
            .await
        }
    }
}

/// `POST /console/connect/wecom/test`: asks WeCom for a token with the saved settings.
pub(crate) async fn test(State(app): State<AppState>, u: ConsoleUser) -> Response {
    let cn = u.lang.cn();
    if u.caller.role != Role::Admin {
        let e = vec![cn.admin_only.to_owned()];
        return answer(
            &app,
            &u,
            e,
            String::new(),
            WecomForm::default(),
            StatusCode::FORBIDDEN,
        )
        .await;
    }
    let corp = match app.connect.corp(u.caller.tenant_id).await {
        Ok(c) => c,
        Err(ConnectError::Db(e)) => return super::server_error(e),
        Err(e) => {
            let e = vec![said(u.lang, &e)];
            return answer(
                &app,
                &u,
                e,
                String::new(),
                WecomForm::default(),
                StatusCode::BAD_REQUEST,
            )
            .await;
        }
    };
    match tested(u.lang, &corp.api.check().await) {
        Ok(n) => {
            answer(
                &app,
                &u,
                Vec::new(),
                n,
                WecomForm::default(),
                StatusCode::OK,
            )
            .await
        }
        Err(e) => {
            answer(
                &app,
                &u,
                vec![e],
                String::new(),
                WecomForm::default(),
                StatusCode::BAD_GATEWAY,
            )
            .await
        }
    }
}
