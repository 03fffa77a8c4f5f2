//! A seller authorising the brand's app for their shop (OAuth's code flow): the page their
//! browser is sent to, and what the code is exchanged for. TOP, JD and PDD send the browser back
//! to the `redirect_uri` the authorisation names (it must sit under the callback registered with
//! the app); Douyin sends it to the callback registered with its service-market listing, named
//! by `service_id`. Youzan's self-use app (自用型) needs no authorisation: its token comes from
//! the app's secret for the shop (`youzan::refresh_request`).

use super::{Platform, Tokens};

/// What an authorisation gives: the shop's tokens and who the shop is, where the platform says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub tokens: Tokens,
    /// The platform's id of the seller or shop (TOP `taobao_user_id`, JD `uid`, PDD `owner_id`,
    /// Douyin `shop_id`).
    pub shop_ref: Option<String>,
    pub shop_name: Option<String>,
}

/// The platforms' authorisation pages.
const TOP_AUTHORIZE: &str = "https://oauth.taobao.com/authorize";
const JD_AUTHORIZE: &str = "https://open-oauth.jd.com/oauth2/to_login";
const PDD_AUTHORIZE: &str = "https://fuwu.pinduoduo.com/service-market/auth";
const DOUYIN_AUTHORIZE: &str = "https://fuwu.jinritemai.com/authorize";

