//! SMS providers behind one trait: Aliyun (RPC API, HMAC-SHA1 signature), Tencent Cloud
//! (TC3-HMAC-SHA256) and `log`, the default, which records messages instead of sending them.
//! Also the trade's rules for SMS text: billable parts, the signature, the opt-out line.

use crate::platform::TenantId;
pub mod aliyun;
pub mod callbacks;
pub mod log;
pub mod tencent;

use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde::Deserialize;

/// One message as a provider sends it.
#[derive(Debug, Clone)]
pub struct SmsMessage {
    /// The outbox row: the idempotency key, and the `OutId`/`SessionContext` that comes back
    /// with the delivery receipt.
    pub outbox_id: i64,
    pub tenant_id: TenantId,
    /// 11-digit mainland number.
    pub phone: String,
    /// The text the customer reads (what `log` records and what parts are counted on).
    pub content: String,
    /// The provider's approved template, for providers that only send templates.
    pub template_code: Option<String>,
    /// Template variables in their order of appearance: name → value.
    pub template_params: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum SmsError {
    /// The provider refused this message (bad number, template, limit); retrying will not help.
    #[error("{provider} refused: {code}: {message}")]
    Refused {
        provider: &'static str,
        code: String,
        message: String,
    },
    /// The provider could not be reached or answered with a server error; worth retrying.
    #[error("{provider} unavailable: {source}")]
    Unavailable {
        provider: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("{0}")]
    Config(String),
    #[error("log provider: {0}")]
    Db(#[from] crate::platform::db::DbError),
}

impl SmsError {
    pub fn retryable(&self) -> bool {
        matches!(self, SmsError::Unavailable { .. } | SmsError::Db(_))
    }
}

/// A provider accepted (or refused) each message of a batch, in order.
pub type BatchResult = Vec<Result<String, SmsError>>;

pub trait SmsProvider: Send + Sync {
    fn name(&self) -> &'static str;
    /// Whether sending the same outbox message twice delivers it once. The outbox re-sends a
    /// message interrupted mid-send only to a provider that says so; otherwise the message is
    /// marked `unknown` rather than risk a duplicate SMS.
    fn idempotent(&self) -> bool;
    /// Most messages per second the provider account allows; the outbox keeps under it.
    fn rate_per_second(&self) -> u32;
    /// Sends a batch; one result per message, the provider's reference on success.
    fn send<'a>(&'a self, batch: &'a [SmsMessage]) -> BoxFuture<'a, BatchResult>;
    /// Whether sending is a write to the outbox's own database (`log`): then the outbox sends
    /// with [`SmsProvider::send_in`], inside the transaction that records the outcomes, so the
    /// two commit together and the writer is taken once per batch, not twice.
    fn writes_to_database(&self) -> bool {
        false
    }
    /// [`SmsProvider::send`] inside the outbox's transaction, for a provider that
    /// [writes to the database](SmsProvider::writes_to_database); the others send as usual.
    fn send_in<'a>(
        &'a self,
        _tx: &'a mut crate::platform::db::Tx,
        batch: &'a [SmsMessage],
    ) -> BoxFuture<'a, Result<BatchResult, crate::platform::db::DbError>> {
        Box::pin(async move { Ok(self.send(batch).await) })
    }
}

/// `[sms]` in `siyu.toml` (or `SIYU_SMS__PROVIDER=aliyun` …).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default)]
pub struct SmsSettings {
    /// `log` (the default), `aliyun` or `tencent`.
    pub provider: Option<String>,
    /// Custom endpoint (a test fake, a proxy); defaults to the provider's public endpoint.
    pub endpoint: Option<String>,
    pub access_key_id: Option<String>,
    pub access_key_secret: Option<String>,
    /// The registered 【signature】 name.
    pub sign_name: Option<String>,
    /// Tencent's SmsSdkAppId.
    pub app_id: Option<String>,
    /// Tencent's region (default ap-guangzhou).
    pub region: Option<String>,
    /// Messages per second to stay under (default: Aliyun 100, Tencent 100, log unlimited).
    pub rate_per_second: Option<u32>,
    /// Token in the callback URLs the provider pushes receipts and replies to.
    pub callback_token: Option<String>,
    /// The approved template for one-time codes (one variable, `code`); `log` needs none.
    pub otp_template: Option<String>,
    /// One-time codes one number may receive in a day (default 5).
    pub otp_per_phone_day: Option<i64>,
    /// Numbers one package card may send codes to (default 3).
    pub otp_numbers_per_card: Option<i64>,
    /// Codes asked from one address in an hour (default 10).
    pub otp_per_address_hour: Option<i64>,
    /// Codes one tenant sends in a day (default 2,000).
    pub otp_per_tenant_day: Option<i64>,
    /// Codes every tenant together sends in an hour (default 10,000); reaching it logs an alert.
    pub otp_global_per_hour: Option<i64>,
    /// Zero bits of the proof of work a public page solves before a code is sent (default 16).
    pub otp_work_bits: Option<u32>,
}

