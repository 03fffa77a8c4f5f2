//! The WeCom server API (`/cgi-bin/...`): the access token cached and refreshed, retries with
//! backoff, and token buckets that keep calls under WeCom's frequency limits. The base URL is configurable, so tests,
//! the demo and the benchmark run against the local sandbox (`connect::sandbox`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};
use tokio::sync::Mutex;

pub const WECOM_BASE_URL: &str = "https://qyapi.weixin.qq.com";

/// Calls that create something in WeCom: after a transport failure the call may have worked,
/// so it is not repeated (a second task or contact way would be made).
const CREATING: [&str; 3] = [
    "/cgi-bin/externalcontact/add_msg_template",
    "/cgi-bin/externalcontact/add_contact_way",
    "/cgi-bin/externalcontact/add_corp_tag",
];
/// WeCom's limits on one mass-message task.
pub const MAX_TASK_CONTACTS: usize = 10_000;
pub const MAX_TASK_CHATS: usize = 2_000;
/// Error codes that mean "get a new access token and try again".
const TOKEN_ERRORS: [i64; 3] = [40001, 40014, 42001];
/// "System busy" and the frequency limits: wait and try again.
const BUSY_ERRORS: [i64; 4] = [-1, 45009, 45033, 45035];
const ATTEMPTS: u32 = 4;

#[derive(Debug, thiserror::Error)]
pub enum WecomError {
    #[error("WeCom {path}: errcode {errcode}: {errmsg}")]
    Api {
        path: String,
        errcode: i64,
        errmsg: String,
    },
    #[error("WeCom {path}: {reason}")]
    Transport { path: String, reason: String },
    #[error("WeCom {path}: unexpected answer: {reason}")]
    Answer { path: String, reason: String },
}

impl WecomError {
    pub fn errcode(&self) -> Option<i64> {
        match self {
            WecomError::Api { errcode, .. } => Some(*errcode),
            _ => None,
        }
    }
}

/// What a message (welcome, mass message, SOP post) carries: text and up to 9 attachments in
/// WeCom's own shape (`{"msgtype":"image","image":{...}}`, `link`, `miniprogram`, `video`, `file`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Content {
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub attachments: Vec<Json>,
}

impl Content {
    /// Checks what WeCom would refuse, naming the field.
    pub fn check(&self, field: &str) -> Result<(), String> {
        if self.text.trim().is_empty() && self.attachments.is_empty() {
            return Err(format!("{field}: needs text or an attachment"));
        }
        if self.text.len() > 4000 {
            return Err(format!("{field}.text: longer than WeCom's 4000 bytes"));
        }
        if self.attachments.len() > 9 {
            return Err(format!("{field}.attachments: at most 9"));
        }
        for (i, a) in self.attachments.iter().enumerate() {
            let kind = a.get("msgtype").and_then(Json::as_str).unwrap_or("");
            if !["image", "link", "miniprogram", "video", "file"].contains(&kind) {
                return Err(format!(
                    "{field}.attachments[{i}].msgtype: {kind:?} is not image, link, miniprogram, video or file"
                ));
            }
            if a.get(kind).is_none_or(|v| !v.is_object()) {
                return Err(format!(
                    "{field}.attachments[{i}].{kind}: missing the {kind} object"
                ));
            }
        }
        Ok(())
    }

