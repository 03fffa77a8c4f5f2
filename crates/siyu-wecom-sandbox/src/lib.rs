//! A local WeCom: the server side of the API calls Siyu makes, checking tokens and payloads the
//! way WeCom does, and the sender of encrypted callbacks. The demo, the benchmark and the tests
//! run Siyu's WeCom code against it; it never talks to Tencent.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde::Serialize;
use serde_json::{Value as Json, json};

use siyu::connect::client::{ChatMember, GroupChat};
use siyu::connect::crypto::CallbackCrypto;
use siyu::connect::events::{CallbackEvent, Envelope, WELCOME_CODE_TTL_MS, to_xml};
use siyu::connect::service::CallbackQuery;
use siyu::platform::clock::now_ms;

/// The corp the sandbox plays.
#[derive(Debug, Clone)]
pub struct SandboxCorp {
    pub corp_id: String,
    pub secret: String,
    pub token: String,
    pub encoding_aes_key: String,
}

impl Default for SandboxCorp {
    fn default() -> Self {
        SandboxCorp {
            corp_id: "wwsandbox0000001".into(),
            secret: "sandbox-secret".into(),
            token: "sandboxtoken".into(),
            // 43 base64 characters.
            encoding_aes_key: "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG".into(),
        }
    }
}

/// One API call the sandbox accepted or refused.
#[derive(Debug, Clone, Serialize)]
pub struct Call {
    pub path: String,
    pub body: Json,
    pub at_ms: i64,
    pub errcode: i64,
}

#[derive(Debug, Clone)]
struct Template {
    sender: String,
    recipients: Vec<String>,
    sent: HashSet<String>,
}

/// (name, unionid, followers as (userid, state, added at))
type SandboxContact = (String, Option<String>, Vec<(String, Option<String>, i64)>);

#[derive(Debug, Default)]
struct World {
    tokens: HashMap<String, i64>,
    token_issues: u64,
    calls: Vec<Call>,
    contact_ways: HashMap<String, (String, Vec<String>)>,
    /// welcome_code → (issued at, used)
    welcome_codes: HashMap<String, (i64, bool)>,
    /// external_userid → (name, unionid, followers (userid, state, at))
    contacts: HashMap<String, SandboxContact>,
    contact_tags: HashMap<(String, String), HashSet<String>>,
    corp_tags: HashMap<String, (String, String)>,
    groups: HashMap<String, GroupChat>,
    templates: HashMap<String, Template>,
    reminders: Vec<String>,
    busy_next: u32,
    /// add_msg_template calls whose answer is lost after the task was made.
    lose_answers: u32,
    seq: u64,
}

#[derive(Clone)]
pub struct Sandbox {
    corp: SandboxCorp,
    crypto: CallbackCrypto,
    world: Arc<Mutex<World>>,
    url: String,
    http: reqwest::Client,
}

type S = Arc<Sandbox>;

impl Sandbox {
    /// Starts the sandbox on a random local port.
    pub async fn start(corp: SandboxCorp) -> std::io::Result<Sandbox> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let crypto = CallbackCrypto::new(&corp.token, &corp.encoding_aes_key, &corp.corp_id)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
        let sb = Sandbox {
            corp,
            crypto,
            world: Arc::new(Mutex::new(World::default())),
            url,
            http: reqwest::Client::new(),
        };
        let app = Router::new()
            .route("/cgi-bin/gettoken", get(gettoken))
            .route("/cgi-bin/externalcontact/get", get(contact_get))
            .route("/cgi-bin/externalcontact/list", get(contact_list))
            .route("/sandbox/qr/{config_id}", get(qr))
            .route("/cgi-bin/externalcontact/{*rest}", post(api))
            .with_state(Arc::new(sb.clone()));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(sb)
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn corp(&self) -> &SandboxCorp {
        &self.corp
    }

    fn world(&self) -> std::sync::MutexGuard<'_, World> {
        // A panic while holding the lock is a bug in the sandbox itself; keep serving.
        self.world.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Calls made to `path` (e.g. `send_welcome_msg`), oldest first.
    pub fn calls(&self, path: &str) -> Vec<Call> {
        self.world()
            .calls
            .iter()
            .filter(|c| c.path.ends_with(path))
            .cloned()
            .collect()
    }

