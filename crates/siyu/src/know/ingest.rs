//! Group commit for event ingestion.
//!
//! Every `POST /api/v1/events` must be durable before it is answered. The store's group-commit
//! writer (`siyu_store::group_commit`) takes every batch that is waiting, writes them all in one
//! transaction, commits once, brings the audience index up to date and only then answers each
//! request. Under load the groups grow by themselves; when idle a request is written alone.

use crate::platform::TenantId;
use crate::platform::refusal::{Refusal, Refuse};
use std::collections::BTreeMap;

use std::sync::Arc;

use siyu_store::group_commit::{GroupCommit, GroupWriter};

use super::audience::{Audiences, EventsWritten};
use super::events::{Event, EventOutcome, KeyedEvent, store_events_in};
use crate::platform::clock::now_ms;
use crate::platform::crypto::FieldCipher;
use crate::platform::db::{Db, DbResult};

/// Events taken into one transaction at most (a group stops growing past this).
pub const GROUP_EVENTS: usize = 5_000;

struct Job {
    tenant_id: TenantId,
    events: Vec<KeyedEvent>,
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("storing events failed: {0}")]
    Store(String),
    #[error("the event writer has stopped")]
    Stopped,
}

impl Refuse for IngestError {
    fn refusal(&self) -> Refusal {
        Refusal::Internal
    }
}

/// A handle to the writer task; cheap to clone.
#[derive(Clone, Debug)]
pub struct EventWriter {
    jobs: GroupCommit<Events>,
    cipher: FieldCipher,
}

impl EventWriter {
    /// Starts the writer on the current runtime; after each commit it brings the audience
    /// index up to date before answering.
    pub fn start(db: Db, cipher: FieldCipher, audiences: Option<Arc<Audiences>>) -> EventWriter {
        Self::start_with(db, cipher, GROUP_EVENTS, audiences)
    }

    /// Starts a writer whose groups stop growing at `group_events` (0: one request per
    /// transaction, the baseline `siyu bench` compares against).
    pub fn start_with(
        db: Db,
        cipher: FieldCipher,
        group_events: usize,
        audiences: Option<Arc<Audiences>>,
    ) -> EventWriter {
        // A short queue: past it, requests wait in their handlers (backpressure), not in memory here.
        let jobs = GroupCommit::start(Events { db, audiences }, group_events, 64);
        EventWriter { jobs, cipher }
    }

    /// Stores a tenant's checked events; returns after they are committed.
    pub async fn write(
        &self,
        tenant_id: TenantId,
        events: Vec<Event>,
    ) -> Result<EventOutcome, IngestError> {
        if events.is_empty() {
            return Ok(EventOutcome::default());
        }
        // Keyed here, on the caller's task, so that many requests hash and encrypt at once
        // and the single writer only writes.
        let lookup = self.cipher.lookup(tenant_id);
        let events = events
            .into_iter()
            .map(|e| KeyedEvent::new(e, &self.cipher, &lookup))
            .collect();
        match self.jobs.submit(Job { tenant_id, events }).await {
            Ok(Ok(o)) => Ok(o),
            Ok(Err(e)) => Err(IngestError::Store(e)),
            Err(_) => Err(IngestError::Stopped),
        }
    }
}

/// The events' side of the group-commit writer.
struct Events {
    db: Db,
    audiences: Option<Arc<Audiences>>,
}

/// A written group on its way to being answered.
struct Written {
    outcomes: Vec<Result<EventOutcome, String>>,
    touched: Vec<(TenantId, EventsWritten)>,
    write: u64,
}

impl GroupWriter for Events {
    type Job = Job;
    type Written = Written;
    type Answer = Result<EventOutcome, String>;

    fn weight(job: &Job) -> usize {
        job.events.len()
    }

    async fn write(&self, jobs: Vec<Job>) -> Written {
        let work: Vec<(TenantId, Vec<KeyedEvent>)> =
            jobs.into_iter().map(|j| (j.tenant_id, j.events)).collect();
        // Numbered before it begins, for the audience index (see `Audiences::events_written`).
        let write = self.audiences.as_ref().map_or(0, |a| a.begin_write());
        let (outcomes, touched) = write_isolated(&self.db, &Arc::new(work)).await;
        Written {
            outcomes,
            touched,
            write,
        }
    }