    fn body(&self) -> Json {
        let mut b = json!({});
        if !self.text.is_empty() {
            b["text"] = json!({"content": self.text});
        }
        if !self.attachments.is_empty() {
            b["attachments"] = json!(self.attachments);
        }
        b
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct FollowUser {
    pub userid: String,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub createtime: i64,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct ExternalContact {
    pub external_userid: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub unionid: Option<String>,
    #[serde(default)]
    pub follow_user: Vec<FollowUser>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct ChatMember {
    pub userid: String,
    /// 1 an employee, 2 an external contact.
    #[serde(rename = "type")]
    pub member_type: i64,
    pub join_time: i64,
    #[serde(default)]
    pub join_scene: i64,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct GroupChat {
    pub chat_id: String,
    #[serde(default)]
    pub name: String,
    pub owner: String,
    pub create_time: i64,
    #[serde(default)]
    pub member_list: Vec<ChatMember>,
}

/// One recipient's state of a mass message (`get_groupmsg_send_result`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct SendResult {
    #[serde(default)]
    pub external_userid: Option<String>,
    #[serde(default)]
    pub chat_id: Option<String>,
    pub userid: String,
    /// 0 not sent, 1 sent, 2 not a contact any more, 3 the customer's limit was reached.
    pub status: i64,
    #[serde(default)]
    pub send_time: Option<i64>,
}

/// A corp's API client. One per tenant; cheap to share.
pub struct WecomApi {
    http: reqwest::Client,
    base: String,
    corp_id: String,
    secret: String,
    token: Mutex<Option<(String, Instant)>>,
    /// WeCom counts calls per minute: per API (10,000 a minute per corp) and in all (20,000 a
    /// minute per IP). Buckets sized below those let a burst through at once and then pace.
    per_api: std::sync::Mutex<HashMap<String, Bucket>>,
    all: std::sync::Mutex<Bucket>,
    per_api_per_minute: f64,
}

/// A token bucket: `cap` tokens, refilled at `cap` per minute.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    cap: f64,
    at: Instant,
}

impl Bucket {
    fn new(per_minute: f64) -> Bucket {
        Bucket {
            tokens: per_minute,
            cap: per_minute,
            at: Instant::now(),
        }
    }

    /// Takes a token now, or says how long until one is free (and reserves it).
    fn take(&mut self, now: Instant) -> Duration {
        let per_sec = self.cap / 60.0;
        self.tokens =
            (self.tokens + now.duration_since(self.at).as_secs_f64() * per_sec).min(self.cap);
        self.at = now;
        self.tokens -= 1.0;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / per_sec)
        }
    }
}

impl std::fmt::Debug for WecomApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WecomApi")
            .field("base", &self.base)
            .field("corp_id", &self.corp_id)
            .finish_non_exhaustive()
    }
}

impl WecomApi {
    /// `per_api_per_minute`: calls allowed to one API in a minute (WeCom: 10,000 per corp; Siyu
    /// uses 8,000 and twice that in all, leaving room for other systems of the corp).
    pub fn new(
        http: reqwest::Client,
        base: &str,
        corp_id: &str,
        secret: &str,
        per_api_per_minute: u32,
    ) -> WecomApi {
        let per_api_per_minute = f64::from(per_api_per_minute.max(1));
        WecomApi {
            http,
            base: base.trim_end_matches('/').to_owned(),
            corp_id: corp_id.to_owned(),
            secret: secret.to_owned(),
            token: Mutex::new(None),
            per_api: std::sync::Mutex::new(HashMap::new()),
            all: std::sync::Mutex::new(Bucket::new(2.0 * per_api_per_minute)),
            per_api_per_minute,
        }
    }

    pub fn corp_id(&self) -> &str {
        &self.corp_id
    }

    /// Asks WeCom for a new access token with the corp id and secret: whether they are right and
    /// WeCom answers (the console's "test the connection"). The cached token is dropped first, so
    /// the answer is WeCom's of now.
    pub async fn check(&self) -> Result<(), WecomError> {
        self.token(true).await.map(|_| ())
    }

    async fn access_token(&self) -> Result<String, WecomError> {
        self.token(false).await
    }

