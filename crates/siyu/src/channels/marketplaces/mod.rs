//! The marketplaces' open platforms, for the orders of a brand's shops: Taobao/Tmall (TOP), JD
//! (京东开放平台), PDD (拼多多开放平台), Douyin (抖店开放平台) and Youzan (有赞云). Each client
//! signs its calls as its platform documents (`sign`), asks for the orders changed in a time
//! window page by page, refreshes its OAuth token, and reads the answer into [`MarketOrder`]s,
//! the same whatever the platform. Pacing, retries and cursors are the sync's (`workflows::sync`).

use crate::platform::Fen;
pub mod authorize;
pub mod douyin;
pub mod jd;
pub mod pdd;
pub mod sign;
pub mod top;
pub mod youzan;

use std::time::Duration;

use serde::Serialize;

/// The platforms' APIs write and take times as China time to the second.
pub use crate::platform::clock::{china_seconds_text, from_china_seconds_text};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    /// Taobao and Tmall, through TOP.
    Tmall,
    Jd,
    Douyin,
    Pdd,
    Youzan,
}

pub const ALL_PLATFORMS: &[Platform] = &[
    Platform::Tmall,
    Platform::Jd,
    Platform::Douyin,
    Platform::Pdd,
    Platform::Youzan,
];

impl Platform {
    /// The name in settings and the API; also the sales channel its orders are stored under.
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Tmall => "tmall",
            Platform::Jd => "jd",
            Platform::Douyin => "douyin",
            Platform::Pdd => "pdd",
            Platform::Youzan => "youzan",
        }
    }

    pub fn parse(s: &str) -> Option<Platform> {
        ALL_PLATFORMS.iter().copied().find(|p| p.as_str() == s)
    }

    pub fn zh(self) -> &'static str {
        match self {
            Platform::Tmall => "天猫/淘宝",
            Platform::Jd => "京东",
            Platform::Douyin => "抖店",
            Platform::Pdd => "拼多多",
            Platform::Youzan => "有赞",
        }
    }

    /// The widest modification-time window one order query may ask for.
    pub fn max_window_ms(self) -> i64 {
        match self {
            // TOP allows a day and advises half an hour; PDD allows half an hour.
            Platform::Tmall | Platform::Pdd => 30 * 60_000,
            Platform::Jd | Platform::Douyin | Platform::Youzan => 3_600_000,
        }
    }

    /// Orders per page asked for (each platform's maximum; JD's documents disagree between
    /// 50 and 100, so 50).
    pub fn page_size(self) -> u32 {
        match self {
            Platform::Jd => 50,
            _ => 100,
        }
    }

    /// The deepest page a query may ask for; a window holding more is split.
    pub fn max_pages(self) -> u32 {
        match self {
            Platform::Youzan => 100,
            _ => 1_000,
        }
    }

    /// Calls per second the sync allows itself per shop, under the platform's default quota
    /// for an app (the platforms count per app and API; several shops of one app share it).
    pub fn calls_per_second(self) -> u32 {
        match self {
            Platform::Tmall => 10,
            Platform::Jd => 10,
            Platform::Pdd => 10,
            Platform::Douyin => 10,
            Platform::Youzan => 10,
        }
    }

    /// Whether the sync reads refunds from an after-sales API of their own: PDD's, JD's and
    /// Youzan's order APIs say only that an order was refunded (or cancelled) in full, never how
    /// much of it went back. TOP's and Douyin's order answers carry each line's refund.
    pub fn after_sales_api(self) -> bool {
        matches!(self, Platform::Pdd | Platform::Jd | Platform::Youzan)
    }

    /// After-sales cases per page asked for (JD's refund list takes at most 50).
    pub fn after_sales_page_size(self) -> u32 {
        match self {
            Platform::Jd => 50,
            _ => 100,
        }
    }

    /// The deepest page of after-sales cases a query may ask for: JD's refund list pages to
    /// 100; Youzan's refund search reads no further than 3,000 cases (page × size).
    pub fn after_sales_max_pages(self) -> u32 {
        match self {
            Platform::Jd => 100,
            Platform::Youzan => 3_000 / self.after_sales_page_size(),
            _ => self.max_pages(),
        }
    }

    /// The platform's public API address.
    pub fn default_base(self) -> &'static str {
        match self {
            Platform::Tmall => "https://eco.taobao.com/router/rest",
            Platform::Jd => "https://api.jd.com/routerjson",
            Platform::Pdd => "https://gw-api.pinduoduo.com/api/router",
            Platform::Douyin => "https://openapi-fxg.jinritemai.com",
            Platform::Youzan => "https://open.youzanyun.com",
        }
    }
}

