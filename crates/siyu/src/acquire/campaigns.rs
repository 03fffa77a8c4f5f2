//! SMS recall campaigns (短信召回): an audience frozen in a segment snapshot, one or more
//! versions of the text (A/B variants) with an optional hold-out control group, content
//! checks before anything is sent, and a launch that turns the audience into outbox messages:
//! one per person, with tracking links in place of URLs, sent from the scheduled time within
//! the contact policy's window and under the provider's rate.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::codes;
use super::links::{self, NewLink};
use crate::engage::outbox::{self, Address, DispatchReport, NewMessage, Outbox, OutboxError};
use crate::engage::policy::Purpose;
use crate::know::phone::Phone;
use crate::know::segments::{self, SegmentError};
use crate::platform::crypto::FieldCipher;
use crate::platform::db::{Db, DbError, Reader, Value, sql};
use crate::platform::rows::Arg;

/// The variant name of the hold-out group, which is sent nothing.
pub const CONTROL: &str = "control";
/// Customers handled per transaction when launching.
const LAUNCH_CHUNK: usize = 5_000;
/// Words China's advertising law forbids in ads (absolute claims, medical claims); a tenant adds
/// its own per campaign.
pub const FORBIDDEN_WORDS: &[&str] = &[
    "国家级",
    "世界级",
    "最高级",
    "最佳",
    "第一品牌",
    "顶级",
    "极品",
    "万能",
    "绝对",
    "100%有效",
    "根治",
    "特效",
    "包治",
    "零风险",
    "史无前例",
    "永久",
];
/// Opt-out wordings carriers accept.
const OPT_OUT_MARKS: &[&str] = &[
    "拒收请回复R",
    "回T退订",
    "退订回T",
    "回TD退订",
    "退订回TD",
    "回R退订",
    "退订回R",
];
/// Parts past which a text is refused: it is a letter, not an SMS.
const MAX_PARTS: i64 = 6;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct VariantSpec {
    pub name: String,
    pub content: String,
    #[serde(default = "one")]
    pub weight: u32,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, Deserialize)]