    pub fn token_issues(&self) -> u64 {
        self.world().token_issues
    }

    /// Every access token issued so far stops working (WeCom answers 42001).
    pub fn expire_tokens(&self) {
        for v in self.world().tokens.values_mut() {
            *v = 0;
        }
    }

    /// The next `n` mass-message tasks are made but their answers are lost (HTTP 502), as when
    /// a connection drops after WeCom acted.
    pub fn lose_answers(&self, n: u32) {
        self.world().lose_answers = n;
    }

    /// The next `n` API calls are answered "system busy" (-1).
    pub fn busy_next(&self, n: u32) {
        self.world().busy_next = n;
    }

    pub fn reminders(&self) -> Vec<String> {
        self.world().reminders.clone()
    }

    /// WeCom tags on a contact as a guide sees them.
    pub fn contact_tags(&self, userid: &str, external_userid: &str) -> HashSet<String> {
        self.world()
            .contact_tags
            .get(&(userid.to_owned(), external_userid.to_owned()))
            .cloned()
            .unwrap_or_default()
    }

    /// The guides a contact way currently assigns.
    pub fn contact_way_users(&self, config_id: &str) -> Vec<String> {
        self.world()
            .contact_ways
            .get(config_id)
            .map(|w| w.1.clone())
            .unwrap_or_default()
    }

    /// A customer adds a guide through a contact way with `state`: WeCom records the relation
    /// and issues a welcome_code. Returns the callback WeCom would send.
    pub fn customer_adds(
        &self,
        userid: &str,
        external_userid: &str,
        unionid: Option<&str>,
        state: Option<&str>,
    ) -> Envelope {
        let now = now_ms();
        let mut w = self.world();
        w.seq += 1;
        let code = format!("WELCOME{}x{}", w.seq, now);
        w.welcome_codes.insert(code.clone(), (now, false));
        let entry = w
            .contacts
            .entry(external_userid.to_owned())
            .or_insert_with(|| (format!("客户{external_userid}"), None, Vec::new()));
        if entry.1.is_none() {
            entry.1 = unionid.map(str::to_owned);
        }
        entry
            .2
            .push((userid.to_owned(), state.map(str::to_owned), now / 1000));
        Envelope {
            corp_id: self.corp.corp_id.clone(),
            create_time: now / 1000,
            event: CallbackEvent::ContactAdded {
                userid: userid.into(),
                external_userid: external_userid.into(),
                state: state.map(str::to_owned),
                welcome_code: Some(code),
                half: false,
            },
        }
    }

    /// A customer group as WeCom holds it (created or replaced).
    pub fn put_group(&self, g: GroupChat) {
        self.world().groups.insert(g.chat_id.clone(), g);
    }

    /// Members join a group at `at` (seconds); returns the callback.
    pub fn join_group(&self, chat_id: &str, members: &[&str], at: i64) -> Envelope {
        let mut w = self.world();
        if let Some(g) = w.groups.get_mut(chat_id) {
            for m in members {
                g.member_list.push(ChatMember {
                    userid: (*m).to_owned(),
                    member_type: 2,
                    join_time: at,
                    join_scene: 3,
                });
            }
        }
        self.chat_update(chat_id, "add_member", members, at)
    }

    /// Members leave a group at `at` (seconds); returns the callback.
    pub fn leave_group(&self, chat_id: &str, members: &[&str], at: i64) -> Envelope {
        let mut w = self.world();
        if let Some(g) = w.groups.get_mut(chat_id) {
            g.member_list
                .retain(|m| !members.contains(&m.userid.as_str()));
        }
        self.chat_update(chat_id, "del_member", members, at)
    }

    fn chat_update(&self, chat_id: &str, detail: &str, members: &[&str], at: i64) -> Envelope {
        Envelope {
            corp_id: self.corp.corp_id.clone(),
            create_time: at,
            event: CallbackEvent::ChatUpdated {
                chat_id: chat_id.into(),
                detail: detail.into(),
                join_scene: (detail == "add_member").then_some(3),
                quit_scene: (detail == "del_member").then_some(0),
                members: members.iter().map(|m| (*m).to_owned()).collect(),
            },
        }
    }