    /// Brings the audience index up to date with the committed group, in commit order, before
    /// its requests are answered: a segment read after a `202` sees the events it acknowledged.
    /// The index reads run on other pooled connections while the next group is written.
    async fn settle(&self, g: Written) -> Vec<Self::Answer> {
        if let Some(a) = &self.audiences {
            let (a, touched, write) = (a.clone(), g.touched, g.write);
            // The events are stored whatever happens to the index: a panic there fails no
            // request and stops no writer.
            if let Err(e) = tokio::spawn(update_index(a, touched, write)).await {
                tracing::error!(error = %e, "audience index update panicked after events");
            }
        }
        g.outcomes
    }
}

/// One committed group's changes to the audience index. A stale index is repaired by the
/// next rebuild, and a customer whose reload failed is reloaded with its next event.
async fn update_index(a: Arc<Audiences>, written: Vec<(TenantId, EventsWritten)>, write: u64) {
    for (tenant, w) in written {
        if let Err(e) = a.events_written(tenant, &w, write).await {
            tracing::error!(tenant = %tenant, error = %e, "audience index not updated after events");
        }
    }
}

/// Writes the group in one transaction; if that fails, each job alone, so that one bad request
/// (or one tenant's failure) costs only its own answer. A panic in a write fails only the
/// requests it was writing; the writer goes on.
type Outcomes = (
    Vec<Result<EventOutcome, String>>,
    Vec<(TenantId, EventsWritten)>,
);

async fn write_isolated(
    db: &Db,
    work: &std::sync::Arc<Vec<(TenantId, Vec<KeyedEvent>)>>,
) -> Outcomes {
    let (d, w) = (db.clone(), work.clone());
    let joined = tokio::spawn(async move { write_group(&d, &w).await }).await;
    match joined {
        Ok(Ok((outcomes, touched))) => return (outcomes.into_iter().map(Ok).collect(), touched),
        Ok(Err(e)) if work.len() == 1 => return (vec![Err(e.to_string())], Vec::new()),
        Err(e) if work.len() == 1 => {
            return (vec![Err(format!("event writer panicked: {e}"))], Vec::new());
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, jobs = work.len(), "event group failed; writing its requests one by one")
        }
        Err(e) => {
            tracing::error!(error = %e, jobs = work.len(), "event group panicked; writing its requests one by one")
        }
    }
    let mut out = Vec::with_capacity(work.len());
    let mut all_touched = Vec::new();
    for job in work.iter() {
        let single = std::sync::Arc::new(vec![job.clone()]);
        let (d, w) = (db.clone(), single.clone());
        out.push(
            match tokio::spawn(async move { write_group(&d, &w).await }).await {
                Ok(Ok((mut o, touched))) => {
                    all_touched.extend(touched);
                    Ok(o.pop().unwrap_or_default())
                }
                Ok(Err(e)) => Err(e.to_string()),
                Err(e) => Err(format!("event writer panicked: {e}")),
            },
        );
    }
    (out, all_touched)
}

/// Writes every job in one transaction, tenants in id order (so that writers on other processes
/// take the tenant locks in the same order), and returns each job's outcome.
async fn write_group(
    db: &Db,
    jobs: &[(TenantId, Vec<KeyedEvent>)],
) -> DbResult<(Vec<EventOutcome>, Vec<(TenantId, EventsWritten)>)> {
    let now = now_ms();
    let mut by_tenant: BTreeMap<TenantId, Vec<usize>> = BTreeMap::new();
    for (i, (tenant, _)) in jobs.iter().enumerate() {
        by_tenant.entry(*tenant).or_default().push(i);
    }
    let mut outcomes = vec![EventOutcome::default(); jobs.len()];
    let mut touched = Vec::new();
    let mut tx = db.begin().await?;
    for (tenant, idx) in by_tenant {
        tx.lock_tenant(tenant).await?;
        // One tenant's jobs as one batch: a repeated id across two requests is a duplicate in
        // the later one, as it would be had they come one after the other.
        let events: Vec<&KeyedEvent> = idx.iter().flat_map(|&i| jobs[i].1.iter()).collect();
        let (stored, t) = store_events_in(&mut tx, tenant, &events, now).await?;
        touched.push((tenant, t));
        let mut at = 0;
        for &i in &idx {
            let len = jobs[i].1.len();
            let s = stored[at..at + len].iter().filter(|s| **s).count() as u64;
            outcomes[i] = EventOutcome {
                stored: s,
                duplicates: len as u64 - s,
            };
            at += len;
        }
    }
    tx.commit().await?;
    Ok((outcomes, touched))
}