pub struct NewCampaign {
    pub name: String,
    pub snapshot_id: i64,
    pub variants: Vec<VariantSpec>,
    #[serde(default)]
    pub holdout_percent: i64,
    pub seed: Option<String>,
    /// Where `{link}` in the text leads.
    pub target_url: Option<String>,
    /// The provider's approved template (Aliyun and Tencent send only templates).
    pub template_code: Option<String>,
    /// Phones never to send to in this campaign.
    #[serde(default)]
    pub exclude_phones: Vec<String>,
    /// Words to refuse on top of [`FORBIDDEN_WORDS`].
    #[serde(default)]
    pub forbidden_words: Vec<String>,
    /// Fen per billable part (default 4.5 fen, rounded to 5).
    pub cost_per_part: Option<i64>,
    /// Days after sending in which orders count towards the campaign (default 7).
    pub window_days: Option<i64>,
    /// Not sent before this time (default: now).
    pub scheduled_at: Option<i64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Campaign {
    pub id: i64,
    pub tenant_id: i64,
    pub name: String,
    pub snapshot_id: i64,
    pub variants: Vec<VariantSpec>,
    pub holdout_percent: i64,
    pub seed: String,
    pub target_url: Option<String>,
    pub template_code: Option<String>,
    pub cost_per_part: i64,
    pub window_days: i64,
    pub status: String,
    pub scheduled_at: i64,
    pub launched_at: Option<i64>,
    pub created_at: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum CampaignError {
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("campaign {0} not found")]
    NotFound(i64),
    #[error(transparent)]
    Segment(#[from] SegmentError),
    #[error(transparent)]
    Link(#[from] links::LinkError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    #[error(
        "the launch was interrupted (the server is shutting down); launching again sends only to those it missed"
    )]
    Interrupted,
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> CampaignError {
    CampaignError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// What a text is made of: plain text and links (replaced per recipient by tracking links).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Link(String),
}

/// Splits a text into pieces: `{link}` is the campaign's target, bare http(s) URLs are links
/// to themselves. Any other `{…}` is refused, so a typo never reaches a customer.
fn pieces(content: &str, target: Option<&str>) -> Result<Vec<Piece>, String> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut rest = content;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("{link}") {
            let t = target.ok_or("uses {link} but the campaign has no target_url")?;
            out.push(Piece::Text(std::mem::take(&mut text)));
            out.push(Piece::Link(t.to_string()));
            rest = after;
        } else if rest.starts_with('{') {
            let end = rest.find('}').map_or(rest.len(), |e| e + 1);
            return Err(format!(
                "{} is not a known placeholder (only {{link}})",
                &rest[..end]
            ));
        } else if rest.starts_with("http://") || rest.starts_with("https://") {
            // A URL ends at whitespace or the first character no URL has (Chinese text,
            // full-width punctuation).
            let end = rest
                .find(|c: char| c.is_whitespace() || !c.is_ascii() || c == '<' || c == '>')
                .unwrap_or(rest.len());
            let url = &rest[..end];
            links::check_target(url).map_err(|e| format!("link {url}: {e}"))?;
            out.push(Piece::Text(std::mem::take(&mut text)));
            out.push(Piece::Link(url.to_string()));
            rest = &rest[end..];
        } else {
            let c = rest.chars().next().unwrap_or_default();
            text.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out.push(Piece::Text(text));
    out.retain(|p| !matches!(p, Piece::Text(t) if t.is_empty()));
    Ok(out)
}

/// What the checks found in one variant's text.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ContentReport {
    pub variant: String,
    /// Characters as sent, with each link at its tracking-link length.
    pub chars: usize,
    pub parts: i64,
    pub links: usize,
}

/// Checks a variant's text the way carriers and the advertising law will: the 【signature】,
/// the opt-out line, forbidden words, placeholders, links, and its length in billable parts
/// once links are tracking links of `link_len` characters.
pub fn check_content(
    field: &str,
    variant: &str,
    content: &str,
    target: Option<&str>,
    extra_forbidden: &[String],
    link_len: usize,
) -> Result<ContentReport, CampaignError> {
    let c = content.trim();
    if c.is_empty() {
        return Err(invalid(field, "is empty"));
    }
    // 【 is 3 bytes: a closing 】 after byte 3 means the signature is not empty.
    let signed = (c.starts_with('【') && c.find('】').is_some_and(|e| e > 3))
        || (c.ends_with('】') && c.rfind('【').is_some());
    if !signed {
        return Err(invalid(
            field,
            "must begin (or end) with the 【signature】 registered with the provider",
        ));
    }
    if !OPT_OUT_MARKS.iter().any(|m| c.contains(m)) {
        return Err(invalid(
            field,
            "must say how to opt out, e.g. 拒收请回复R or 回T退订",
        ));
    }
    for w in FORBIDDEN_WORDS
        .iter()
        .copied()
        .chain(extra_forbidden.iter().map(String::as_str))
    {
        if !w.is_empty() && c.contains(w) {
            return Err(invalid(field, format!("contains the forbidden word {w:?}")));
        }
    }
    let ps = pieces(c, target).map_err(|r| invalid(field, r))?;
    let links = ps.iter().filter(|p| matches!(p, Piece::Link(_))).count();
    let chars: usize = ps
        .iter()
        .map(|p| match p {
            Piece::Text(t) => t.chars().count(),
            Piece::Link(_) => link_len,
        })
        .sum();
    let parts = crate::channels::sms::billable_parts(&"x".repeat(chars));
    if parts > MAX_PARTS {
        return Err(invalid(
            field,
            format!("is {chars} characters, {parts} billable parts; at most {MAX_PARTS}"),
        ));
    }
    Ok(ContentReport {
        variant: variant.to_string(),
        chars,
        parts,
        links,
    })
}

/// The variant a customer gets: the same for the same seed and customer, on every run.
pub fn assign(seed: &str, customer: i64, holdout_percent: i64, variants: &[VariantSpec]) -> String {
    let h = Sha256::digest(format!("{seed}:{customer}").as_bytes());
    let a = u64::from_be_bytes([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]]);
    let b = u64::from_be_bytes([h[8], h[9], h[10], h[11], h[12], h[13], h[14], h[15]]);
    if (a % 10_000) < (holdout_percent.clamp(0, 100) as u64) * 100 {
        return CONTROL.to_string();
    }
    let total: u64 = variants.iter().map(|v| v.weight as u64).sum();
    let mut pick = b % total.max(1);
    for v in variants {
        if pick < v.weight as u64 {
            return v.name.clone();
        }
        pick -= v.weight as u64;
    }
    variants.last().map(|v| v.name.clone()).unwrap_or_default()
}