    /// The cached token, or a new one; `fresh` asks WeCom whatever is cached (under the one
    /// lock, so a concurrent caller cannot hand back the old one in between).
    async fn token(&self, fresh: bool) -> Result<String, WecomError> {
        let mut t = self.token.lock().await;
        if !fresh
            && let Some((tok, until)) = t.as_ref()
            && Instant::now() < *until
        {
            return Ok(tok.clone());
        }
        let path = "/cgi-bin/gettoken";
        let url = format!("{}{path}", self.base);
        let mut last = None;
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(backoff(attempt)).await;
            }
            let answer = self
                .http
                .get(&url)
                .query(&[("corpid", &self.corp_id), ("corpsecret", &self.secret)])
                .send()
                .await;
            let v = match read(path, answer).await {
                Ok(v) => v,
                Err(e) => {
                    last = Some(e);
                    continue;
                }
            };
            match errcode(&v) {
                0 => {
                    let tok = v["access_token"]
                        .as_str()
                        .ok_or_else(|| WecomError::Answer {
                            path: path.into(),
                            reason: "no access_token".into(),
                        })?
                        .to_owned();
                    let ttl = v["expires_in"].as_i64().unwrap_or(7200).max(60) as u64;
                    // Refresh five minutes early (or at half-life for short tokens).
                    let keep = Duration::from_secs(ttl.saturating_sub(300).max(ttl / 2));
                    *t = Some((tok.clone(), Instant::now() + keep));
                    return Ok(tok);
                }
                c if BUSY_ERRORS.contains(&c) => last = Some(api_err(path, &v)),
                _ => return Err(api_err(path, &v)),
            }
        }
        Err(last.unwrap_or_else(|| WecomError::Transport {
            path: path.into(),
            reason: "no attempt made".into(),
        }))
    }

    async fn forget_token(&self, used: &str) {
        let mut t = self.token.lock().await;
        if t.as_ref().is_some_and(|(tok, _)| tok == used) {
            *t = None;
        }
    }

    async fn wait_turn(&self, path: &str) {
        let now = Instant::now();
        let wait = {
            let mut apis = self.per_api.lock().unwrap_or_else(|p| p.into_inner());
            let api = apis
                .entry(path.to_owned())
                .or_insert_with(|| Bucket::new(self.per_api_per_minute))
                .take(now);
            let all = self.all.lock().unwrap_or_else(|p| p.into_inner()).take(now);
            api.max(all)
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// Calls `path` with the access token: POST with `body`, or GET with `query` when `body` is
    /// None. Retries transport failures and busy answers with backoff; on an expired or invalid
    /// token fetches a new one and tries again.
    pub async fn call(
        &self,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Json>,
    ) -> Result<Json, WecomError> {
        let url = format!("{}{path}", self.base);
        let mut last = None;
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(backoff(attempt)).await;
            }
            let token = self.access_token().await?;
            self.wait_turn(path).await;
            let mut q: Vec<(&str, &str)> = vec![("access_token", token.as_str())];
            q.extend_from_slice(query);
            let req = match body {
                Some(b) => self.http.post(&url).query(&q).json(b),
                None => self.http.get(&url).query(&q),
            };
            let v = match read(path, req.send().await).await {
                Ok(v) => v,
                Err(e) if CREATING.contains(&path) => return Err(e),
                Err(e) => {
                    last = Some(e);
                    continue;
                }
            };
            match errcode(&v) {
                0 => return Ok(v),
                c if TOKEN_ERRORS.contains(&c) => {
                    self.forget_token(&token).await;
                    last = Some(api_err(path, &v));
                }
                c if BUSY_ERRORS.contains(&c) => last = Some(api_err(path, &v)),
                _ => return Err(api_err(path, &v)),
            }
        }
        Err(last.unwrap_or_else(|| WecomError::Transport {
            path: path.into(),
            reason: "no attempt made".into(),
        }))
    }

    async fn post(&self, path: &str, body: Json) -> Result<Json, WecomError> {
        self.call(path, &[], Some(&body)).await
    }

    pub async fn get_external_contact(
        &self,
        external_userid: &str,
    ) -> Result<ExternalContact, WecomError> {
        let path = "/cgi-bin/externalcontact/get";
        let v = self
            .call(path, &[("external_userid", external_userid)], None)
            .await?;
        let mut c: ExternalContact = decode(path, v["external_contact"].clone())?;
        c.follow_user = decode(path, v["follow_user"].clone()).unwrap_or_default();
        Ok(c)
    }

    /// One page of a guide's contacts with details (`batch/get_by_user`).
    pub async fn batch_get_by_user(
        &self,
        userids: &[String],
        cursor: &str,
        limit: u32,
    ) -> Result<Json, WecomError> {
        self.post(
            "/cgi-bin/externalcontact/batch/get_by_user",
            json!({"userid_list": userids, "cursor": cursor, "limit": limit.min(100)}),
        )
        .await
    }

    /// The external_userids a guide holds.
    pub async fn list_external_contacts(&self, userid: &str) -> Result<Vec<String>, WecomError> {
        let path = "/cgi-bin/externalcontact/list";
        let v = self.call(path, &[("userid", userid)], None).await?;
        decode(path, v["external_userid"].clone())
    }

    /// Creates a "contact me" QR for several guides; returns (config_id, qr_code URL).
    pub async fn add_contact_way(
        &self,
        state: &str,
        users: &[String],
        remark: &str,
    ) -> Result<(String, String), WecomError> {
        let path = "/cgi-bin/externalcontact/add_contact_way";
        let v = self
            .post(
                path,
                // WeCom takes a remark of at most 30 characters.
                json!({"type": 2, "scene": 2, "remark": remark.chars().take(30).collect::<String>(), "skip_verify": true, "state": state, "user": users}),
            )
            .await?;
        let config_id = str_field(path, &v, "config_id")?;
        let qr = str_field(path, &v, "qr_code")?;
        Ok((config_id, qr))
    }

    pub async fn update_contact_way(
        &self,
        config_id: &str,
        state: &str,
        users: &[String],
    ) -> Result<(), WecomError> {
        self.post(
            "/cgi-bin/externalcontact/update_contact_way",
            json!({"config_id": config_id, "state": state, "skip_verify": true, "user": users}),
        )
        .await
        .map(drop)
    }

    /// The API's base address (WeCom's own, or a sandbox's).
    pub fn base(&self) -> &str {
        &self.base
    }

    pub async fn del_contact_way(&self, config_id: &str) -> Result<(), WecomError> {
        self.post(
            "/cgi-bin/externalcontact/del_contact_way",
            json!({"config_id": config_id}),
        )
        .await
        .map(drop)
    }

    pub async fn send_welcome_msg(
        &self,
        welcome_code: &str,
        content: &Content,
    ) -> Result<(), WecomError> {
        let mut body = content.body();
        body["welcome_code"] = json!(welcome_code);
        self.post("/cgi-bin/externalcontact/send_welcome_msg", body)
            .await
            .map(drop)
    }

    pub async fn mark_tag(
        &self,
        userid: &str,
        external_userid: &str,
        add: &[String],
        remove: &[String],
    ) -> Result<(), WecomError> {
        self.post(
            "/cgi-bin/externalcontact/mark_tag",
            json!({"userid": userid, "external_userid": external_userid, "add_tag": add, "remove_tag": remove}),
        )
        .await
        .map(drop)
    }

    pub async fn get_corp_tag_list(&self) -> Result<Json, WecomError> {
        self.post("/cgi-bin/externalcontact/get_corp_tag_list", json!({}))
            .await
    }

    /// Adds a corp tag in a group; returns the tag's WeCom id.
    pub async fn add_corp_tag(&self, group: &str, tag: &str) -> Result<String, WecomError> {
        let path = "/cgi-bin/externalcontact/add_corp_tag";
        let v = self
            .post(path, json!({"group_name": group, "tag": [{"name": tag}]}))
            .await?;
        v["tag_group"]["tag"][0]["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| WecomError::Answer {
                path: path.into(),
                reason: "no tag_group.tag[0].id".into(),
            })
    }

    /// Every item of a cursor-paged list: `body` is sent with `cursor` set on each page, and
    /// the items of `field` are collected until `next_cursor` is empty.
    async fn all_pages(
        &self,
        path: &str,
        mut body: Json,
        field: &str,
    ) -> Result<Vec<Json>, WecomError> {
        let mut out = Vec::new();
        loop {
            let v = self.post(path, body.clone()).await?;
            out.extend(v[field].as_array().cloned().unwrap_or_default());
            match v["next_cursor"].as_str() {
                Some(c) if !c.is_empty() => body["cursor"] = json!(c),
                _ => return Ok(out),
            }
        }
    }

    /// Every customer group's chat_id (all pages).
    pub async fn groupchat_list(&self) -> Result<Vec<String>, WecomError> {
        let list = self
            .all_pages(
                "/cgi-bin/externalcontact/groupchat/list",
                json!({"status_filter": 0, "cursor": "", "limit": 1000}),
                "group_chat_list",
            )
            .await?;
        Ok(list
            .iter()
            .filter_map(|g| g["chat_id"].as_str().map(str::to_owned))
            .collect())
    }

    pub async fn groupchat_get(&self, chat_id: &str) -> Result<GroupChat, WecomError> {
        let path = "/cgi-bin/externalcontact/groupchat/get";
        let v = self
            .post(path, json!({"chat_id": chat_id, "need_name": 0}))
            .await?;
        decode(path, v["group_chat"].clone())
    }

    /// Creates a mass-message task for a guide (`chat_type` single: to `external_userids`;
    /// group: to the guide's groups in `chat_ids`); returns the msgid. WeCom reports
    /// recipients it refused in `fail_list`; they are returned too.
    pub async fn add_msg_template(
        &self,
        chat_type: &str,
        sender: &str,
        external_userids: &[String],
        chat_ids: &[String],
        content: &Content,
    ) -> Result<(String, Vec<String>), WecomError> {
        let path = "/cgi-bin/externalcontact/add_msg_template";
        // WeCom reads a task without a list as "all of this guide's customers (or groups)":
        // never send one.
        let (list, field, max) = match chat_type {
            "group" => (chat_ids, "chat_id_list", MAX_TASK_CHATS),
            _ => (external_userids, "external_userid", MAX_TASK_CONTACTS),
        };
        if list.is_empty() || list.len() > max {
            return Err(WecomError::Answer {
                path: path.into(),
                reason: format!("{field} must hold 1 … {max} entries, not {}", list.len()),
            });
        }
        let mut body = content.body();
        body["chat_type"] = json!(chat_type);
        body["sender"] = json!(sender);
        body[field] = json!(list);
        let v = self.post(path, body).await?;
        let msgid = str_field(path, &v, "msgid")?;
        let failed = decode(path, v["fail_list"].clone()).unwrap_or_default();
        Ok((msgid, failed))
    }

    pub async fn remind_groupmsg_send(&self, msgid: &str) -> Result<(), WecomError> {
        self.post(
            "/cgi-bin/externalcontact/remind_groupmsg_send",
            json!({"msgid": msgid}),
        )
        .await
        .map(drop)
    }

    pub async fn get_groupmsg_list_v2(
        &self,
        chat_type: &str,
        start_time: i64,
        end_time: i64,
    ) -> Result<Json, WecomError> {
        self.post(
            "/cgi-bin/externalcontact/get_groupmsg_list_v2",
            json!({"chat_type": chat_type, "start_time": start_time, "end_time": end_time, "limit": 100}),
        )
        .await
    }

    /// msgids of the mass-message tasks the corp's API created for `creator` between two times
    /// (seconds): how a task whose creation answer was lost is found again.
    pub async fn groupmsg_ids_since(
        &self,
        chat_type: &str,
        creator: &str,
        start_time: i64,
        end_time: i64,
    ) -> Result<Vec<String>, WecomError> {
        let list = self
            .all_pages(
                "/cgi-bin/externalcontact/get_groupmsg_list_v2",
                json!({"chat_type": chat_type, "start_time": start_time, "end_time": end_time,
                       "creator": creator, "filter_type": 0, "limit": 100, "cursor": ""}),
                "group_msg_list",
            )
            .await?;
        Ok(list
            .iter()
            .filter_map(|m| m["msgid"].as_str().map(str::to_owned))
            .collect())
    }

    /// Every recipient's state of a guide's part of a mass message (all pages).
    pub async fn get_groupmsg_send_result(
        &self,
        msgid: &str,
        userid: &str,
    ) -> Result<Vec<SendResult>, WecomError> {
        let path = "/cgi-bin/externalcontact/get_groupmsg_send_result";
        let list = self
            .all_pages(
                path,
                json!({"msgid": msgid, "userid": userid, "limit": 1000, "cursor": ""}),
                "send_list",
            )
            .await?;
        decode(path, Json::Array(list))
    }
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100 * 2u64.pow(attempt.min(6)))
}