impl SmsSettings {
    /// The configured provider; `log` writes into the database given.
    pub fn provider(&self, db: &crate::platform::db::Db) -> Result<Arc<dyn SmsProvider>, SmsError> {
        let need = |v: &Option<String>, what: &str| {
            v.clone().ok_or_else(|| {
                SmsError::Config(format!("sms.{what} is required for this provider"))
            })
        };
        match self.provider.as_deref().unwrap_or("log") {
            "log" => Ok(Arc::new(log::LogProvider::new(db.clone()))),
            "aliyun" => Ok(Arc::new(aliyun::Aliyun::new(aliyun::AliyunConfig {
                endpoint: self
                    .endpoint
                    .clone()
                    .unwrap_or_else(|| aliyun::ENDPOINT.into()),
                access_key_id: need(&self.access_key_id, "access_key_id")?,
                access_key_secret: need(&self.access_key_secret, "access_key_secret")?,
                sign_name: need(&self.sign_name, "sign_name")?,
                rate_per_second: self.rate_per_second.unwrap_or(100),
            }))),
            "tencent" => Ok(Arc::new(tencent::Tencent::new(tencent::TencentConfig {
                endpoint: self
                    .endpoint
                    .clone()
                    .unwrap_or_else(|| tencent::ENDPOINT.into()),
                secret_id: need(&self.access_key_id, "access_key_id")?,
                secret_key: need(&self.access_key_secret, "access_key_secret")?,
                sign_name: need(&self.sign_name, "sign_name")?,
                app_id: need(&self.app_id, "app_id")?,
                region: self.region.clone().unwrap_or_else(|| "ap-guangzhou".into()),
                rate_per_second: self.rate_per_second.unwrap_or(100),
            }))),
            other => Err(SmsError::Config(format!(
                "sms.provider {other:?} is not one of log, aliyun, tencent"
            ))),
        }
    }
}

/// Billable parts: up to 70 characters is one SMS; longer text is split into parts of 67
/// (each part carries a header). Characters, not bytes: 【】 and Chinese count one each.
pub fn billable_parts(content: &str) -> i64 {
    let n = content.chars().count() as i64;
    if n <= 70 { 1 } else { (n + 66) / 67 }
}

/// Whether a reply asks to stop messages: R, TD, T, 退订 or 取消订阅 (any case, surrounding spaces and
/// punctuation ignored), as carriers and providers treat them.
pub fn is_unsubscribe_reply(text: &str) -> bool {
    let t: String = text
        .trim()
        .trim_matches(|c: char| c.is_ascii_punctuation() || "。！，".contains(c))
        .to_uppercase();
    matches!(t.as_str(), "R" | "TD" | "T" | "退订" | "取消订阅")
}

/// RFC 3986 percent-encoding of every byte outside `A-Z a-z 0-9 - _ . ~`, upper-case hex, as
/// both providers' signatures need (space is `%20`, `*` is `%2A`, `~` stays).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_follow_the_70_and_67_rule() {
        assert_eq!(billable_parts(""), 1);
        assert_eq!(billable_parts(&"字".repeat(70)), 1);
        assert_eq!(billable_parts(&"字".repeat(71)), 2);
        assert_eq!(billable_parts(&"字".repeat(134)), 2);
        assert_eq!(billable_parts(&"字".repeat(135)), 3);
        assert_eq!(billable_parts(&"a".repeat(70)), 1);
    }

    #[test]
    fn unsubscribe_replies_are_recognised() {
        for t in ["R", "r", " TD ", "td", "退订", "退订。", "T"] {
            assert!(is_unsubscribe_reply(t), "{t}");
        }
        for t in ["好的", "RR", "收到", "退订吗怎么"] {
            assert!(!is_unsubscribe_reply(t), "{t}");
        }
    }

    #[test]
    fn percent_encoding_follows_rfc3986() {
        assert_eq!(percent_encode("a b*~+/:\""), "a%20b%2A~%2B%2F%3A%22");
        assert_eq!(percent_encode("é"), "%C3%A9");
    }
}
