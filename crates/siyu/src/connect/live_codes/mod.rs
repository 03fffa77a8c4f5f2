//! Channel live codes (渠道活码): a WeCom "contact me" QR per channel, store, campaign or
//! package-card batch. Its `state` names the code when a customer adds a guide through it; its
//! guides follow a schedule with a daily cap each and a backup; it carries the tags and the
//! welcome message the new contact gets.

use crate::platform::TenantId;
use crate::platform::refusal::{Refusal, Refuse};
use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::client::{Content, WecomApi, WecomError};

mod picture;
mod report;
mod rota;
mod wecom_tags;

use crate::know::tags;
use crate::platform::db::{Db, DbError, sql};
pub use picture::qr_text;
pub use report::{CodeStats, ContactOf, contacts_of, stats};
pub use rota::{adds_on, count_add, local_day, local_minute, parse_hhmm, rotate};
pub use wecom_tags::{wecom_tag_id, wecom_tag_ids};

/// What a code was made for; the touchpoint of an add is `live_code:{id}`.
pub const SOURCES: [&str; 4] = ["channel", "store", "campaign", "card_batch"];

#[derive(Debug, thiserror::Error)]
pub enum LiveCodeError {
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("live code {0} not found")]
    NotFound(i64),
    #[error(transparent)]
    Wecom(#[from] WecomError),
    #[error("live code {0}'s QR picture from WeCom: {1}")]
    Picture(i64, crate::acquire::qr::QrError),
    #[error("live code {0} is stopped")]
    Stopped(i64),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl Refuse for LiveCodeError {
    fn refusal(&self) -> Refusal {
        match self {
            LiveCodeError::NotFound(_) => Refusal::NotFound("not_found"),
            LiveCodeError::Db(_) => Refusal::Internal,
            LiveCodeError::Wecom(_) | LiveCodeError::Picture(..) => Refusal::Upstream("wecom"),
            LiveCodeError::Stopped(_) => Refusal::Conflict("stopped"),
            _ => Refusal::Invalid,
        }
    }
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> LiveCodeError {
    LiveCodeError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// A guide on the code's rota: on these weekdays (1 = Monday … 7; empty: every day), between
/// `from` and `to` local time ("09:00"–"21:00"; absent: all day), up to `daily_cap` adds a day.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GuideSlot {
    pub userid: String,
    #[serde(default)]
    pub weekdays: Vec<u8>,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default)]
    pub daily_cap: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TimedWelcome {
    pub from: String,
    pub to: String,
    #[serde(flatten)]
    pub content: Content,
}

/// The welcome message: the default content, and content for times of day that replace it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Welcome {
    #[serde(flatten)]
    pub content: Content,
    #[serde(default)]
    pub by_time: Vec<TimedWelcome>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewLiveCode {
    pub name: String,
    #[serde(default = "default_source")]
    pub source: String,
    #[serde(default)]
    pub source_id: Option<i64>,
    #[serde(default)]
    pub tag_ids: Vec<i64>,
    pub welcome: Welcome,
    pub guides: Vec<GuideSlot>,
    pub backup_userid: String,
}

/// What a change may set: everything but what the code was made for (its source), which its
/// printed QR keeps counting for.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveCodeChange {
    pub name: String,
    #[serde(default)]
    pub tag_ids: Vec<i64>,
    pub welcome: Welcome,
    pub guides: Vec<GuideSlot>,
    pub backup_userid: String,
}

impl From<NewLiveCode> for LiveCodeChange {
    fn from(n: NewLiveCode) -> LiveCodeChange {
        LiveCodeChange {
            name: n.name,
            tag_ids: n.tag_ids,
            welcome: n.welcome,
            guides: n.guides,
            backup_userid: n.backup_userid,
        }
    }
}