    /// The guide confirms a mass-message task in WeCom: every recipient of it is sent.
    pub fn guide_sends(&self, msgid: &str) {
        if let Some(t) = self.world().templates.get_mut(msgid) {
            t.sent = t.recipients.iter().cloned().collect();
        }
    }

    /// msgids of mass-message tasks created for `sender`.
    pub fn tasks_of(&self, sender: &str) -> Vec<String> {
        let w = self.world();
        let mut v: Vec<String> = w
            .templates
            .iter()
            .filter(|(_, t)| t.sender == sender)
            .map(|(id, _)| id.clone())
            .collect();
        v.sort();
        v
    }

    /// The encrypted callback for `env` as Siyu reads it: the query's values and the body.
    pub fn seal_query(&self, env: &Envelope, now_s: i64) -> (CallbackQuery, String) {
        let (q, body) = self.seal(env, now_s);
        let get = |k: &str| {
            q.split('&')
                .find_map(|kv| kv.strip_prefix(&format!("{k}=")))
                .unwrap_or("")
                .to_owned()
        };
        let query = CallbackQuery {
            msg_signature: get("msg_signature"),
            timestamp: get("timestamp"),
            nonce: get("nonce"),
            echostr: None,
        };
        (query, body)
    }

    /// When each welcome_code's `send_welcome_msg` was accepted (UTC ms).
    pub fn welcomes_accepted(&self) -> HashMap<String, i64> {
        self.calls("send_welcome_msg")
            .into_iter()
            .filter(|c| c.errcode == 0)
            .filter_map(|c| {
                c.body["welcome_code"]
                    .as_str()
                    .map(|k| (k.to_owned(), c.at_ms))
            })
            .collect()
    }

    /// The encrypted callback for `env`, with the query string WeCom would put on the URL.
    pub fn seal(&self, env: &Envelope, now_s: i64) -> (String, String) {
        let nonce = format!("{}", rand::random::<u32>());
        let ts = now_s.to_string();
        let sealed = self.crypto.seal(&to_xml(env), &ts, &nonce);
        let query = format!(
            "msg_signature={}&timestamp={ts}&nonce={nonce}",
            sealed.msg_signature
        );
        // WeCom's callback body holds ToUserName, Encrypt and AgentID; signature and nonce
        // travel in the query.
        let body = format!(
            "<xml><ToUserName><![CDATA[{}]]></ToUserName><Encrypt><![CDATA[{}]]></Encrypt><AgentID><![CDATA[]]></AgentID></xml>",
            self.corp.corp_id, sealed.encrypt
        );
        (query, body)
    }

    /// POSTs `env` to Siyu's callback URL as WeCom does; returns the HTTP status and body.
    pub async fn deliver(
        &self,
        callback_url: &str,
        env: &Envelope,
    ) -> Result<(u16, String), reqwest::Error> {
        let (query, body) = self.seal(env, now_ms() / 1000);
        let r = self
            .http
            .post(format!("{callback_url}?{query}"))
            .body(body)
            .send()
            .await?;
        let status = r.status().as_u16();
        Ok((status, r.text().await?))
    }

    /// URL verification as WeCom does it when the callback is configured: returns the echo.
    pub async fn verify_url(&self, callback_url: &str) -> Result<(u16, String), reqwest::Error> {
        let ts = (now_ms() / 1000).to_string();
        let echo = "sandbox-echo-1616140317555161061";
        let sealed = self.crypto.seal(echo, &ts, "42");
        let r = self
            .http
            .get(callback_url)
            .query(&[
                ("msg_signature", sealed.msg_signature.as_str()),
                ("timestamp", ts.as_str()),
                ("nonce", "42"),
                ("echostr", sealed.encrypt.as_str()),
            ])
            .send()
            .await?;
        let status = r.status().as_u16();
        Ok((status, r.text().await?))
    }
}

fn err(code: i64, msg: &str) -> Json {
    json!({"errcode": code, "errmsg": msg})
}