/// Validates and stores a campaign; returns it with the content report of each variant.
pub async fn create(
    db: &Db,
    tenant: i64,
    c: &NewCampaign,
    link_len: usize,
    now: i64,
) -> Result<(Campaign, Vec<ContentReport>), CampaignError> {
    let name = c.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(invalid("name", "must be 1–100 characters"));
    }
    segments::snapshot_members(db, tenant, c.snapshot_id).await?;
    if !(1..=5).contains(&c.variants.len()) {
        return Err(invalid("variants", "a campaign has 1–5 variants"));
    }
    if !(0..=50).contains(&c.holdout_percent) {
        return Err(invalid("holdout_percent", "must be between 0 and 50"));
    }
    if let Some(t) = &c.target_url {
        links::check_target(t).map_err(|e| invalid("target_url", e.to_string()))?;
    }
    let mut names = HashSet::new();
    let mut reports = Vec::new();
    for (i, v) in c.variants.iter().enumerate() {
        let field = format!("variants[{i}]");
        let n = v.name.trim();
        if n.is_empty() || n.len() > 32 || n == CONTROL {
            return Err(invalid(
                format!("{field}.name"),
                "must be 1–32 characters and not \"control\"",
            ));
        }
        if !names.insert(n.to_string()) {
            return Err(invalid(
                format!("{field}.name"),
                format!("{n:?} is used twice"),
            ));
        }
        if v.weight == 0 || v.weight > 100 {
            return Err(invalid(format!("{field}.weight"), "must be 1–100"));
        }
        reports.push(check_content(
            &format!("{field}.content"),
            n,
            &v.content,
            c.target_url.as_deref(),
            &c.forbidden_words,
            link_len,
        )?);
    }
    let mut exclude = Vec::new();
    for (i, p) in c.exclude_phones.iter().enumerate() {
        let phone =
            Phone::parse(p).map_err(|e| invalid(format!("exclude_phones[{i}]"), e.to_string()))?;
        exclude.push(phone.as_str().to_string());
    }
    let cost = c.cost_per_part.unwrap_or(5);
    if !(0..=1_000).contains(&cost) {
        return Err(invalid("cost_per_part", "must be 0–1000 fen"));
    }
    let window = c.window_days.unwrap_or(7);
    if !(1..=90).contains(&window) {
        return Err(invalid("window_days", "must be 1–90"));
    }
    let seed = c
        .seed
        .clone()
        .unwrap_or_else(|| crate::platform::crypto::random_token(8));
    let variants: Vec<VariantSpec> = c
        .variants
        .iter()
        .map(|v| VariantSpec {
            name: v.name.trim().to_string(),
            content: v.content.trim().to_string(),
            weight: v.weight,
        })
        .collect();
    let variants_json = serde_json::to_string(&variants).unwrap_or_default();
    let exclude_json = serde_json::to_string(&exclude).unwrap_or_default();
    let mut tx = db.begin().await?;
    let id = tx.reserve_ids("campaign", 1).await?;
    tx.execute(
        &sql("INSERT INTO campaigns (id, tenant_id, name, snapshot_id, variants, holdout_percent, seed, target_url, \
              template_code, exclude_list, cost_per_part, window_days, status, scheduled_at, created_at) \
              VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'draft', $13, $14)")
            .bind(id)
            .bind(tenant)
            .bind(name)
            .bind(c.snapshot_id)
            .bind(variants_json)
            .bind(c.holdout_percent)
            .bind(seed)
            .bind(c.target_url.clone())
            .bind(c.template_code.clone())
            .bind(exclude_json)
            .bind(cost)
            .bind(window)
            .bind(c.scheduled_at.unwrap_or(now))
            .bind(now),
    )
    .await?;
    tx.commit().await?;
    Ok((get(db, tenant, id).await?, reports))
}

