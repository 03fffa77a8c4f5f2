//! What SMS providers post back, read as each provider writes it: delivery reports and customers'
//! replies. These bodies come from the internet (behind a token in the URL), so reading them
//! never panics, whatever the bytes: a report with an unreadable time is dated when it arrives,
//! a reply from something that is not a mainland number is skipped.

use crate::platform::clock::from_china_seconds_text;
use serde::Deserialize;

use crate::know::phone::Phone;

/// A delivery report: whether the message with the provider's id reached the phone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub provider_ref: String,
    pub delivered: bool,
    /// The provider's error code or text; empty when delivered.
    pub code: String,
    /// When the phone received it (UTC ms), if the provider said in a form we read.
    pub at: Option<i64>,
}

/// A customer's reply (an SMS sent back to the signature's number).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The normalised 11-digit number.
    pub phone: String,
    pub text: String,
    pub at: Option<i64>,
}

/// Aliyun's delivery report (`SmsReport`), one item of the array it posts.
#[derive(Debug, Deserialize)]
pub struct AliyunReport {
    biz_id: String,
    success: bool,
    #[serde(default)]
    err_code: String,
    #[serde(default)]
    report_time: String,
}

impl AliyunReport {
    pub fn receipt(self) -> Receipt {
        Receipt {
            at: from_china_seconds_text(&self.report_time),
            provider_ref: self.biz_id,
            delivered: self.success,
            code: self.err_code,
        }
    }
}

/// Aliyun's reply (`SmsUp`), one item of the array it posts.
#[derive(Debug, Deserialize)]
pub struct AliyunReply {
    phone_number: String,
    content: String,
    #[serde(default)]
    send_time: String,
}

impl AliyunReply {
    pub fn reply(self) -> Option<Reply> {
        Some(Reply {
            phone: Phone::parse(&self.phone_number).ok()?.as_str().to_owned(),
            text: self.content,
            at: from_china_seconds_text(&self.send_time),
        })
    }
}

/// Tencent's status report, one item of the array it posts.
#[derive(Debug, Deserialize)]
pub struct TencentReport {
    sid: String,
    report_status: String,
    #[serde(default)]
    errmsg: String,
    user_receive_time: Option<String>,
}

impl TencentReport {
    pub fn receipt(self) -> Receipt {
        Receipt {
            at: self
                .user_receive_time
                .as_deref()
                .and_then(from_china_seconds_text),
            provider_ref: self.sid,
            delivered: self.report_status == "SUCCESS",
            code: self.errmsg,
        }
    }
}

/// Tencent's reply: one object per post.
#[derive(Debug, Deserialize)]
pub struct TencentReply {
    mobile: String,
    text: String,
    /// Unix seconds.
    time: Option<i64>,
}

impl TencentReply {
    pub fn reply(self) -> Option<Reply> {
        Some(Reply {
            phone: Phone::parse(&self.mobile).ok()?.as_str().to_owned(),
            text: self.text,
            // A time past what milliseconds can hold is no time at all.
            at: self.time.and_then(|t| t.checked_mul(1000)),
        })
    }
}

/// Reads a provider's post whole: what the callback routes and the fuzz targets both call.
pub fn read(provider: &str, kind: &str, body: &[u8]) -> Result<Posted, serde_json::Error> {
    Ok(match (provider, kind) {
        ("aliyun", "report") => Posted::Receipts(
            serde_json::from_slice::<Vec<AliyunReport>>(body)?
                .into_iter()
                .map(AliyunReport::receipt)
                .collect(),
        ),
        ("aliyun", _) => Posted::Replies(
            serde_json::from_slice::<Vec<AliyunReply>>(body)?
                .into_iter()
                .filter_map(AliyunReply::reply)
                .collect(),
        ),
        (_, "report") => Posted::Receipts(
            serde_json::from_slice::<Vec<TencentReport>>(body)?
                .into_iter()
                .map(TencentReport::receipt)
                .collect(),
        ),
        _ => Posted::Replies(
            serde_json::from_slice::<TencentReply>(body)?
                .reply()
                .into_iter()
                .collect(),
        ),
    })
}

/// What one post held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Posted {
    Receipts(Vec<Receipt>),
    Replies(Vec<Reply>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_time_too_large_for_milliseconds_is_no_time() {
        let body = br#"{"mobile": "13800138000", "text": "TD", "time": 9223372036854775807}"#;
        let Ok(Posted::Replies(r)) = read("tencent", "reply", body) else {
            panic!("read")
        };
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].at, None);
        assert_eq!(r[0].phone, "13800138000");
    }

    #[test]
    fn each_provider_is_read_as_it_writes() {
        let aliyun = br#"[{"phone_number":"13800138000","success":true,"biz_id":"932702304080415357^0","err_code":"DELIVERED","report_time":"2017-08-30 00:00:01"},
                         {"biz_id":"2","success":false,"err_code":"MK:0001","report_time":"not a time"}]"#;
        let Ok(Posted::Receipts(r)) = read("aliyun", "report", aliyun) else {
            panic!("read")
        };
        assert_eq!(r.len(), 2);
        assert!(r[0].delivered);
        assert_eq!(r[0].at, Some(1_504_022_401_000));
        assert_eq!((r[1].delivered, r[1].at), (false, None));
        let replies = br#"[{"phone_number":"+86 138 0013 8000","content":"TD","send_time":"2017-08-30 00:00:01"},
                          {"phone_number":"12345","content":"x"}]"#;
        let Ok(Posted::Replies(r)) = read("aliyun", "reply", replies) else {
            panic!("read")
        };
        assert_eq!(r.len(), 1, "a number that is not a phone is skipped");
        let tencent = br#"[{"sid":"x","report_status":"FAIL","errmsg":"DELIVRD","user_receive_time":"2017-08-30 00:00:01"}]"#;
        let Ok(Posted::Receipts(r)) = read("tencent", "report", tencent) else {
            panic!("read")
        };
        assert_eq!(
            r[0],
            Receipt {
                provider_ref: "x".into(),
                delivered: false,
                code: "DELIVRD".into(),
                at: Some(1_504_022_401_000)
            }
        );
        assert!(read("tencent", "report", b"{").is_err());
    }
}