fn ok(mut v: Json) -> Json {
    v["errcode"] = json!(0);
    v["errmsg"] = json!("ok");
    v
}

async fn gettoken(
    State(s): State<S>,
    Query(q): Query<HashMap<String, String>>,
) -> axum::Json<Json> {
    if q.get("corpid") != Some(&s.corp.corp_id) {
        return axum::Json(err(40013, "invalid corpid"));
    }
    if q.get("corpsecret") != Some(&s.corp.secret) {
        return axum::Json(err(40001, "invalid credential"));
    }
    let mut w = s.world();
    w.token_issues += 1;
    let tok = format!("sbtok{}{}", w.token_issues, rand::random::<u32>());
    w.tokens.insert(tok.clone(), now_ms() + 7_200_000);
    axum::Json(ok(json!({"access_token": tok, "expires_in": 7200})))
}

/// 0 when the token is good; WeCom's error otherwise.
fn check_token(w: &World, q: &HashMap<String, String>) -> Option<Json> {
    match q.get("access_token").and_then(|t| w.tokens.get(t)) {
        None => Some(err(40014, "invalid access_token")),
        Some(&until) if until < now_ms() => Some(err(42001, "access_token expired")),
        _ => None,
    }
}

fn record(w: &mut World, path: &str, body: Json, answer: &Json) {
    w.calls.push(Call {
        path: path.to_owned(),
        body,
        at_ms: now_ms(),
        errcode: answer["errcode"].as_i64().unwrap_or(0),
    });
}

async fn contact_get(
    State(s): State<S>,
    Query(q): Query<HashMap<String, String>>,
) -> axum::Json<Json> {
    let mut w = s.world();
    let ans = if let Some(e) = check_token(&w, &q) {
        e
    } else {
        let ext = q.get("external_userid").cloned().unwrap_or_default();
        match w.contacts.get(&ext) {
            None => err(84061, "not external contact"),
            Some((name, unionid, follows)) => ok(json!({
                "external_contact": {"external_userid": ext, "name": name, "type": 1, "unionid": unionid},
                "follow_user": follows.iter().map(|(u, st, at)| json!({"userid": u, "state": st, "createtime": at})).collect::<Vec<_>>(),
            })),
        }
    };
    record(&mut w, "/cgi-bin/externalcontact/get", json!(q), &ans);
    axum::Json(ans)
}

async fn contact_list(
    State(s): State<S>,
    Query(q): Query<HashMap<String, String>>,
) -> axum::Json<Json> {
    let mut w = s.world();
    let ans = if let Some(e) = check_token(&w, &q) {
        e
    } else {
        let u = q.get("userid").cloned().unwrap_or_default();
        let ids: Vec<&String> = w
            .contacts
            .iter()
            .filter(|(_, c)| c.2.iter().any(|f| f.0 == u))
            .map(|(id, _)| id)
            .collect();
        ok(json!({ "external_userid": ids }))
    };
    record(&mut w, "/cgi-bin/externalcontact/list", json!(q), &ans);
    axum::Json(ans)
}

async fn qr(Path(config_id): Path<String>) -> impl IntoResponse {
    let text = format!("https://work.weixin.qq.com/ca/{config_id}");
    // WeCom draws the code as a bitmap.
    match siyu::acquire::qr::png(&text, 6) {
        Ok(png) => ([("content-type", "image/png")], png).into_response(),
        Err(_) => axum::http::StatusCode::NOT_FOUND.into_response(),
    }
}

fn strs(v: &Json) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str().map(str::to_owned))
        .collect()
}

fn has_content(b: &Json) -> bool {
    b["text"]["content"].as_str().is_some_and(|t| !t.is_empty())
        || b["attachments"].as_array().is_some_and(|a| !a.is_empty())
}

