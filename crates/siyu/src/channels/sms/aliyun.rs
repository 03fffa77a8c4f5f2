//! Aliyun SMS (dysmsapi, API version 2017-05-25) over its RPC API. Every request is signed:
//! the parameters sorted by name and percent-encoded (RFC 3986), joined into
//! `METHOD&%2F&encode(query)`, and signed with HMAC-SHA1 keyed by `AccessKeySecret + "&"`.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use futures_util::future::BoxFuture;
use hmac::{Hmac, Mac};
use sha1::Sha1;

use super::{BatchResult, SmsError, SmsMessage, SmsProvider, percent_encode};

pub const ENDPOINT: &str = "https://dysmsapi.aliyuncs.com/";

#[derive(Debug, Clone)]
pub struct AliyunConfig {
    pub endpoint: String,
    pub access_key_id: String,
    pub access_key_secret: String,
    pub sign_name: String,
    pub rate_per_second: u32,
}

pub struct Aliyun {
    cfg: AliyunConfig,
    http: reqwest::Client,
}

/// `METHOD&%2F&encode(sorted, encoded k=v joined by &)`; `Signature` itself is left out.
pub fn string_to_sign(method: &str, params: &BTreeMap<String, String>) -> String {
    let query = params
        .iter()
        .filter(|(k, _)| k.as_str() != "Signature")
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    format!(
        "{method}&{}&{}",
        percent_encode("/"),
        percent_encode(&query)
    )
}

