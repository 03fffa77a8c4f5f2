//! Launching a campaign: the audience, chunk by chunk, turned into recipient outcomes, tracking
//! links and outbox messages, resumable after a crash.

use crate::know::CustomerId;
use crate::platform::TenantId;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::*;
use crate::acquire::codes;
use crate::acquire::links::{self, NewLink};
use crate::engage::outbox::{self, Address, DispatchReport, NewMessage, Outbox};
use crate::engage::policy::Purpose;
use crate::know::segments;
use crate::platform::crypto::FieldCipher;
use crate::platform::db::{Db, DbError, Reader, Value, sql};
use crate::platform::rows::Arg;

/// Customers handled per transaction when launching.
pub(super) const LAUNCH_CHUNK: usize = 5_000;

/// Turns the audience into outbox messages. Safe to run again after a crash: customers already
/// recorded are skipped, and each chunk commits its links, messages and recipients together.
pub async fn launch(
    db: &Db,
    cipher: &FieldCipher,
    public_url: &str,
    tenant: TenantId,
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
    tenant: TenantId,
    id: i64,
    now: i64,
    outbox: Option<&Outbox>,
) -> Result<LaunchReport, CampaignError> {
    let c = get(db, tenant, id).await?;
    if c.status == CampaignStatus::Launched {
        return launch_report(db, tenant, id).await;
    }
    // A send of the brand's approval size waits for a second person, whatever asks for it.
    if let Some((audience, from)) = super::approval::waits(db, tenant, &c).await? {
        return Err(CampaignError::AwaitingApproval { id, audience, from });
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
        let lookup = cipher.lookup(tenant);
        phones.iter().map(|p| lookup.hash(p)).collect()
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
    let ids: Vec<CustomerId> = members
        .iter()
        .map(i64::from)
        .filter(|c| !done.contains(c))
        .map(CustomerId::new)
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
    let prepare = |chunk: Vec<CustomerId>, taken: HashSet<String>| {
        let plan = Arc::clone(&plan);
        Preparing(tokio::spawn(
            async move { plan.prepare(&chunk, taken).await },
        ))
    };
    let mut chunks = ids.chunks(LAUNCH_CHUNK).map(<[CustomerId]>::to_vec);
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
pub(super) async fn first_numbers(
    db: &Db,
    tenant: TenantId,
    customers: &[CustomerId],
) -> Result<HashMap<CustomerId, Address>, DbError> {
    let rows: Vec<(CustomerId, String, Option<String>, i64)> = db
        .fetch_in(
            "SELECT customer_id, ikey, value_enc, first_seen FROM identities \
             WHERE tenant_id = $1 AND kind = 'phone' AND customer_id",
            &[tenant.into()],
            customers.iter().map(|&c| Value::from(c)).collect(),
        )
        .await?;
    let mut first: HashMap<CustomerId, (i64, Address)> = HashMap::new();
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
pub(super) struct Preparing(
    pub(super) tokio::task::JoinHandle<Result<(PreparedChunk, HashSet<String>), CampaignError>>,
);

impl Drop for Preparing {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What every chunk of one launch is decided against.
pub(super) struct LaunchPlan {
    pub(super) db: Db,
    pub(super) tenant: TenantId,
    pub(super) campaign: Campaign,
    pub(super) public_url: String,
    pub(super) variant_pieces: HashMap<String, Vec<Piece>>,
    pub(super) exclude: HashSet<String>,
    pub(super) unsubscribed: HashSet<String>,
}

/// One chunk of a launch, decided and rendered, ready to be written.
pub(super) struct PreparedChunk {
    /// (customer, variant, outcome) for every customer of the chunk.
    pub(super) recipients: Vec<(CustomerId, String, &'static str)>,
    pub(super) links: Vec<NewLink>,
    /// One unused code per link, already in the messages' text.
    pub(super) codes: Vec<String>,
    pub(super) messages: outbox::Staged,
}

impl LaunchPlan {
    /// Reads the chunk's numbers, decides each customer's outcome (noting the numbers it takes
    /// in `taken`, which it hands back), draws the tracking links' codes and renders the
    /// messages; writes nothing.
    async fn prepare(
        &self,
        chunk: &[CustomerId],
        mut taken: HashSet<String>,
    ) -> Result<(PreparedChunk, HashSet<String>), CampaignError> {
        let c = &self.campaign;
        let first = first_numbers(&self.db, self.tenant, chunk).await?;
        let mut recipients: Vec<(CustomerId, String, &'static str)> =
            Vec::with_capacity(chunk.len());
        let mut to_send: Vec<(CustomerId, Address, String)> = Vec::new();
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
pub(super) async fn write_chunk(
    db: &Db,
    tenant: TenantId,
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