/// What a client needs of a shop.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub shop_ref: String,
    pub app_key: String,
    pub app_secret: String,
    pub access_token: Option<String>,
    pub refresh_token: Option<String>,
}

/// One order as a platform gives it, read into Siyu's terms. Money in fen, times UTC ms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarketOrder {
    pub order_no: String,
    /// A Siyu status name (`paid`, …) where the platform's code is known; else the platform's
    /// own code or text, kept as `unknown` until the tenant's status map reads it.
    pub status: String,
    pub created_at: i64,
    pub paid_at: Option<i64>,
    pub modified_at: i64,
    pub amount: Fen,
    pub refund_amount: Fen,
    /// The platform's ids of the buyer (open id, nick, pin): every one the answer carries, so
    /// that OneID joins an export's nick to the API's open id.
    pub buyer_ids: Vec<String>,
    /// A full mainland number, or the masked one platforms give now.
    pub phone: Option<String>,
    pub buyer_name: Option<String>,
    pub province: Option<String>,
    pub lines: Vec<MarketLine>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarketLine {
    pub sku: Option<String>,
    pub title: Option<String>,
    pub quantity: i64,
    /// Unit price in fen.
    pub price: Fen,
}

/// An after-sales case (售后单) as its platform's after-sales API states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarketAfterSale {
    pub case_ref: String,
    pub order_no: String,
    pub amount: Fen,
    /// The money went back to the buyer.
    pub succeeded: bool,
    pub modified_at: i64,
}

/// One page of what changed in a window (orders, or after-sales cases), with how many the
/// window holds in all. An item the client cannot read is listed by its id (or position) and
/// why, not fatal to the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub unreadable: Vec<(String, String)>,
    pub total: u64,
}

pub type OrderPage = Page<MarketOrder>;
pub type AfterSalePage = Page<MarketAfterSale>;

/// A page as a platform answers it: the count of the whole window (`total`) and the list (`list`,
/// named `name` in a refusal; absent or null is an empty page), each item read on its own.
pub(crate) fn read_page<T>(
    platform: Platform,
    total: &serde_json::Value,
    list: &serde_json::Value,
    name: &str,
    read: impl Fn(&serde_json::Value) -> Result<T, MarketError>,
) -> Result<Page<T>, MarketError> {
    let total = int(total).unwrap_or(0).max(0) as u64;
    match list {
        serde_json::Value::Array(a) => Ok(read_each(a, total, read)),
        serde_json::Value::Null => Ok(read_each(&[], total, read)),
        _ => Err(shape(platform, format!("{name} is not a list"))),
    }
}

/// Reads each item of a page on its own: one the client cannot read is set aside with why.
pub(crate) fn read_each<'a, T>(
    list: impl IntoIterator<Item = &'a serde_json::Value>,
    total: u64,
    read: impl Fn(&serde_json::Value) -> Result<T, MarketError>,
) -> Page<T> {
    let mut page = Page {
        items: Vec::new(),
        unreadable: Vec::new(),
        total,
    };
    for (i, v) in list.into_iter().enumerate() {
        match read(v) {
            Ok(o) => page.items.push(o),
            Err(e) => page.unreadable.push((format!("#{}", i + 1), e.to_string())),
        }
    }
    page
}

/// A new access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub expires_at: i64,
}

pub use authorize::{Grant, authorize_url};

