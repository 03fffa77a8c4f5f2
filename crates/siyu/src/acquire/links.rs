//! Tracking links: `/t/{code}` answers a redirect to the link's target and records the click
//! (time, link, hashed IP, user agent, a first-party visitor id for unique visitors).
//!
//! The redirect never waits for the database: codes are resolved from memory after their first
//! use, and clicks go to a writer task that stores them in groups. A click that arrives while
//! the writer's queue is full is counted as dropped and logged, never allowed to slow the
//! redirect; a click is not something anyone was promised.

use crate::know::CustomerId;
use crate::platform::TenantId;
use crate::platform::refusal::{Refusal, Refuse};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use serde::Serialize;
use siyu_store::group_commit::{GroupCommit, GroupWriter};

use super::codes;
use crate::platform::db::{Db, DbError, MAX_BINDS, Reader, Tx, sql, values_placeholders};
use crate::platform::rows::Arg;

/// What a redirect needs to know about a link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Link {
    pub id: i64,
    pub tenant_id: TenantId,
    pub code: String,
    pub target: String,
    pub channel: String,
    pub campaign_id: Option<i64>,
    pub batch_id: Option<i64>,
    pub variant: Option<String>,
    pub customer_id: Option<CustomerId>,
    pub created_at: i64,
}

/// A link to create.
#[derive(Debug, Clone, Default)]
pub struct NewLink {
    pub target: String,
    pub channel: String,
    pub campaign_id: Option<i64>,
    pub batch_id: Option<i64>,
    pub variant: Option<String>,
    pub customer_id: Option<CustomerId>,
}

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("target: {0}")]
    Target(String),
    #[error("channel: must be 1–32 letters, digits, - or _")]
    Channel,
    #[error("link {0} not found")]
    NotFound(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl Refuse for LinkError {
    fn refusal(&self) -> Refusal {
        match self {
            LinkError::NotFound(_) => Refusal::NotFound("not_found"),
            LinkError::Db(_) => Refusal::Internal,
            _ => Refusal::Invalid,
        }
    }
}

/// Only http(s) targets: a tracking link must never become an open redirect to `javascript:`.
pub fn check_target(target: &str) -> Result<(), LinkError> {
    let t = target.trim();
    if t.len() > 2_000 {
        return Err(LinkError::Target("longer than 2000 characters".into()));
    }
    match reqwest::Url::parse(t) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Ok(()),
        Ok(_) => Err(LinkError::Target("must be an http or https URL".into())),
        Err(e) => Err(LinkError::Target(format!("not a URL ({e})"))),
    }
}

fn check_channel(c: &str) -> Result<(), LinkError> {
    if (1..=32).contains(&c.len())
        && c.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        Ok(())
    } else {
        Err(LinkError::Channel)
    }
}

/// Creates links inside the caller's transaction (a campaign creates one per recipient).
pub async fn create_in(
    tx: &mut Tx,
    tenant: TenantId,
    links: &[NewLink],
    now: i64,
) -> Result<Vec<Link>, LinkError> {
    if links.is_empty() {
        return Ok(Vec::new());
    }
    // `insert_in` checks targets and channels; a bad one costs only this lookup.
    let fresh = codes::unused(Reader::Tx(tx), "links", links.len(), codes::link_code).await?;
    let first = insert_in(tx, tenant, links, &fresh, now).await?;
    Ok(links
        .iter()
        .zip(fresh)
        .enumerate()
        .map(|(i, (l, code))| Link {
            id: first + i as i64,
            tenant_id: tenant,
            code,
            target: l.target.trim().to_string(),
            channel: l.channel.clone(),
            campaign_id: l.campaign_id,
            batch_id: l.batch_id,
            variant: l.variant.clone(),
            customer_id: l.customer_id,
            created_at: now,
        })
        .collect())
}

/// Stores links under codes drawn beforehand by [`codes::unused`] (a campaign draws them before
/// its write transaction, so that the writer is not held while it looks; a code taken in the
/// meantime fails the transaction on the UNIQUE index rather than going to two links). Returns
/// the first link's id; the others follow it in order. Binds straight from `links`: a launch
/// stores 50,000 and needs none of them back.
pub async fn insert_in(
    tx: &mut Tx,
    tenant: TenantId,
    links: &[NewLink],
    codes: &[String],
    now: i64,
) -> Result<i64, LinkError> {
    if links.is_empty() {
        return Ok(0);
    }
    // A launch's links share a few targets: each is checked once, not once per recipient.
    let mut checked: Option<&NewLink> = None;
    for l in links {
        if checked.is_none_or(|c| c.target != l.target || c.channel != l.channel) {
            check_target(&l.target)?;
            check_channel(&l.channel)?;
            checked = Some(l);
        }
    }
    let first = tx.reserve_ids("link", links.len() as i64).await?;
    let rows: Vec<[Arg; 10]> = links
        .iter()
        .zip(codes)
        .enumerate()
        .map(|(i, (l, code))| {
            [
                (first + i as i64).into(),
                tenant.into(),
                code.as_str().into(),
                l.target.trim().into(),
                l.channel.as_str().into(),
                l.campaign_id.into(),
                l.batch_id.into(),
                l.variant.as_deref().into(),
                l.customer_id.into(),
                now.into(),
            ]
        })
        .collect();
    tx.insert_rows(
        "INSERT INTO links (id, tenant_id, code, target, channel, campaign_id, batch_id, variant, customer_id, created_at)",
        "",
        &rows,
    )
    .await?;
    Ok(first)
}

