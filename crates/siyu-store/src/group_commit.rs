//! Group commit: one writer task takes every job that is waiting, stores them together (one
//! transaction, one commit), and only then answers each. Under load the groups grow by
//! themselves; when idle a job is written alone, at once. SQLite has one writer and PostgreSQL's
//! writers of a tenant queue on its lock, so committing each request on its own makes the lock
//! the bottleneck.
//!
//! A writer says how to store a group ([`GroupWriter::write`]) and what to do between the commit
//! and the answers ([`GroupWriter::settle`]). `settle` runs on a second task, in commit order,
//! while the next group is written: work that must be done before a request is answered (the
//! audience index after events) then overlaps the next commit instead of holding the writer idle.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

/// What a group-commit writer stores.
pub trait GroupWriter: Send + Sync + 'static {
    /// One request's work.
    type Job: Send + 'static;
    /// What a group's write leaves for [`GroupWriter::settle`].
    type Written: Send + 'static;
    /// One request's answer.
    type Answer: Send + 'static;

    /// How much a job adds to a group's size (a batch of events counts its events).
    fn weight(_job: &Self::Job) -> usize {
        1
    }

    /// Stores the jobs, in one transaction where it can. Failures are the writer's to answer:
    /// `settle` must give one answer per job, in order.
    fn write(&self, jobs: Vec<Self::Job>) -> impl Future<Output = Self::Written> + Send;

    /// After the commit, before the answers: returns one answer per job of the group.
    fn settle(&self, written: Self::Written) -> impl Future<Output = Vec<Self::Answer>> + Send;
}

/// The writer task stopped (the runtime is shutting down, or the task panicked).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the group-commit writer has stopped")]
pub struct Stopped;

/// The queue is full: an [`GroupCommit::offer`] that would have to wait is refused instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the group-commit queue is full")]
pub struct Full;

enum Queued<W: GroupWriter> {
    Job(W::Job, Option<oneshot::Sender<W::Answer>>),
    /// Answered once everything queued before it is settled.
    Flush(oneshot::Sender<()>),
}

/// A handle to a running writer; cheap to clone.
pub struct GroupCommit<W: GroupWriter> {
    queue: mpsc::Sender<Queued<W>>,
}

impl<W: GroupWriter> Clone for GroupCommit<W> {
    fn clone(&self) -> Self {
        GroupCommit {
            queue: self.queue.clone(),
        }
    }
}

impl<W: GroupWriter> std::fmt::Debug for GroupCommit<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit")
            .field(
                "waiting",
                &(self.queue.max_capacity() - self.queue.capacity()),
            )
            .finish()
    }
}

impl<W: GroupWriter> GroupCommit<W> {
    /// Starts the writer on the current runtime. A group stops growing once its jobs weigh
    /// `group` (0: one job per group). Past `queue` waiting jobs, [`submit`](Self::submit) waits
    /// in its caller (backpressure) and [`offer`](Self::offer) refuses.
    pub fn start(writer: W, group: usize, queue: usize) -> Self {
        let (tx, rx) = mpsc::channel(queue.max(1));
        tokio::spawn(run(Arc::new(writer), rx, group));
        GroupCommit { queue: tx }
    }

    /// Queues a job and waits for its answer, which comes after its group is committed and
    /// settled.
    pub async fn submit(&self, job: W::Job) -> Result<W::Answer, Stopped> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Queued::Job(job, Some(reply)))
            .await
            .map_err(|_| Stopped)?;
        answer.await.map_err(|_| Stopped)
    }

    /// Queues a job without waiting and without an answer; refused when the queue is full.
    pub fn offer(&self, job: W::Job) -> Result<(), Full> {
        self.queue
            .try_send(Queued::Job(job, None))
            .map_err(|_| Full)
    }

    /// Waits until every job queued so far is written and settled.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.queue.send(Queued::Flush(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

/// A written group on its way to its answers (nothing written: a flush alone).
struct Group<W: GroupWriter> {
    written: Option<W::Written>,
    replies: Vec<Option<oneshot::Sender<W::Answer>>>,
    flushes: Vec<oneshot::Sender<()>>,
}

async fn run<W: GroupWriter>(writer: Arc<W>, mut rx: mpsc::Receiver<Queued<W>>, group: usize) {
    // A queue of one: at most two written groups wait for their answers.
    let (written_tx, written_rx) = mpsc::channel(1);
    let settling = tokio::spawn(settle_in_order(writer.clone(), written_rx));
    while let Some(first) = rx.recv().await {
        let mut jobs = Vec::new();
        let mut replies = Vec::new();
        let mut flushes = Vec::new();
        let mut weight = 0;
        let mut next = Some(first);
        while let Some(q) = next.take() {
            match q {
                Queued::Job(job, reply) => {
                    weight += W::weight(&job);
                    jobs.push(job);
                    replies.push(reply);
                }
                Queued::Flush(f) => flushes.push(f),
            }
            if weight < group || jobs.is_empty() {
                next = rx.try_recv().ok();
            }
        }
        let written = if jobs.is_empty() {
            None
        } else {
            Some(writer.write(jobs).await)
        };
        let g = Group {
            written,
            replies,
            flushes,
        };
        if written_tx.send(g).await.is_err() {
            break;
        }
    }
    drop(written_tx);
    let _ = settling.await;
}