#[derive(Debug, thiserror::Error)]
pub enum MarketError {
    /// The platform's quota for the app or the shop is spent for now.
    #[error("{platform}: call limit reached ({code})")]
    RateLimited {
        platform: &'static str,
        code: String,
    },
    /// The access token expired or was revoked: refresh it (or the shop re-authorises).
    #[error("{platform}: access token expired or invalid ({code})")]
    TokenExpired {
        platform: &'static str,
        code: String,
    },
    /// The platform refused the call (parameters, signature, permission): retrying will not help.
    #[error("{platform} refused: {code}: {message}")]
    Refused {
        platform: &'static str,
        code: String,
        message: String,
    },
    /// Unreachable, or a server error: worth retrying.
    #[error("{platform} unavailable: {reason}")]
    Unavailable {
        platform: &'static str,
        reason: String,
    },
    /// The answer is not in the platform's documented shape.
    #[error("{platform}: unexpected answer: {reason}")]
    Shape {
        platform: &'static str,
        reason: String,
    },
}

impl MarketError {
    /// Whether waiting and asking again may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            MarketError::RateLimited { .. } | MarketError::Unavailable { .. }
        )
    }
}

/// The largest answer read: a page of 100 orders is well under a megabyte.
const MAX_ANSWER_BYTES: usize = 32 << 20;

/// A client for one shop on one platform.
#[derive(Debug, Clone)]
pub struct Client {
    pub platform: Platform,
    http: reqwest::Client,
    base: String,
    creds: Credentials,
}

impl Client {
    pub fn new(platform: Platform, creds: Credentials, api_base: Option<&str>) -> Client {
        // No redirects: a platform's API answers where it is asked, and a redirect would send the
        // signed call (and its token) elsewhere.
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Client {
            platform,
            http,
            base: api_base
                .unwrap_or(platform.default_base())
                .trim_end_matches('/')
                .to_owned(),
            creds,
        }
    }

    /// Uses new tokens from here on (a refresh token may be good for one use only).
    pub fn set_tokens(&mut self, access: String, refresh: Option<String>) {
        self.creds.access_token = Some(access);
        if refresh.is_some() {
            self.creds.refresh_token = refresh;
        }
    }

    /// The orders whose last modification falls in `[from, to)` (UTC ms), page `page` (from 1).
    pub async fn changed_orders(
        &self,
        from: i64,
        to: i64,
        page: u32,
        now: i64,
    ) -> Result<OrderPage, MarketError> {
        let size = self.platform.page_size();
        match self.platform {
            Platform::Tmall => {
                let form = top::orders_request(&self.creds, from, to, page, size, now);
                top::read_orders(&self.post_form(&self.base, &form).await?)
            }
            Platform::Jd => {
                let form = jd::orders_request(&self.creds, from, to, page, size, now);
                jd::read_orders(&self.post_form(&self.base, &form).await?)
            }
            Platform::Pdd => {
                let form = pdd::orders_request(&self.creds, from, to, page, size, now);
                pdd::read_orders(&self.post_form(&self.base, &form).await?)
            }
            Platform::Douyin => {
                let (path, query, body) =
                    douyin::orders_request(&self.creds, from, to, page, size, now);
                let url = format!("{}{path}", self.base);
                douyin::read_orders(&self.post_raw(&url, &query, body).await?)
            }
            Platform::Youzan => {
                let (path, query, body) = youzan::orders_request(&self.creds, from, to, page, size);
                let url = format!("{}{path}", self.base);
                youzan::read_orders(&self.post_json(&url, &query, &body).await?)
            }
        }
    }