fn default_source() -> String {
    "channel".into()
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LiveCode {
    pub id: i64,
    pub tenant_id: TenantId,
    pub name: String,
    pub source: String,
    pub source_id: Option<i64>,
    pub state: String,
    pub config_id: String,
    pub qr_code: String,
    pub tag_ids: Vec<i64>,
    pub welcome: Welcome,
    pub guides: Vec<GuideSlot>,
    pub backup_userid: String,
    /// The guides the contact way assigns right now.
    pub serving: Vec<String>,
    pub created_at: i64,
    /// When it was stopped (its contact way deleted in WeCom); none while it adds people.
    pub disabled_at: Option<i64>,
}

impl LiveCode {
    pub fn touchpoint(&self) -> String {
        format!("live_code:{}", self.id)
    }
}

fn check(n: &NewLiveCode) -> Result<(), LiveCodeError> {
    if n.name.trim().is_empty() || n.name.chars().count() > 64 {
        return Err(invalid("name", "must be 1–64 characters"));
    }
    if !SOURCES.contains(&n.source.as_str()) {
        return Err(invalid(
            "source",
            format!("{:?} is not one of {}", n.source, SOURCES.join(", ")),
        ));
    }
    if n.guides.is_empty() {
        return Err(invalid("guides", "at least one guide"));
    }
    if n.guides.len() > 100 {
        return Err(invalid(
            "guides",
            "at most 100 guides (WeCom's limit per contact way)",
        ));
    }
    if n.backup_userid.trim().is_empty() {
        return Err(invalid("backup_userid", "a backup guide is required"));
    }
    for (i, g) in n.guides.iter().enumerate() {
        if g.userid.trim().is_empty() {
            return Err(invalid(format!("guides[{i}].userid"), "is empty"));
        }
        if let Some(bad) = g.weekdays.iter().find(|d| !(1..=7).contains(*d)) {
            return Err(invalid(
                format!("guides[{i}].weekdays"),
                format!("{bad} is not 1 (Monday) … 7"),
            ));
        }
        if g.from.is_some() != g.to.is_some() || (g.from.is_some() && g.from == g.to) {
            return Err(invalid(
                format!("guides[{i}]"),
                "give both from and to (different times), or neither for all day",
            ));
        }
        for (f, v) in [("from", &g.from), ("to", &g.to)] {
            if let Some(v) = v
                && parse_hhmm(v).is_none()
            {
                return Err(invalid(
                    format!("guides[{i}].{f}"),
                    format!("{v:?} is not HH:MM"),
                ));
            }
        }
        if g.daily_cap.is_some_and(|c| c < 1) {
            return Err(invalid(
                format!("guides[{i}].daily_cap"),
                "must be at least 1",
            ));
        }
    }
    n.welcome
        .content
        .check("welcome")
        .map_err(|r| invalid("welcome", r))?;
    for (i, t) in n.welcome.by_time.iter().enumerate() {
        if parse_hhmm(&t.from).is_none() || parse_hhmm(&t.to).is_none() {
            return Err(invalid(
                format!("welcome.by_time[{i}]"),
                "from and to must be HH:MM",
            ));
        }
        t.content
            .check(&format!("welcome.by_time[{i}]"))
            .map_err(|r| invalid(format!("welcome.by_time[{i}]"), r))?;
    }
    Ok(())
}

/// Creates the code: its contact way in WeCom, its tags mirrored as WeCom corp tags.
pub async fn create(
    db: &Db,
    api: &WecomApi,
    tenant: TenantId,
    n: NewLiveCode,
    now: i64,
    offset_min: i64,
) -> Result<LiveCode, LiveCodeError> {
    check(&n)?;
    let tag_list = list_tags(db, tenant, &n.tag_ids).await?;
    if n.source == "card_batch" {
        let batch = n
            .source_id
            .ok_or_else(|| invalid("source_id", "a card-batch code names its batch"))?;
        let known: Option<(i64,)> = db
            .fetch_optional(
                &sql("SELECT id FROM card_batches WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant)
                    .bind(batch),
            )
            .await?;
        if known.is_none() {
            return Err(invalid(
                "source_id",
                format!("card batch {batch} does not exist"),
            ));
        }
    }
    for t in &tag_list {
        wecom_tag_id(db, api, tenant, t.id, &t.name).await?;
    }
    let id = {
        let mut tx = db.begin().await?;
        let id = tx.reserve_ids("live_code", 1).await?;
        tx.commit().await?;
        id
    };
    let state = format!("siyu:lc:{id}");
    let mut code = LiveCode {
        id,
        tenant_id: tenant,
        name: n.name.trim().to_owned(),
        source: n.source,
        source_id: n.source_id,
        state,
        config_id: String::new(),
        qr_code: String::new(),
        tag_ids: n.tag_ids,
        welcome: n.welcome,
        guides: n.guides,
        backup_userid: n.backup_userid,
        serving: Vec::new(),
        created_at: now,
        disabled_at: None,
    };
    code.serving = code.guides_now(now, offset_min, &HashMap::new());
    let (config_id, qr) = api
        .add_contact_way(&code.state, &code.serving, &code.name)
        .await?;
    code.config_id = config_id;
    code.qr_code = qr;
    db.execute(
        &sql("INSERT INTO live_codes (id, tenant_id, name, source, source_id, state, config_id, qr_code, tag_ids, welcome, guides, backup_userid, serving, created_at) \
              VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)")
            .bind(code.id)
            .bind(tenant)
            .bind(code.name.as_str())
            .bind(code.source.as_str())
            .bind(code.source_id)
            .bind(code.state.as_str())
            .bind(code.config_id.as_str())
            .bind(code.qr_code.as_str())
            .bind(json_text(&code.tag_ids))
            .bind(json_text(&code.welcome))
            .bind(json_text(&code.guides))
            .bind(code.backup_userid.as_str())
            .bind(json_text(&code.serving))
            .bind(now),
    )
    .await?;
    if code.source == "card_batch" {
        // The batch's landing page shows this code's QR after a claim, so the add that follows
        // carries the batch's state back.
        db.execute(
            &sql("UPDATE card_batches SET contact_qr_url = $3 WHERE tenant_id = $1 AND id = $2")
                .bind(tenant)
                .bind(code.source_id)
                .bind(code.qr_code.as_str()),
        )
        .await?;
    }
    Ok(code)
}

/// The tags a code puts on its contacts: each must exist and be one staff put on by hand.
async fn list_tags(
    db: &Db,
    tenant: TenantId,
    ids: &[i64],
) -> Result<Vec<tags::Tag>, LiveCodeError> {
    let mut out = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let t = tags::get(db, tenant, *id)
            .await
            .map_err(|_| invalid(format!("tag_ids[{i}]"), format!("tag {id} does not exist")))?;
        if t.rule.is_some() {
            return Err(invalid(
                format!("tag_ids[{i}]"),
                format!("tag {id} is a rule tag; its members follow its rule"),
            ));
        }
        out.push(t);
    }
    Ok(out)
}

/// Changes a code's name, tags, welcome, guides and backup; the contact way in WeCom follows
/// the new rota at once. What it was made for (its source) and its QR stay: the cards and
/// posters printed with it keep working and keep counting for it. A stopped code is refused.
pub async fn update(
    db: &Db,
    api: &WecomApi,
    tenant: TenantId,
    id: i64,
    change: LiveCodeChange,
    now: i64,
    offset_min: i64,
) -> Result<LiveCode, LiveCodeError> {
    let mut code = get(db, tenant, id).await?;
    if code.disabled_at.is_some() {
        return Err(LiveCodeError::Stopped(id));
    }
    let n = NewLiveCode {
        name: change.name,
        source: code.source.clone(),
        source_id: code.source_id,
        tag_ids: change.tag_ids,
        welcome: change.welcome,
        guides: change.guides,
        backup_userid: change.backup_userid,
    };
    check(&n)?;
    for t in list_tags(db, tenant, &n.tag_ids).await? {
        wecom_tag_id(db, api, tenant, t.id, &t.name).await?;
    }
    code.name = n.name.trim().to_owned();
    code.tag_ids = n.tag_ids;
    code.welcome = n.welcome;
    code.guides = n.guides;
    code.backup_userid = n.backup_userid;
    let today = adds_on(db, code.id, local_day(now, offset_min)).await?;
    let due = code.guides_now(now, offset_min, &today);
    if due != code.serving {
        api.update_contact_way(&code.config_id, &code.state, &due)
            .await?;
        code.serving = due;
    }
    db.execute(
        &sql("UPDATE live_codes SET name = $3, tag_ids = $4, welcome = $5, guides = $6, backup_userid = $7, serving = $8 \
              WHERE tenant_id = $1 AND id = $2")
            .bind(tenant)
            .bind(id)
            .bind(code.name.as_str())
            .bind(json_text(&code.tag_ids))
            .bind(json_text(&code.welcome))
            .bind(json_text(&code.guides))
            .bind(code.backup_userid.as_str())
            .bind(json_text(&code.serving)),
    )
    .await?;
    Ok(code)
}

/// Stops a code: WeCom deletes its contact way, so its QR adds no one from now on; the code,
/// its contacts and its figures stay. Stopping a stopped code changes nothing.
pub async fn disable(
    db: &Db,
    api: &WecomApi,
    tenant: TenantId,
    id: i64,
    now: i64,
) -> Result<LiveCode, LiveCodeError> {
    let mut code = get(db, tenant, id).await?;
    if code.disabled_at.is_some() {
        return Ok(code);
    }
    match api.del_contact_way(&code.config_id).await {
        // 41044: WeCom no longer knows the config_id (deleted there already).
        Ok(()) | Err(WecomError::Api { errcode: 41044, .. }) => {}
        Err(e) => return Err(e.into()),
    }
    db.execute(
        &sql("UPDATE live_codes SET disabled_at = $3 WHERE tenant_id = $1 AND id = $2 AND disabled_at IS NULL")
            .bind(tenant)
            .bind(id)
            .bind(now),
    )
    .await?;
    if code.source == "card_batch" {
        // The batch's landing page no longer shows a QR that adds no one.
        db.execute(
            &sql("UPDATE card_batches SET contact_qr_url = NULL WHERE tenant_id = $1 AND id = $2 AND contact_qr_url = $3")
                .bind(tenant)
                .bind(code.source_id)
                .bind(code.qr_code.as_str()),
        )
        .await?;
    }
    code.disabled_at = Some(now);
    Ok(code)
}

fn json_text<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    tenant_id: TenantId,
    name: String,
    source: String,
    source_id: Option<i64>,
    state: String,
    config_id: String,
    qr_code: String,
    tag_ids: String,
    welcome: String,
    guides: String,
    backup_userid: String,
    serving: String,
    created_at: i64,
    disabled_at: Option<i64>,
}