fn errcode(v: &Json) -> i64 {
    v["errcode"].as_i64().unwrap_or(0)
}

fn api_err(path: &str, v: &Json) -> WecomError {
    WecomError::Api {
        path: path.into(),
        errcode: errcode(v),
        errmsg: v["errmsg"].as_str().unwrap_or("").to_owned(),
    }
}

fn str_field(path: &str, v: &Json, f: &str) -> Result<String, WecomError> {
    v[f].as_str()
        .map(str::to_owned)
        .ok_or_else(|| WecomError::Answer {
            path: path.into(),
            reason: format!("no {f}"),
        })
}

fn decode<T: serde::de::DeserializeOwned>(path: &str, v: Json) -> Result<T, WecomError> {
    serde_json::from_value(v).map_err(|e| WecomError::Answer {
        path: path.into(),
        reason: e.to_string(),
    })
}

async fn read(
    path: &str,
    answer: Result<reqwest::Response, reqwest::Error>,
) -> Result<Json, WecomError> {
    let transport = |reason: String| WecomError::Transport {
        path: path.into(),
        reason,
    };
    // Without the URL: it carries the access token (and, for gettoken, the secret).
    let r = answer.map_err(|e| transport(e.without_url().to_string()))?;
    if !r.status().is_success() {
        return Err(transport(format!("HTTP {}", r.status())));
    }
    r.json::<Json>()
        .await
        .map_err(|e| transport(format!("body: {}", e.without_url())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_let_a_burst_through_then_pace() {
        let t0 = Instant::now();
        let mut b = Bucket::new(600.0); // 10 a second
        for _ in 0..600 {
            assert_eq!(b.take(t0), Duration::ZERO);
        }
        let wait = b.take(t0);
        assert!((wait.as_secs_f64() - 0.1).abs() < 1e-9, "{wait:?}");
        // A second later ten more are free (the one reserved above among them).
        let later = t0 + Duration::from_secs(1);
        for _ in 0..9 {
            assert_eq!(b.take(later), Duration::ZERO);
        }
        assert!(b.take(later) > Duration::ZERO);
    }

    #[test]
    fn content_checks_name_the_field() {
        let c = Content::default();
        assert_eq!(
            c.check("welcome"),
            Err("welcome: needs text or an attachment".into())
        );
        let c = Content {
            text: "hi".into(),
            attachments: vec![json!({"msgtype": "sticker"})],
        };
        assert!(
            c.check("welcome")
                .expect_err("a sticker is not an attachment type")
                .starts_with("welcome.attachments[0].msgtype")
        );
        let c = Content {
            text: "hi".into(),
            attachments: vec![
                json!({"msgtype": "miniprogram", "miniprogram": {"title": "t", "appid": "wx1", "page": "p", "pic_media_id": "m"}}),
            ],
        };
        assert_eq!(c.check("welcome"), Ok(()));
        assert_eq!(c.body()["attachments"][0]["msgtype"], "miniprogram");
    }
}