    /// The after-sales cases changed in `[from, to)` (UTC ms), page `page` (from 1), where the
    /// platform's order API does not say what was refunded ([`Platform::after_sales_api`]).
    pub async fn changed_after_sales(
        &self,
        from: i64,
        to: i64,
        page: u32,
        now: i64,
    ) -> Result<AfterSalePage, MarketError> {
        let size = self.platform.after_sales_page_size();
        match self.platform {
            Platform::Pdd => {
                let form = pdd::after_sales_request(&self.creds, from, to, page, size, now);
                pdd::read_after_sales(&self.post_form(&self.base, &form).await?)
            }
            Platform::Jd => {
                let form = jd::after_sales_request(&self.creds, from, to, page, size, now);
                jd::read_after_sales(&self.post_form(&self.base, &form).await?)
            }
            Platform::Youzan => {
                let (path, query, body) =
                    youzan::after_sales_request(&self.creds, from, to, page, size);
                let url = format!("{}{path}", self.base);
                youzan::read_after_sales(&self.post_json(&url, &query, &body).await?)
            }
            // TOP's and Douyin's order answers carry each line's refund.
            Platform::Tmall | Platform::Douyin => Ok(Page {
                items: Vec::new(),
                unreadable: Vec::new(),
                total: 0,
            }),
        }
    }

    /// What the code a seller's authorisation sent back is worth: the shop's tokens, and who
    /// the shop is where the platform says. (None of these exchanges repeats the redirect_uri.)
    pub async fn exchange_code(&self, code: &str, now: i64) -> Result<Grant, MarketError> {
        match self.platform {
            Platform::Tmall => {
                let form = top::grant_request(&self.creds, code, now);
                top::read_grant(&self.post_form(&self.base, &form).await?, now)
            }
            Platform::Jd => {
                let (url, query) = jd::grant_request(&self.creds, code, &self.base);
                jd::read_grant(&self.get(&url, &query).await?, now)
            }
            Platform::Pdd => {
                let form = pdd::grant_request(&self.creds, code, now);
                pdd::read_grant(&self.post_form(&self.base, &form).await?, now)
            }
            Platform::Douyin => {
                let (path, query, body) = douyin::grant_request(&self.creds, code, now);
                let url = format!("{}{path}", self.base);
                douyin::read_grant(&self.post_raw(&url, &query, body).await?, now)
            }
            Platform::Youzan => Err(MarketError::Refused {
                platform: self.platform.as_str(),
                code: String::new(),
                message: authorize::AuthorizeError::NotByCode(self.platform.as_str()).to_string(),
            }),
        }
    }

    /// A new access token from the refresh token (Youzan: from the app's secret).
    pub async fn refresh_token(&self, now: i64) -> Result<Tokens, MarketError> {
        match self.platform {
            Platform::Tmall => {
                let form = top::refresh_request(&self.creds, now);
                top::read_tokens(&self.post_form(&self.base, &form).await?, now)
            }
            Platform::Jd => {
                let (url, query) = jd::refresh_request(&self.creds, &self.base);
                jd::read_tokens(&self.get(&url, &query).await?, now)
            }
            Platform::Pdd => {
                let form = pdd::refresh_request(&self.creds, now);
                pdd::read_tokens(&self.post_form(&self.base, &form).await?, now)
            }
            Platform::Douyin => {
                let (path, query, body) = douyin::refresh_request(&self.creds, now);
                let url = format!("{}{path}", self.base);
                douyin::read_tokens(&self.post_raw(&url, &query, body).await?, now)
            }
            Platform::Youzan => {
                let (path, body) = youzan::refresh_request(&self.creds);
                let url = format!("{}{path}", self.base);
                youzan::read_tokens(&self.post_json(&url, &[], &body).await?, now)
            }
        }
    }

    fn unavailable(&self, reason: impl std::fmt::Display) -> MarketError {
        MarketError::Unavailable {
            platform: self.platform.as_str(),
            reason: reason.to_string(),
        }
    }