async fn settle_in_order<W: GroupWriter>(writer: Arc<W>, mut groups: mpsc::Receiver<Group<W>>) {
    while let Some(g) = groups.recv().await {
        if let Some(written) = g.written {
            let answers = writer.settle(written).await;
            for (reply, answer) in g.replies.into_iter().zip(answers) {
                if let Some(reply) = reply {
                    let _ = reply.send(answer);
                }
            }
        }
        for f in g.flushes {
            let _ = f.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Records each group's jobs; answers each job with its value times ten, after a pause that
    /// lets the next requests pile up.
    #[derive(Default)]
    struct Recorder {
        groups: Mutex<Vec<Vec<u32>>>,
        settled: Mutex<Vec<Vec<u32>>>,
    }

    impl GroupWriter for Arc<Recorder> {
        type Job = u32;
        type Written = Vec<u32>;
        type Answer = u32;

        fn weight(job: &u32) -> usize {
            if *job >= 100 { 10 } else { 1 }
        }

        async fn write(&self, jobs: Vec<u32>) -> Vec<u32> {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            self.groups.lock().expect("lock").push(jobs.clone());
            jobs
        }

        async fn settle(&self, written: Vec<u32>) -> Vec<u32> {
            self.settled.lock().expect("lock").push(written.clone());
            written.iter().map(|j| j * 10).collect()
        }
    }

    #[tokio::test]
    async fn waiting_jobs_share_a_group_and_each_gets_its_own_answer() {
        let r = Arc::new(Recorder::default());
        let w = GroupCommit::start(r.clone(), 1_000, 64);
        let answers: Vec<u32> = futures_join((1..=30).map(|i| {
            let w = w.clone();
            async move { w.submit(i).await.expect("answer") }
        }))
        .await;
        assert_eq!(answers, (1..=30).map(|i| i * 10).collect::<Vec<_>>());
        let groups = r.groups.lock().expect("lock").clone();
        assert!(groups.len() < 30, "no group formed: {groups:?}");
        let all: Vec<u32> = groups.concat();
        let mut sorted = all.clone();
        sorted.sort_unstable();
        assert_eq!(
            sorted,
            (1..=30).collect::<Vec<_>>(),
            "each job written once"
        );
        // Settled in the order written.
        assert_eq!(*r.settled.lock().expect("lock"), groups);
    }

    #[tokio::test]
    async fn a_group_stops_growing_at_its_weight() {
        let r = Arc::new(Recorder::default());
        let w = GroupCommit::start(r.clone(), 20, 64);
        // Block the writer on a first job so that the rest wait together.
        let first = tokio::spawn({
            let w = w.clone();
            async move { w.submit(1).await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        for j in [100, 101, 102, 2] {
            w.offer(j).expect("room");
        }
        w.flush().await;
        first.await.expect("join").expect("answer");
        let groups = r.groups.lock().expect("lock").clone();
        assert_eq!(groups, vec![vec![1], vec![100, 101], vec![102, 2]]);
    }

    #[tokio::test]
    async fn weight_zero_writes_each_job_alone() {
        let r = Arc::new(Recorder::default());
        let w = GroupCommit::start(r.clone(), 0, 64);
        for j in 1..=5 {
            w.offer(j).expect("room");
        }
        w.flush().await;
        let groups = r.groups.lock().expect("lock").clone();
        assert_eq!(groups, (1..=5).map(|j| vec![j]).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn an_offer_to_a_full_queue_is_refused_not_waited_for() {
        let r = Arc::new(Recorder::default());
        let w = GroupCommit::start(r.clone(), 1_000, 2);
        let mut refused = 0;
        for j in 0..50 {
            if w.offer(j) == Err(Full) {
                refused += 1;
            }
        }
        assert!(refused > 0, "a queue of 2 took 50 jobs at once");
        w.flush().await;
        let written: usize = r.groups.lock().expect("lock").iter().map(Vec::len).sum();
        assert_eq!(written, 50 - refused, "every job taken is written");
    }

    async fn futures_join<F: Future<Output = u32> + Send + 'static>(
        fs: impl Iterator<Item = F>,
    ) -> Vec<u32> {
        let handles: Vec<_> = fs.map(tokio::spawn).collect();
        let mut out = Vec::new();
        for h in handles {
            out.push(h.await.expect("join"));
        }
        out
    }
}