async fn api(
    State(s): State<S>,
    Path(rest): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    body: axum::body::Bytes,
) -> axum::response::Response {
    let path = format!("/cgi-bin/externalcontact/{rest}");
    let b: Json = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(_) => return axum::Json(err(47001, "data format error")).into_response(),
    };
    let mut w = s.world();
    let ans = if let Some(e) = check_token(&w, &q) {
        e
    } else if w.busy_next > 0 {
        w.busy_next -= 1;
        err(-1, "system busy")
    } else {
        answer(&s, &mut w, &rest, &b)
    };
    record(&mut w, &path, b, &ans);
    if rest == "add_msg_template" && ans["errcode"] == 0 && w.lose_answers > 0 {
        w.lose_answers -= 1;
        return axum::http::StatusCode::BAD_GATEWAY.into_response();
    }
    axum::Json(ans).into_response()
}

fn answer(s: &Sandbox, w: &mut World, rest: &str, b: &Json) -> Json {
    let now = now_ms();
    match rest {
        "add_contact_way" => {
            let state = b["state"].as_str().unwrap_or("");
            let users = strs(&b["user"]);
            if !matches!(b["type"].as_i64(), Some(1 | 2))
                || !matches!(b["scene"].as_i64(), Some(1 | 2))
            {
                return err(40058, "type and scene must be 1 or 2");
            }
            if state.chars().count() > 30 {
                return err(40058, "state longer than 30 characters");
            }
            if users.is_empty() || (b["type"] == 1 && users.len() != 1) {
                return err(40058, "user: one userid for type 1, some for type 2");
            }
            w.seq += 1;
            let id = format!("cfg{}", w.seq);
            w.contact_ways.insert(id.clone(), (state.to_owned(), users));
            ok(json!({"config_id": id, "qr_code": format!("{}/sandbox/qr/{id}", s.url)}))
        }
        "update_contact_way" => {
            let id = b["config_id"].as_str().unwrap_or("");
            let users = strs(&b["user"]);
            match w.contact_ways.get_mut(id) {
                None => err(41044, "invalid config_id"),
                Some(_) if users.is_empty() => err(40058, "user is empty"),
                Some(way) => {
                    way.1 = users;
                    if let Some(st) = b["state"].as_str() {
                        way.0 = st.to_owned();
                    }
                    ok(json!({}))
                }
            }
        }
        "del_contact_way" => match w.contact_ways.remove(b["config_id"].as_str().unwrap_or("")) {
            Some(_) => ok(json!({})),
            None => err(41044, "invalid config_id"),
        },
        "send_welcome_msg" => {
            let code = b["welcome_code"].as_str().unwrap_or("");
            if !has_content(b) {
                return err(41048, "text or attachments required");
            }
            match w.welcome_codes.get_mut(code) {
                None => err(41051, "invalid welcome_code"),
                Some((_, true)) => err(41051, "welcome_code already used"),
                Some((at, _)) if now - *at > WELCOME_CODE_TTL_MS => {
                    err(41051, "welcome_code expired")
                }
                Some(entry) => {
                    entry.1 = true;
                    ok(json!({}))
                }
            }
        }
        "mark_tag" => {
            let user = b["userid"].as_str().unwrap_or("").to_owned();
            let ext = b["external_userid"].as_str().unwrap_or("").to_owned();
            let follows = w
                .contacts
                .get(&ext)
                .is_some_and(|c| c.2.iter().any(|f| f.0 == user));
            if !follows {
                return err(84061, "not external contact");
            }
            let add = strs(&b["add_tag"]);
            let remove = strs(&b["remove_tag"]);
            if add.is_empty() && remove.is_empty() {
                return err(40068, "add_tag and remove_tag are empty");
            }
            if let Some(bad) = add
                .iter()
                .chain(&remove)
                .find(|t| !w.corp_tags.contains_key(*t))
            {
                return err(40068, &format!("invalid tagid {bad}"));
            }
            let set = w.contact_tags.entry((user, ext)).or_default();
            set.extend(add);
            for r in remove {
                set.remove(&r);
            }
            ok(json!({}))
        }
        "get_corp_tag_list" => {
            let tags: Vec<Json> = w
                .corp_tags
                .iter()
                .map(|(id, (g, n))| json!({"group_name": g, "tag": [{"id": id, "name": n}]}))
                .collect();
            ok(json!({ "tag_group": tags }))
        }
        "add_corp_tag" => {
            let group = b["group_name"].as_str().unwrap_or("");
            let Some(name) = b["tag"][0]["name"].as_str().filter(|n| !n.is_empty()) else {
                return err(40071, "tag name is empty");
            };
            if let Some((id, _)) = w
                .corp_tags
                .iter()
                .find(|(_, (g, n))| g == group && n == name)
            {
                return err(40071, &format!("tag name exists: {id}"));
            }
            w.seq += 1;
            let id = format!("et{}", w.seq);
            w.corp_tags
                .insert(id.clone(), (group.to_owned(), name.to_owned()));
            ok(json!({"tag_group": {"group_name": group, "tag": [{"id": id, "name": name}]}}))
        }
        "groupchat/list" => {
            let mut ids: Vec<&String> = w.groups.keys().collect();
            ids.sort();
            ok(
                json!({"group_chat_list": ids.iter().map(|id| json!({"chat_id": id, "status": 0})).collect::<Vec<_>>(), "next_cursor": ""}),
            )
        }
        "groupchat/get" => match w.groups.get(b["chat_id"].as_str().unwrap_or("")) {
            Some(g) => ok(json!({ "group_chat": g })),
            None => err(40050, "chat_id not found"),
        },
        "add_msg_template" => {
            let Some(sender) = b["sender"].as_str().filter(|x| !x.is_empty()) else {
                return err(41048, "sender required");
            };
            if !has_content(b) {
                return err(41048, "text or attachments required");
            }
            let (ok_list, fail): (Vec<String>, Vec<String>) = match b["chat_type"].as_str() {
                Some("group") => strs(&b["chat_id_list"])
                    .into_iter()
                    .partition(|c| w.groups.get(c).is_some_and(|g| g.owner == sender)),
                Some("single") | None => strs(&b["external_userid"]).into_iter().partition(|e| {
                    w.contacts
                        .get(e)
                        .is_some_and(|c| c.2.iter().any(|f| f.0 == sender))
                }),
                Some(_) => return err(40058, "chat_type must be single or group"),
            };
            if ok_list.is_empty() {
                return err(41063, "no valid recipient");
            }
            w.seq += 1;
            let msgid = format!("msg{}", w.seq);
            w.templates.insert(
                msgid.clone(),
                Template {
                    sender: sender.to_owned(),
                    recipients: ok_list,
                    sent: HashSet::new(),
                },
            );
            ok(json!({"msgid": msgid, "fail_list": fail}))
        }
        "remind_groupmsg_send" => {
            let id = b["msgid"].as_str().unwrap_or("").to_owned();
            if !w.templates.contains_key(&id) {
                return err(41062, "invalid msgid");
            }
            w.reminders.push(id);
            ok(json!({}))
        }
        "get_groupmsg_list_v2" => {
            let creator = b["creator"].as_str();
            let list: Vec<Json> = w
                .templates
                .iter()
                .filter(|(_, t)| creator.is_none_or(|c| c == t.sender))
                .map(|(id, t)| json!({"msgid": id, "creator": t.sender, "create_type": 0}))
                .collect();
            ok(json!({"group_msg_list": list, "next_cursor": ""}))
        }
        "get_groupmsg_send_result" => {
            let id = b["msgid"].as_str().unwrap_or("");
            let user = b["userid"].as_str().unwrap_or("");
            match w.templates.get(id) {
                Some(t) if t.sender == user => {
                    let list: Vec<Json> = t
                        .recipients
                        .iter()
                        .map(|r| {
                            let status = i64::from(t.sent.contains(r));
                            // WeCom's chat ids start with "wr"; contacts' with "wm" or "wo".
                            let key = if r.starts_with("wr") {
                                "chat_id"
                            } else {
                                "external_userid"
                            };
                            json!({key: r, "userid": user, "status": status})
                        })
                        .collect();
                    ok(json!({"send_list": list, "next_cursor": ""}))
                }
                Some(_) => ok(json!({"send_list": [], "next_cursor": ""})),
                None => err(41062, "invalid msgid"),
            }
        }
        "batch/get_by_user" => ok(json!({"external_contact_list": [], "next_cursor": ""})),
        _ => err(60011, &format!("the sandbox does not implement {rest}")),
    }
}