/// Base64 of HMAC-SHA1 over the string to sign, keyed by the secret followed by `&`.
pub fn signature(method: &str, params: &BTreeMap<String, String>, secret: &str) -> String {
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(format!("{secret}&").as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(string_to_sign(method, params).as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The timestamp format the API wants: ISO 8601 in UTC, seconds.
pub fn timestamp(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

impl Aliyun {
    pub fn new(cfg: AliyunConfig) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        Aliyun { cfg, http }
    }

    /// The signed parameters of one SendSms call.
    pub fn send_params(&self, m: &SmsMessage, now: i64, nonce: &str) -> BTreeMap<String, String> {
        let mut p = BTreeMap::new();
        let mut put = |k: &str, v: String| {
            p.insert(k.to_string(), v);
        };
        put("AccessKeyId", self.cfg.access_key_id.clone());
        put("Action", "SendSms".into());
        put("Format", "JSON".into());
        put("OutId", m.outbox_id.to_string());
        put("PhoneNumbers", m.phone.clone());
        put("RegionId", "cn-hangzhou".into());
        put("SignName", self.cfg.sign_name.clone());
        put("SignatureMethod", "HMAC-SHA1".into());
        put("SignatureNonce", nonce.to_string());
        put("SignatureVersion", "1.0".into());
        put("TemplateCode", m.template_code.clone().unwrap_or_default());
        let vars: serde_json::Map<String, serde_json::Value> = m
            .template_params
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        put("TemplateParam", serde_json::Value::Object(vars).to_string());
        put("Timestamp", timestamp(now));
        put("Version", "2017-05-25".into());
        let sig = signature("POST", &p, &self.cfg.access_key_secret);
        p.insert("Signature".into(), sig);
        p
    }

    async fn send_one(&self, m: &SmsMessage) -> Result<String, SmsError> {
        if m.template_code.is_none() {
            return Err(SmsError::Refused {
                provider: "aliyun",
                code: "MissingTemplateCode".into(),
                message: "Aliyun sends only approved templates: set the campaign's template_code"
                    .into(),
            });
        }
        let nonce = crate::platform::crypto::random_token(16);
        let params = self.send_params(m, crate::platform::clock::now_ms(), &nonce);
        let unavailable = |e: reqwest::Error| SmsError::Unavailable {
            provider: "aliyun",
            source: Box::new(e),
        };
        let resp = self
            .http
            .post(&self.cfg.endpoint)
            .form(&params)
            .send()
            .await
            .map_err(unavailable)?;
        let status = resp.status();
        let body: serde_json::Value = resp.json().await.map_err(unavailable)?;
        let code = body["Code"].as_str().unwrap_or("").to_string();
        if status.is_success() && code == "OK" {
            return Ok(body["BizId"].as_str().unwrap_or("").to_string());
        }
        let message = body["Message"].as_str().unwrap_or("").to_string();
        // Throttling and the gateway's own failures pass; a refusal (number, template,
        // signature, daily limit) will be refused again.
        if status.is_server_error() || code.starts_with("isp.") || code == "Throttling" {
            Err(SmsError::Unavailable {
                provider: "aliyun",
                source: format!("{code}: {message}").into(),
            })
        } else {
            Err(SmsError::Refused {
                provider: "aliyun",
                code,
                message,
            })
        }
    }
}

impl SmsProvider for Aliyun {
    fn name(&self) -> &'static str {
        "aliyun"
    }
    fn idempotent(&self) -> bool {
        false
    }
    fn rate_per_second(&self) -> u32 {
        self.cfg.rate_per_second
    }
    fn send<'a>(&'a self, batch: &'a [SmsMessage]) -> BoxFuture<'a, BatchResult> {
        Box::pin(async move {
            futures_util::future::join_all(batch.iter().map(|m| self.send_one(m))).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example in Aliyun's "HTTP协议及签名" (help.aliyun.com/document_detail/56189).
    fn documented_params() -> BTreeMap<String, String> {
        [
            ("AccessKeyId", "testId"),
            ("Action", "SendSms"),
            ("Format", "XML"),
            ("OutId", "123"),
            ("PhoneNumbers", "15300000001"),
            ("RegionId", "cn-hangzhou"),
            ("SignName", "阿里云短信测试专用"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", "45e25e9b-0a6f-4070-8c85-2956eda1b466"),
            ("SignatureVersion", "1.0"),
            ("TemplateCode", "SMS_71390007"),
            ("TemplateParam", r#"{"customer":"test"}"#),
            ("Timestamp", "2017-07-12T02:42:19Z"),
            ("Version", "2017-05-25"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    #[test]
    fn signature_matches_the_documented_example() {
        let p = documented_params();
        assert_eq!(
            string_to_sign("GET", &p),
            "GET&%2F&AccessKeyId%3DtestId%26Action%3DSendSms%26Format%3DXML%26OutId%3D123%26PhoneNumbers%3D15300000001%26RegionId%3Dcn-hangzhou%26SignName%3D%25E9%2598%25BF%25E9%2587%258C%25E4%25BA%2591%25E7%259F%25AD%25E4%25BF%25A1%25E6%25B5%258B%25E8%25AF%2595%25E4%25B8%2593%25E7%2594%25A8%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D45e25e9b-0a6f-4070-8c85-2956eda1b466%26SignatureVersion%3D1.0%26TemplateCode%3DSMS_71390007%26TemplateParam%3D%257B%2522customer%2522%253A%2522test%2522%257D%26Timestamp%3D2017-07-12T02%253A42%253A19Z%26Version%3D2017-05-25"
        );
        assert_eq!(
            signature("GET", &p, "testSecret"),
            "zJDF+Lrzhj/ThnlvIToysFRq6t4="
        );
        // The method, the secret's case and the trailing & all matter.
        assert_ne!(
            signature("POST", &p, "testSecret"),
            "zJDF+Lrzhj/ThnlvIToysFRq6t4="
        );
        assert_ne!(
            signature("GET", &p, "testsecret"),
            "zJDF+Lrzhj/ThnlvIToysFRq6t4="
        );
    }

    #[test]
    fn timestamps_are_utc_iso8601() {
        assert_eq!(timestamp(1_499_827_339_000), "2017-07-12T02:42:19Z");
    }
}