const LINK_COLUMNS: &str =
    "id, tenant_id, code, target, channel, campaign_id, batch_id, variant, customer_id, created_at";

pub async fn get(db: &Db, tenant: TenantId, id: i64) -> Result<Link, LinkError> {
    db.fetch_optional(
        &sql(format!(
            "SELECT {LINK_COLUMNS} FROM links WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant)
        .bind(id),
    )
    .await?
    .ok_or_else(|| LinkError::NotFound(id.to_string()))
}

pub async fn by_code(db: &Db, code: &str) -> Result<Option<Link>, DbError> {
    db.fetch_optional(&sql(format!("SELECT {LINK_COLUMNS} FROM links WHERE code = $1")).bind(code))
        .await
}

/// Clicks of a link: page views and unique visitors.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct ClickCounts {
    pub clicks: i64,
    pub visitors: i64,
}

pub async fn click_counts(db: &Db, tenant: TenantId, link: i64) -> Result<ClickCounts, DbError> {
    let (clicks, visitors): (i64, i64) = db
        .fetch_one(
            &sql("SELECT COUNT(*), COUNT(DISTINCT visitor) FROM clicks WHERE tenant_id = $1 AND link_id = $2")
                .bind(tenant)
                .bind(link),
        )
        .await?;
    Ok(ClickCounts { clicks, visitors })
}

/// One click, as the redirect saw it.
#[derive(Debug, Clone)]
pub struct Click {
    pub tenant_id: TenantId,
    pub link_id: i64,
    pub visitor: String,
    pub ip_hash: String,
    pub user_agent: String,
    pub at: i64,
}

/// Resolves codes from memory and hands clicks to the group writer.
pub struct Tracker {
    db: Db,
    cache: RwLock<HashMap<String, Arc<Link>>>,
    clicks: GroupCommit<Clicks>,
    pub dropped: AtomicU64,
}

/// Clicks waiting at most; past this the redirect drops the click rather than wait.
const CLICK_QUEUE: usize = 200_000;
/// Clicks written per transaction at most.
const CLICK_GROUP: usize = 5_000;

impl Tracker {
    /// Starts the click writer on the current runtime.
    pub fn start(db: Db) -> Arc<Tracker> {
        let clicks = GroupCommit::start(Clicks { db: db.clone() }, CLICK_GROUP, CLICK_QUEUE);
        Arc::new(Tracker {
            db,
            cache: RwLock::default(),
            clicks,
            dropped: AtomicU64::new(0),
        })
    }

    /// The link for a code: from memory after the first lookup. Unknown codes are not
    /// remembered, so a guessed code costs one indexed read and no memory.
    pub async fn resolve(&self, code: &str) -> Result<Option<Arc<Link>>, DbError> {
        if !codes::is_link_code(code) {
            return Ok(None);
        }
        if let Some(l) = self.cache.read().ok().and_then(|c| c.get(code).cloned()) {
            return Ok(Some(l));
        }
        let Some(link) = by_code(&self.db, code).await? else {
            return Ok(None);
        };
        let link = Arc::new(link);
        if let Ok(mut c) = self.cache.write() {
            // A crude bound: links are small, but a campaign makes one per recipient.
            if c.len() > 1_000_000 {
                c.clear();
            }
            c.insert(code.to_string(), link.clone());
        }
        Ok(Some(link))
    }

    /// Queues a click without waiting.
    pub fn record(&self, click: Click) {
        if self.clicks.offer(click).is_err() {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::warn!(dropped = n, "click queue full; clicks dropped");
            }
        }
    }

    /// Waits until every click queued so far is stored (tests, shutdown, benchmarks).
    pub async fn flush(&self) {
        self.clicks.flush().await;
    }
}

/// The clicks' side of the store's group-commit writer. Nobody waits for a click's answer.
struct Clicks {
    db: Db,
}

impl GroupWriter for Clicks {
    type Job = Click;
    type Written = usize;
    type Answer = ();

    async fn write(&self, clicks: Vec<Click>) -> usize {
        if let Err(e) = store_clicks(&self.db, &clicks).await {
            tracing::error!(error = %e, clicks = clicks.len(), "storing clicks failed; they are lost");
        }
        clicks.len()
    }

    async fn settle(&self, clicks: usize) -> Vec<()> {
        vec![(); clicks]
    }
}

async fn store_clicks(db: &Db, clicks: &[Click]) -> Result<(), DbError> {
    const COLS: usize = 7;
    let mut tx = db.begin().await?;
    for chunk in clicks.chunks(MAX_BINDS / COLS) {
        let mut q = sql(format!(
            "INSERT INTO clicks (tenant_id, link_id, visitor, ip_hash, user_agent, at, id) VALUES {}",
            values_placeholders(chunk.len(), COLS, 1)
        ));
        let base = tx.reserve_ids("click", chunk.len() as i64).await?;
        for (i, c) in chunk.iter().enumerate() {
            q.push_arg(c.tenant_id);
            q.push_arg(c.link_id);
            q.push_arg(c.visitor.clone());
            q.push_arg(c.ip_hash.clone());
            q.push_arg(c.user_agent.clone());
            q.push_arg(c.at);
            q.push_arg(base + i as i64);
        }
        tx.execute(&q).await?;
    }
    tx.commit().await
}
