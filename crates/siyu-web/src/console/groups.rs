//! A customer group's kind from the console (群类型): general, category, flash or VIP, so that
//! SOP posts for a kind reach it. WeCom knows no kinds; the brand gives each group its own.

use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::AppState;
use crate::console::{ConsoleUser, MessagePage, page, server_error};
use crate::i18n::Lang;
use siyu::connect::groups::{self, GroupError};

#[derive(Deserialize)]
pub(crate) struct KindForm {
    #[serde(default)]
    kind: String,
}

/// `POST /console/connect/groups/{chat_id}/kind`: the group's kind set; back to the group list.
pub(crate) async fn set_kind(
    State(app): State<AppState>,
    u: ConsoleUser,
    Path(chat_id): Path<String>,
    Form(f): Form<KindForm>,
) -> Response {
    let zh = u.lang == Lang::Zh;
    let refused = |status: StatusCode, message: &'static str| {
        let mut r = page(MessagePage {
            tr: u.lang.tr(),
            lang: u.lang.code(),
            user: u.caller.name.clone(),
            active: "connect",
            message,
        });
        *r.status_mut() = status;
        r
    };
    if !u.caller.role.may_write() {
        return refused(
            StatusCode::FORBIDDEN,
            if zh {
                "你的角色只能查看，不能改群类型；请找管理员或运营"
            } else {
                "Your role may not change a group's kind"
            },
        );
    }
    match groups::set_kind(&app.db, u.caller.tenant_id, &chat_id, f.kind.trim()).await {
        Ok(()) => Redirect::to("/console/connect#group-table").into_response(),
        Err(GroupError::Invalid { .. }) => refused(
            StatusCode::BAD_REQUEST,
            if zh {
                "群类型：只能选普通群、品类群、快闪群或 VIP 群"
            } else {
                "kind: choose general, category, flash or VIP"
            },
        ),
        Err(GroupError::NotFound(_)) => refused(
            StatusCode::NOT_FOUND,
            if zh {
                "找不到这个群：它可能已解散或不属于本品牌"
            } else {
                "No such group: it may have been dismissed"
            },
        ),
        Err(e) => server_error(e),
    }
}