    async fn read(
        &self,
        r: Result<reqwest::Response, reqwest::Error>,
    ) -> Result<serde_json::Value, MarketError> {
        // Errors without their URL: queries carry tokens and (JD's refresh) the app secret, and
        // an error is stored on the shop and shown.
        let mut r = r.map_err(|e| self.unavailable(e.without_url()))?;
        let status = r.status();
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(self.unavailable(format!("HTTP {status}")));
        }
        let mut body = Vec::new();
        while let Some(chunk) = r
            .chunk()
            .await
            .map_err(|e| self.unavailable(e.without_url()))?
        {
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(MarketError::Shape {
                    platform: self.platform.as_str(),
                    reason: format!("an answer over {} MiB", MAX_ANSWER_BYTES >> 20),
                });
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|e| MarketError::Shape {
            platform: self.platform.as_str(),
            reason: format!("HTTP {status}, not JSON ({e})"),
        })
    }

    async fn post_form(
        &self,
        url: &str,
        form: &[(String, String)],
    ) -> Result<serde_json::Value, MarketError> {
        self.read(self.http.post(url).form(form).send().await).await
    }

    async fn get(
        &self,
        url: &str,
        query: &[(String, String)],
    ) -> Result<serde_json::Value, MarketError> {
        self.read(self.http.get(url).query(query).send().await)
            .await
    }

    async fn post_raw(
        &self,
        url: &str,
        query: &[(String, String)],
        body: String,
    ) -> Result<serde_json::Value, MarketError> {
        let r = self
            .http
            .post(url)
            .query(query)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await;
        self.read(r).await
    }

    async fn post_json(
        &self,
        url: &str,
        query: &[(String, String)],
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, MarketError> {
        self.read(self.http.post(url).query(query).json(body).send().await)
            .await
    }
}

/// Yuan as platforms write it ("59.90", 59.9) to fen.
pub(crate) fn yuan_to_fen(v: &serde_json::Value) -> Option<Fen> {
    let text = match v {
        serde_json::Value::String(s) => s.trim().to_owned(),
        serde_json::Value::Number(n) => n.to_string(),
        _ => return None,
    };
    let (whole, frac) = text.split_once('.').unwrap_or((&text, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) || frac.len() > 2 {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let frac: i64 = format!("{frac:0<2}").parse().ok()?;
    whole.checked_mul(100)?.checked_add(frac).map(Fen::new)
}

/// Where a platform writes an order line's fields (prices in yuan).
pub(crate) struct LineKeys {
    /// The merchant's own code first, the platform's id second.
    pub sku: [&'static str; 2],
    pub title: &'static str,
    pub quantity: &'static str,
    pub price: &'static str,
}

/// A platform's order lines, priced in yuan, as Siyu's.
pub(crate) fn yuan_lines(items: &[serde_json::Value], k: &LineKeys) -> Vec<MarketLine> {
    items
        .iter()
        .map(|i| MarketLine {
            sku: text(&i[k.sku[0]]).or_else(|| text(&i[k.sku[1]])),
            title: text(&i[k.title]),
            quantity: int(&i[k.quantity]).unwrap_or(1),
            price: yuan_to_fen(&i[k.price]).unwrap_or(Fen::ZERO),
        })
        .collect()
}

/// A JSON value as text, whether the platform wrote a string or a number ("tid": 2231958349).
pub(crate) fn text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A whole number written as a number or a string.
pub(crate) fn int(v: &serde_json::Value) -> Option<i64> {
    match v {
        serde_json::Value::Number(n) => n.as_i64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

pub(crate) fn shape(platform: Platform, reason: impl Into<String>) -> MarketError {
    MarketError::Shape {
        platform: platform.as_str(),
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_and_times_as_platforms_write_them() {
        assert_eq!(
            yuan_to_fen(&serde_json::json!("59.90")),
            Some(Fen::new(5990))
        );
        assert_eq!(
            yuan_to_fen(&serde_json::json!("59.9")),
            Some(Fen::new(5990))
        );
        assert_eq!(yuan_to_fen(&serde_json::json!(12)), Some(Fen::new(1200)));
        assert_eq!(yuan_to_fen(&serde_json::json!("0.01")), Some(Fen::new(1)));
        assert_eq!(yuan_to_fen(&serde_json::json!("-1.00")), None);
        assert_eq!(yuan_to_fen(&serde_json::json!("1.234")), None);
        let ms = from_china_seconds_text("2024-06-01 10:00:00").expect("time");
        assert_eq!(ms, 1_717_207_200_000);
        assert_eq!(china_seconds_text(ms), "2024-06-01 10:00:00");
    }
}