impl Platform {
    /// Whether a seller authorises the app for their shop in the browser.
    pub fn authorizes_by_code(self) -> bool {
        !matches!(self, Platform::Youzan)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthorizeError {
    #[error("{0} authorises no app in the browser: its self-use app connects with its secret")]
    NotByCode(&'static str),
    #[error("service_id: Douyin's authorisation names the service-market listing, not the app key")]
    NoServiceId,
    #[error("{0} is not an address")]
    Base(String),
}

/// The page a seller's browser is sent to. `base` replaces the platform's host (a sandbox, a
/// proxy), keeping each platform's path.
pub fn authorize_url(
    platform: Platform,
    app_key: &str,
    service_id: Option<&str>,
    redirect_uri: &str,
    state: &str,
    base: Option<&str>,
) -> Result<String, AuthorizeError> {
    let (page, path) = match platform {
        Platform::Tmall => (TOP_AUTHORIZE, "/authorize"),
        Platform::Jd => (JD_AUTHORIZE, "/oauth2/to_login"),
        Platform::Pdd => (PDD_AUTHORIZE, "/service-market/auth"),
        Platform::Douyin => (DOUYIN_AUTHORIZE, "/authorize"),
        Platform::Youzan => return Err(AuthorizeError::NotByCode(platform.as_str())),
    };
    let page = match base {
        Some(b) => format!("{}{path}", b.trim_end_matches('/')),
        None => page.to_owned(),
    };
    let params: Vec<(&str, &str)> = match platform {
        Platform::Tmall => vec![
            ("response_type", "code"),
            ("client_id", app_key),
            ("redirect_uri", redirect_uri),
            ("state", state),
            ("view", "web"),
        ],
        Platform::Jd => vec![
            ("app_key", app_key),
            ("response_type", "code"),
            ("redirect_uri", redirect_uri),
            ("state", state),
            ("scope", "snsapi_base"),
        ],
        Platform::Pdd => vec![
            ("response_type", "code"),
            ("client_id", app_key),
            ("redirect_uri", redirect_uri),
            ("state", state),
            ("view", "web"),
        ],
        Platform::Douyin => {
            let service = service_id
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .ok_or(AuthorizeError::NoServiceId)?;
            vec![("service_id", service), ("state", state)]
        }
        Platform::Youzan => unreachable!("refused above"),
    };
    reqwest::Url::parse_with_params(&page, &params)
        .map(String::from)
        .map_err(|_| AuthorizeError::Base(page))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn grants_read_as_each_platform_answers() {
        let now = 1_700_000_000_000;
        // TOP: token_result is a JSON string; the nick comes URL-encoded.
        let top = super::super::top::read_grant(
            &json!({"top_auth_token_create_response": {"token_result":
                "{\"access_token\":\"a1\",\"refresh_token\":\"r1\",\"expires_in\":86400,\"taobao_user_id\":\"2200\",\"taobao_user_nick\":\"%E8%8C%B6%E5%B0%8F%E9%93%BA\"}"}}),
            now,
        )
        .expect("top");
        assert_eq!(
            top,
            Grant {
                tokens: Tokens {
                    access_token: "a1".into(),
                    refresh_token: Some("r1".into()),
                    expires_at: now + 86_400_000,
                },
                shop_ref: Some("2200".into()),
                shop_name: Some("茶小铺".into()),
            }
        );
        // JD: flat, `time` is when it was issued (ms), `uid` the seller.
        let jd = super::super::jd::read_grant(
            &json!({"code": 0, "access_token": "a2", "expires_in": 3600, "refresh_token": "r2",
                    "uid": "8800", "open_id": "o", "time": now - 1_000}),
            now,
        )
        .expect("jd");
        assert_eq!(
            (jd.tokens.expires_at, jd.shop_ref.as_deref(), jd.shop_name),
            (now - 1_000 + 3_600_000, Some("8800"), None)
        );
        // PDD: `expires_at` in seconds, the owner is the shop.
        let pdd = super::super::pdd::read_grant(
            &json!({"pop_auth_token_create_response": {"access_token": "a3", "refresh_token": "r3",
                    "expires_at": 1_700_086_400, "owner_id": "99", "owner_name": "拼多多店"}}),
            now,
        )
        .expect("pdd");
        assert_eq!(
            (
                pdd.tokens.expires_at,
                pdd.shop_ref.as_deref(),
                pdd.shop_name.as_deref()
            ),
            (1_700_086_400_000, Some("99"), Some("拼多多店"))
        );
        // Douyin: `shop_id` may be a number.
        let douyin = super::super::douyin::read_grant(
            &json!({"code": 10000, "msg": "success", "data": {"access_token": "a4",
                    "expires_in": 604_800, "refresh_token": "r4", "shop_id": 4_463_798, "shop_name": "抖店"}}),
            now,
        )
        .expect("douyin");
        assert_eq!(
            (douyin.shop_ref.as_deref(), douyin.shop_name.as_deref()),
            (Some("4463798"), Some("抖店"))
        );
        // A refused code is an error, not a grant.
        assert!(
            super::super::pdd::read_grant(
                &json!({"error_response": {"error_code": 10019, "error_msg": "code 无效"}}),
                now
            )
            .is_err()
        );
    }

    #[test]
    fn each_platform_is_sent_its_own_parameters() {
        let top = authorize_url(
            Platform::Tmall,
            "12345",
            None,
            "https://crm.example.com/console/shops/authorized",
            "s1",
            None,
        )
        .expect("url");
        assert_eq!(
            top,
            "https://oauth.taobao.com/authorize?response_type=code&client_id=12345&redirect_uri=https%3A%2F%2Fcrm.example.com%2Fconsole%2Fshops%2Fauthorized&state=s1&view=web"
        );
        let jd = authorize_url(Platform::Jd, "k", None, "https://a/b", "s", None).expect("url");
        assert_eq!(
            jd,
            "https://open-oauth.jd.com/oauth2/to_login?app_key=k&response_type=code&redirect_uri=https%3A%2F%2Fa%2Fb&state=s&scope=snsapi_base"
        );
        let pdd = authorize_url(
            Platform::Pdd,
            "k",
            None,
            "https://a/b",
            "s",
            Some("http://127.0.0.1:9/"),
        )
        .expect("url");
        assert_eq!(
            pdd,
            "http://127.0.0.1:9/service-market/auth?response_type=code&client_id=k&redirect_uri=https%3A%2F%2Fa%2Fb&state=s&view=web"
        );
        let douyin = authorize_url(Platform::Douyin, "k", Some("77"), "https://a/b", "s", None)
            .expect("url");
        assert_eq!(
            douyin,
            "https://fuwu.jinritemai.com/authorize?service_id=77&state=s"
        );
        assert_eq!(
            authorize_url(Platform::Douyin, "k", Some(" "), "https://a/b", "s", None),
            Err(AuthorizeError::NoServiceId)
        );
        assert_eq!(
            authorize_url(Platform::Youzan, "k", None, "https://a/b", "s", None),
            Err(AuthorizeError::NotByCode("youzan"))
        );
    }
}