#[derive(sqlx::FromRow)]
struct CampaignRow {
    id: i64,
    tenant_id: i64,
    name: String,
    snapshot_id: i64,
    variants: String,
    holdout_percent: i64,
    seed: String,
    target_url: Option<String>,
    template_code: Option<String>,
    cost_per_part: i64,
    window_days: i64,
    status: String,
    scheduled_at: i64,
    launched_at: Option<i64>,
    created_at: i64,
}

const COLUMNS: &str = "id, tenant_id, name, snapshot_id, variants, holdout_percent, seed, target_url, template_code, \
                       cost_per_part, window_days, status, scheduled_at, launched_at, created_at";

impl From<CampaignRow> for Campaign {
    fn from(r: CampaignRow) -> Self {
        Campaign {
            id: r.id,
            tenant_id: r.tenant_id,
            name: r.name,
            snapshot_id: r.snapshot_id,
            variants: serde_json::from_str(&r.variants).unwrap_or_default(),
            holdout_percent: r.holdout_percent,
            seed: r.seed,
            target_url: r.target_url,
            template_code: r.template_code,
            cost_per_part: r.cost_per_part,
            window_days: r.window_days,
            status: r.status,
            scheduled_at: r.scheduled_at,
            launched_at: r.launched_at,
            created_at: r.created_at,
        }
    }
}

pub async fn get(db: &Db, tenant: i64, id: i64) -> Result<Campaign, CampaignError> {
    let row: Option<CampaignRow> = db
        .fetch_optional(
            &sql(format!(
                "SELECT {COLUMNS} FROM campaigns WHERE tenant_id = $1 AND id = $2"
            ))
            .bind(tenant)
            .bind(id),
        )
        .await?;
    row.map(Campaign::from).ok_or(CampaignError::NotFound(id))
}

pub async fn list(db: &Db, tenant: i64) -> Result<Vec<Campaign>, CampaignError> {
    let rows: Vec<CampaignRow> = db
        .fetch_all(
            &sql(format!(
                "SELECT {COLUMNS} FROM campaigns WHERE tenant_id = $1 ORDER BY id DESC LIMIT 200"
            ))
            .bind(tenant),
        )
        .await?;
    Ok(rows.into_iter().map(Campaign::from).collect())
}

/// What a launch decided for the audience.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct LaunchReport {
    pub audience: u64,
    /// Written to the outbox (the policy may still cap or defer them when sending).
    pub queued: u64,
    /// Eligible, and held out on purpose.
    pub control: u64,
    pub no_phone: u64,
    /// The number already chosen for another customer in this campaign.
    pub duplicate: u64,
    pub excluded: u64,
    pub unsubscribed: u64,
}

/// Turns the audience into outbox messages. Safe to run again after a crash: customers already
/// recorded are skipped, and each chunk commits its links, messages and recipients together.
pub async fn launch(
    db: &Db,
    cipher: &FieldCipher,
    public_url: &str,
    tenant: i64,
    id: i64,
    now: i64,
) -> Result<LaunchReport, CampaignError> {
    launch_then(db, cipher, public_url, tenant, id, now, None).await
}