impl Row {
    fn into_code(self) -> LiveCode {
        LiveCode {
            id: self.id,
            tenant_id: self.tenant_id,
            name: self.name,
            source: self.source,
            source_id: self.source_id,
            state: self.state,
            config_id: self.config_id,
            qr_code: self.qr_code,
            tag_ids: serde_json::from_str(&self.tag_ids).unwrap_or_default(),
            welcome: serde_json::from_str(&self.welcome).unwrap_or_default(),
            guides: serde_json::from_str(&self.guides).unwrap_or_default(),
            backup_userid: self.backup_userid,
            serving: serde_json::from_str(&self.serving).unwrap_or_default(),
            created_at: self.created_at,
            disabled_at: self.disabled_at,
        }
    }
}

const COLUMNS: &str = "id, tenant_id, name, source, source_id, state, config_id, qr_code, tag_ids, welcome, guides, backup_userid, serving, created_at, disabled_at";

pub async fn get(db: &Db, tenant: TenantId, id: i64) -> Result<LiveCode, LiveCodeError> {
    let r: Option<Row> = db
        .fetch_optional(
            &sql(format!(
                "SELECT {COLUMNS} FROM live_codes WHERE tenant_id = $1 AND id = $2"
            ))
            .bind(tenant)
            .bind(id),
        )
        .await?;
    r.map(Row::into_code).ok_or(LiveCodeError::NotFound(id))
}

/// The code a callback's `state` names; None for states Siyu did not make (foreign codes).
pub async fn by_state(db: &Db, tenant: TenantId, state: &str) -> Result<Option<LiveCode>, DbError> {
    let r: Option<Row> = db
        .fetch_optional(
            &sql(format!(
                "SELECT {COLUMNS} FROM live_codes WHERE tenant_id = $1 AND state = $2"
            ))
            .bind(tenant)
            .bind(state),
        )
        .await?;
    Ok(r.map(Row::into_code))
}

pub async fn list(db: &Db, tenant: TenantId) -> Result<Vec<LiveCode>, DbError> {
    let rows: Vec<Row> = db
        .fetch_all(
            &sql(format!(
                "SELECT {COLUMNS} FROM live_codes WHERE tenant_id = $1 ORDER BY id"
            ))
            .bind(tenant),
        )
        .await?;
    Ok(rows.into_iter().map(Row::into_code).collect())
}