/// [`launch`] beside this process's outbox. A campaign due now, on SQLite through a provider
/// that records into this database (`log`), has each chunk sent in the transaction that writes it
/// ([`Outbox::write_and_send_in`]); otherwise the dispatcher is woken as each chunk commits,
/// and sends it while the next is written.
pub async fn launch_then(
    db: &Db,
    cipher: &FieldCipher,
    public_url: &str,
    tenant: i64,
    id: i64,
    now: i64,
    outbox: Option<&Outbox>,
) -> Result<LaunchReport, CampaignError> {
    let c = get(db, tenant, id).await?;
    if c.status == "launched" {
        return launch_report(db, tenant, id).await;
    }
    let (_, members) = segments::snapshot_members(db, tenant, c.snapshot_id).await?;
    let exclude: HashSet<String> = {
        let (list,): (Option<String>,) = db
            .fetch_one(
                &sql("SELECT exclude_list FROM campaigns WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant)
                    .bind(id),
            )
            .await?;
        let phones: Vec<String> = list
            .and_then(|l| serde_json::from_str(&l).ok())
            .unwrap_or_default();
        phones.iter().map(|p| cipher.lookup_hash(p)).collect()
    };
    let unsubscribed: HashSet<String> = db
        .fetch_all::<(String,)>(
            &sql("SELECT address_hash FROM unsubscribes WHERE tenant_id = $1 AND channel = 'sms'")
                .bind(tenant),
        )
        .await?
        .into_iter()
        .map(|(a,)| a)
        .collect();
    // A relaunch after a crash: who is done, and which numbers they took.
    let done: HashSet<i64> = db
        .fetch_all::<(i64,)>(
            &sql("SELECT customer_id FROM campaign_recipients WHERE tenant_id = $1 AND campaign_id = $2")
                .bind(tenant)
                .bind(id),
        )
        .await?
        .into_iter()
        .map(|(c,)| c)
        .collect();
    let taken: HashSet<String> = db
        .fetch_all::<(String,)>(
            &sql("SELECT address_hash FROM outbox WHERE tenant_id = $1 AND campaign_id = $2")
                .bind(tenant)
                .bind(id),
        )
        .await?
        .into_iter()
        .map(|(a,)| a)
        .collect();
    let variant_pieces: HashMap<String, Vec<Piece>> = c
        .variants
        .iter()
        .map(|v| {
            let p = pieces(&v.content, c.target_url.as_deref())
                .unwrap_or_else(|_| vec![Piece::Text(v.content.clone())]);
            (v.name.clone(), p)
        })
        .collect();
    let ids: Vec<i64> = members
        .iter()
        .map(i64::from)
        .filter(|c| !done.contains(c))
        .collect();
    // Each chunk is read (its numbers, on a pooled connection), decided and rendered while the
    // chunk before is written: in WAL mode a reader does not wait for SQLite's writer (nor on
    // PostgreSQL), and the writer is held only while it writes.
    // A campaign due now is sent as it is written when the outbox can
    // ([`Outbox::sends_where_written`]); otherwise each chunk is queued and the dispatcher woken.
    let sender = outbox.filter(|o| c.scheduled_at <= now && o.sends_where_written());
    let plan = Arc::new(LaunchPlan {
        db: db.clone(),
        tenant,
        campaign: c.clone(),
        public_url: public_url.to_owned(),
        variant_pieces,
        exclude,
        unsubscribed,
    });
    // Each chunk is prepared on a task of its own, so that on a multi-threaded runtime it runs
    // on the other core while this task writes the chunk before: the writes hold SQLite's
    // handle on this thread, and a preparation joined to them ran only while they waited.
    let prepare = |chunk: Vec<i64>, taken: HashSet<String>| {
        let plan = Arc::clone(&plan);
        Preparing(tokio::spawn(
            async move { plan.prepare(&chunk, taken).await },
        ))
    };
    let mut chunks = ids.chunks(LAUNCH_CHUNK).map(<[i64]>::to_vec);
    let mut next = chunks.next().map(|chunk| prepare(chunk, taken));
    while let Some(mut preparing) = next.take() {
        let (prepared, taken) = match (&mut preparing.0).await {
            Ok(done) => done?,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => return Err(CampaignError::Interrupted),
        };
        next = chunks.next().map(|chunk| prepare(chunk, taken));
        let sent = write_chunk(db, tenant, id, prepared, now, sender).await?;
        // The dispatcher is woken as soon as this chunk is committed.
        if let Some(o) = outbox {
            match sent {
                Some(r) => o.count_sent(r),
                None => o.notify(),
            }
        }
    }
    db.execute(
        &sql("UPDATE campaigns SET status = 'launched', launched_at = $3 WHERE tenant_id = $1 AND id = $2 AND launched_at IS NULL")
            .bind(tenant)
            .bind(id)
            .bind(now),
    )
    .await?;
    launch_report(db, tenant, id).await
}

/// Each customer's phone as the outbox stores it (hash and ciphertext, straight from the
/// identity: nothing decrypted), the one they gave first when they gave several.
async fn first_numbers(
    db: &Db,
    tenant: i64,
    customers: &[i64],
) -> Result<HashMap<i64, Address>, DbError> {
    let rows: Vec<(i64, String, Option<String>, i64)> = db
        .fetch_in(
            "SELECT customer_id, ikey, value_enc, first_seen FROM identities \
             WHERE tenant_id = $1 AND kind = 'phone' AND customer_id",
            &[tenant.into()],
            customers.iter().map(|&c| Value::from(c)).collect(),
        )
        .await?;
    let mut first: HashMap<i64, (i64, Address)> = HashMap::new();
    for (cust, ikey, enc, seen) in rows {
        let Some(address) = Address::of_identity(&ikey, enc) else {
            continue;
        };
        if first.get(&cust).is_none_or(|(earlier, _)| seen < *earlier) {
            first.insert(cust, (seen, address));
        }
    }
    Ok(first.into_iter().map(|(c, (_, a))| (c, a)).collect())
}

/// A chunk being prepared on a task of its own. It only reads, but it does not outlive its
/// launch: a launch that ends early (an error, a dropped request) stops it.
struct Preparing(tokio::task::JoinHandle<Result<(PreparedChunk, HashSet<String>), CampaignError>>);

impl Drop for Preparing {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What every chunk of one launch is decided against.
struct LaunchPlan {
    db: Db,
    tenant: i64,
    campaign: Campaign,
    public_url: String,
    variant_pieces: HashMap<String, Vec<Piece>>,
    exclude: HashSet<String>,
    unsubscribed: HashSet<String>,
}

/// One chunk of a launch, decided and rendered, ready to be written.
struct PreparedChunk {
    /// (customer, variant, outcome) for every customer of the chunk.
    recipients: Vec<(i64, String, &'static str)>,
    links: Vec<NewLink>,
    /// One unused code per link, already in the messages' text.
    codes: Vec<String>,
    messages: outbox::Staged,
}

impl LaunchPlan {
    /// Reads the chunk's numbers, decides each customer's outcome (noting the numbers it takes
    /// in `taken`, which it hands back), draws the tracking links' codes and renders the
    /// messages; writes nothing.
    async fn prepare(
        &self,
        chunk: &[i64],
        mut taken: HashSet<String>,
    ) -> Result<(PreparedChunk, HashSet<String>), CampaignError> {
        let c = &self.campaign;
        let first = first_numbers(&self.db, self.tenant, chunk).await?;
        let mut recipients: Vec<(i64, String, &'static str)> = Vec::with_capacity(chunk.len());
        let mut to_send: Vec<(i64, Address, String)> = Vec::new();
        for &cust in chunk {
            let variant = assign(&c.seed, cust, c.holdout_percent, &c.variants);
            let outcome = match first.get(&cust) {
                None => "no_phone",
                Some(address) => {
                    let hash = &address.hash;
                    if self.exclude.contains(hash) {
                        "excluded"
                    } else if self.unsubscribed.contains(hash) {
                        "unsubscribed"
                    } else if !taken.insert(hash.clone()) {
                        "duplicate"
                    } else if variant == CONTROL {
                        "control"
                    } else {
                        to_send.push((cust, address.clone(), variant.clone()));
                        "queued"
                    }
                }
            };
            recipients.push((cust, variant, outcome));
        }
        // Tracking links: one per link in the text, per recipient.
        let mut links = Vec::new();
        for (cust, _, variant) in &to_send {
            for p in self.variant_pieces.get(variant).into_iter().flatten() {
                if let Piece::Link(target) = p {
                    links.push(NewLink {
                        target: target.clone(),
                        channel: "sms".into(),
                        campaign_id: Some(c.id),
                        variant: Some(variant.clone()),
                        customer_id: Some(*cust),
                        batch_id: None,
                    });
                }
            }
        }
        let codes = codes::unused(
            Reader::Pool(&self.db),
            "links",
            links.len(),
            codes::link_code,
        )
        .await?;
        let mut code = codes.iter();
        let mut messages = Vec::with_capacity(to_send.len());
        for (cust, address, variant) in to_send {
            let mut content = String::new();
            let mut first_link = None;
            for p in self.variant_pieces.get(&variant).into_iter().flatten() {
                match p {
                    Piece::Text(t) => content.push_str(t),
                    Piece::Link(_) => {
                        let url = code
                            .next()
                            .map(|code| format!("{}/t/{code}", self.public_url))
                            .unwrap_or_default();
                        content.push_str(&url);
                        first_link.get_or_insert(url);
                    }
                }
            }
            messages.push(NewMessage {
                tenant_id: self.tenant,
                purpose: Purpose::Marketing,
                customer_id: Some(cust),
                address,
                content,
                template_code: c.template_code.clone(),
                // A template's one variable is the link; text sent as written needs none.
                template_params: first_link
                    .filter(|_| c.template_code.is_some())
                    .map(|l| vec![("link".to_string(), l)])
                    .unwrap_or_default(),
                dedupe_key: format!("campaign:{}:{cust}", c.id),
                campaign_id: Some(c.id),
                variant: Some(variant),
                not_before: c.scheduled_at,
            });
        }
        Ok((
            PreparedChunk {
                recipients,
                links,
                codes,
                messages: outbox::Staged::of(messages),
            },
            taken,
        ))
    }
}

/// Writes one prepared chunk of a launch in one transaction: each customer's outcome, and for
/// those queued their tracking links and message, sent in the same transaction when `sender`
/// sends where it writes (then what it did comes back).
async fn write_chunk(
    db: &Db,
    tenant: i64,
    id: i64,
    p: PreparedChunk,
    now: i64,
    sender: Option<&Outbox>,
) -> Result<Option<DispatchReport>, CampaignError> {
    let mut tx = db.begin().await?;
    links::insert_in(&mut tx, tenant, &p.links, &p.codes, now).await?;
    let sent = match sender {
        Some(o) => o.write_and_send_in(&mut tx, &p.messages, now).await?,
        None => {
            outbox::enqueue_staged_in(&mut tx, &p.messages, now).await?;
            None
        }
    };
    let rows: Vec<[Arg; 5]> = p
        .recipients
        .iter()
        .map(|(cust, variant, outcome)| {
            [
                tenant.into(),
                id.into(),
                (*cust).into(),
                variant.as_str().into(),
                (*outcome).into(),
            ]
        })
        .collect();
    tx.insert_rows(
        "INSERT INTO campaign_recipients (tenant_id, campaign_id, customer_id, variant, outcome)",
        "ON CONFLICT (tenant_id, campaign_id, customer_id) DO NOTHING",
        &rows,
    )
    .await?;
    tx.commit().await?;
    Ok(sent)
}

/// The launch's outcome counts, from the recipients recorded.
pub async fn launch_report(db: &Db, tenant: i64, id: i64) -> Result<LaunchReport, CampaignError> {
    let rows: Vec<(String, i64)> = db
        .fetch_all(
            &sql("SELECT outcome, COUNT(*) FROM campaign_recipients WHERE tenant_id = $1 AND campaign_id = $2 GROUP BY outcome")
                .bind(tenant)
                .bind(id),
        )
        .await?;
    let mut r = LaunchReport::default();
    for (outcome, n) in rows {
        let n = n as u64;
        r.audience += n;
        match outcome.as_str() {
            "queued" => r.queued = n,
            "control" => r.control = n,
            "no_phone" => r.no_phone = n,
            "duplicate" => r.duplicate = n,
            "excluded" => r.excluded = n,
            "unsubscribed" => r.unsubscribed = n,
            _ => {}
        }
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = "【茶小铺】老朋友，您的20元回归券已到账，戳 {link} 领取，拒收请回复R";

    #[test]
    fn content_checks_name_what_is_wrong() {
        let r = check_content(
            "variants[0].content",
            "A",
            OK,
            Some("https://shop.example.cn/"),
            &[],
            30,
        )
        .expect("ok");
        assert_eq!(r.links, 1);
        assert_eq!(r.parts, 1);
        let cases = [
            ("老朋友回来看看，拒收请回复R", "signature"),
            ("【茶小铺】老朋友回来看看", "opt out"),
            (
                "【茶小铺】全网最佳，顶级好茶，拒收请回复R",
                "forbidden word \"最佳\"",
            ),
            (
                "【茶小铺】{name}您好，拒收请回复R",
                "{name} is not a known placeholder",
            ),
            ("【茶小铺】戳 javascript:alert(1) 拒收请回复R", ""),
        ];
        for (text, want) in cases {
            let e = check_content("variants[0].content", "A", text, None, &[], 30);
            if want.is_empty() {
                // Not a URL at all: plain text, allowed.
                assert!(e.is_ok(), "{text}");
                continue;
            }
            let msg = e.expect_err(text).to_string();
            assert!(msg.starts_with("variants[0].content:"), "{msg}");
            assert!(msg.contains(want), "{msg} lacks {want}");
        }
        let long = format!("【茶小铺】{}拒收请回复R", "字".repeat(500));
        assert!(check_content("c", "A", &long, None, &[], 30).is_err());
        let custom = check_content("c", "A", OK, Some("https://a.cn/"), &["回归券".into()], 30);
        assert!(custom.is_err());
    }

    #[test]
    fn bare_urls_become_links_and_parts_count_them() {
        let p = pieces("【店】看 https://a.cn/x?y=1，拒收请回复R", None).expect("pieces");
        assert_eq!(p[1], Piece::Link("https://a.cn/x?y=1".into()));
        let r = check_content(
            "c",
            "A",
            "【店】看 https://a.cn/x?y=1，拒收请回复R",
            None,
            &[],
            60,
        )
        .expect("ok");
        assert_eq!(r.chars, 5 + 60 + 7);
        assert_eq!(r.parts, 2);
    }

    #[test]
    fn assignment_is_deterministic_and_follows_weights() {
        let vs = vec![
            VariantSpec {
                name: "A".into(),
                content: String::new(),
                weight: 1,
            },
            VariantSpec {
                name: "B".into(),
                content: String::new(),
                weight: 3,
            },
        ];
        let mut counts: HashMap<String, i64> = HashMap::new();
        for c in 0..40_000 {
            let v = assign("seed", c, 10, &vs);
            assert_eq!(v, assign("seed", c, 10, &vs));
            *counts.entry(v).or_default() += 1;
        }
        let share = |k: &str| counts.get(k).copied().unwrap_or(0) as f64 / 40_000.0;
        assert!((share(CONTROL) - 0.10).abs() < 0.01, "{counts:?}");
        assert!((share("A") - 0.225).abs() < 0.01, "{counts:?}");
        assert!((share("B") - 0.675).abs() < 0.01, "{counts:?}");
        // Another seed reshuffles.
        let moved = (0..1000)
            .filter(|&c| assign("seed", c, 10, &vs) != assign("other", c, 10, &vs))
            .count();
        assert!(moved > 200);
    }
}
