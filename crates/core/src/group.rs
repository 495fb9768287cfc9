//! Group commit for small writes: callers hand an operation to a worker,
//! which applies every operation waiting at that moment (up to a limit) in
//! ONE transaction and answers each caller after that transaction commits.
//! A caller is answered only once its write is durable, as if it had
//! committed alone; the cost of the commit (an fsync, a round trip, on SQLite
//! the process's write permit) is shared by the batch.
//!
//! If the batch as a whole fails (a serialization failure, one operation's
//! constraint aborting the transaction), each operation is tried again in a
//! transaction of its own, so one bad operation fails only its own caller.
//! The queue is bounded: callers wait when it is full.
//!
//! A batch that only prepares a later durable write may ask not to wait for
//! the disk at all ([`Batch::relaxed`]).

use crate::db::{Db, Tx};
use crate::error::{Error, Result};
use futures::future::BoxFuture;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// What a group commit does with a batch of operations.
pub trait Batch: Send + Sync + 'static {
    type Op: Send + Sync + 'static;
    type Out: Send + 'static;
    /// Apply `ops` in `tx` and give one result per operation, in order. An
    /// `Err` for the whole call rolls the batch back (then each operation is
    /// tried alone).
    fn apply<'a>(&'a self, tx: &'a mut Tx, ops: &'a [Self::Op]) -> BoxFuture<'a, Result<Vec<Result<Self::Out>>>>;

    /// Whether the batch may commit without waiting for the disk
    /// ([`Db::begin_relaxed`]: only for writes a later durable commit
    /// carries). Answers then come after the commit, not after the flush.
    fn relaxed(&self) -> bool {
        false
    }
}

type Job<B> = (<B as Batch>::Op, oneshot::Sender<Result<<B as Batch>::Out>>);

/// The handle callers use; cheap to clone.
pub struct GroupCommit<B: Batch> {
    queue: mpsc::Sender<Job<B>>,
}

impl<B: Batch> Clone for GroupCommit<B> {
    fn clone(&self) -> Self {
        GroupCommit { queue: self.queue.clone() }
    }
}

/// Limits of one group commit.
#[derive(Debug, Clone, Copy)]
pub struct GroupLimits {
    /// Operations in one transaction at most.
    pub max_batch: usize,
    /// Operations waiting at most; more callers wait for room.
    pub queue: usize,
}

impl Default for GroupLimits {
    fn default() -> Self {
        GroupLimits { max_batch: 512, queue: 16_384 }
    }
}

impl<B: Batch> GroupCommit<B> {
    /// Start the worker on the current tokio runtime.
    pub fn start(db: Db, batch: B, limits: GroupLimits) -> GroupCommit<B> {
        let (queue, rx) = mpsc::channel(limits.queue.max(1));
        tokio::spawn(worker(db, Arc::new(batch), rx, limits.max_batch.max(1)));
        GroupCommit { queue }
    }

    /// Apply one operation; answered after the transaction that holds it commits.
    pub async fn submit(&self, op: B::Op) -> Result<B::Out> {
        let (tx, rx) = oneshot::channel();
        self.queue.send((op, tx)).await.map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }
}

fn stopped() -> Error {
    Error::internal(anyhow::anyhow!("the group commit worker stopped"))
}

async fn worker<B: Batch>(db: Db, batch: Arc<B>, mut rx: mpsc::Receiver<Job<B>>, max_batch: usize) {
    let mut jobs: Vec<Job<B>> = Vec::with_capacity(max_batch);
    while rx.recv_many(&mut jobs, max_batch).await > 0 {
        let (ops, answers): (Vec<B::Op>, Vec<_>) = jobs.drain(..).unzip();
        match run(&db, &*batch, &ops).await {
            Ok(results) if results.len() == ops.len() => {
                for (answer, result) in answers.into_iter().zip(results) {
                    let _ = answer.send(result);
                }
            }
            whole => {
                if ops.len() == 1 {
                    let result = match whole {
                        Ok(mut r) if !r.is_empty() => r.remove(0),
                        Ok(_) => Err(Error::internal(anyhow::anyhow!("a batch gave no result"))),
                        Err(e) => Err(e),
                    };
                    if let Some(answer) = answers.into_iter().next() {
                        let _ = answer.send(result);
                    }
                    continue;
                }
                // One operation spoilt the batch: each on its own, so only it fails.
                for (op, answer) in ops.into_iter().zip(answers) {
                    let one = [op];
                    let result = match run(&db, &*batch, &one).await {
                        Ok(mut r) if !r.is_empty() => r.remove(0),
                        Ok(_) => Err(Error::internal(anyhow::anyhow!("a batch gave no result"))),
                        Err(e) => Err(e),
                    };
                    let _ = answer.send(result);
                }
            }
        }
    }
}

async fn run<B: Batch>(db: &Db, batch: &B, ops: &[B::Op]) -> Result<Vec<Result<B::Out>>> {
    let t0 = std::time::Instant::now();
    let mut tx = if batch.relaxed() { db.begin_relaxed().await? } else { db.begin().await? };
    let t_begin = t0.elapsed();
    let results = batch.apply(&mut tx, ops).await?;
    let t_apply = t0.elapsed();
    tx.commit().await?;
    tracing::debug!(
        batch = std::any::type_name::<B>(),
        ops = ops.len(),
        begin_ms = t_begin.as_secs_f64() * 1e3,
        apply_ms = (t_apply - t_begin).as_secs_f64() * 1e3,
        commit_ms = (t0.elapsed() - t_apply).as_secs_f64() * 1e3,
        "group commit"
    );
    Ok(results)
}

/// Point reads coalesced like writes: callers hand a lookup to a worker,
/// which runs every lookup waiting at that moment (up to a limit) as one
/// query on one pooled connection, outside any transaction (on SQLite it
/// never takes the write permit). Under load a caller shares one trip to
/// the database, and on SQLite one wake-up of the connection's thread, with
/// every other caller waiting then; alone, it pays one read as before.
pub trait ReadBatch: Send + Sync + 'static {
    type Op: Send + Sync + 'static;
    type Out: Send + 'static;
    /// Look `ops` up on `conn` and give one result per lookup, in order.
    fn read<'a>(
        &'a self,
        conn: &'a mut sqlx::AnyConnection,
        ops: &'a [Self::Op],
    ) -> BoxFuture<'a, Result<Vec<Result<Self::Out>>>>;
}

type ReadJob<B> = (<B as ReadBatch>::Op, oneshot::Sender<Result<<B as ReadBatch>::Out>>);

/// The handle callers use; cheap to clone.
pub struct GroupRead<B: ReadBatch> {
    queue: mpsc::Sender<ReadJob<B>>,
}

impl<B: ReadBatch> Clone for GroupRead<B> {
    fn clone(&self) -> Self {
        GroupRead { queue: self.queue.clone() }
    }
}

/// Limits of one group read.
#[derive(Debug, Clone, Copy)]
pub struct ReadLimits {
    /// Lookups in one query at most.
    pub max_batch: usize,
    /// Lookups waiting at most; more callers wait for room.
    pub queue: usize,
    /// Queries at once at most (each on its own connection).
    pub parallel: usize,
}

impl Default for ReadLimits {
    fn default() -> Self {
        ReadLimits { max_batch: 256, queue: 16_384, parallel: 2 }
    }
}

impl<B: ReadBatch> GroupRead<B> {
    /// Start the worker on the current tokio runtime.
    pub fn start(db: Db, batch: B, limits: ReadLimits) -> GroupRead<B> {
        let (queue, rx) = mpsc::channel(limits.queue.max(1));
        tokio::spawn(read_worker(db, Arc::new(batch), rx, limits));
        GroupRead { queue }
    }

    /// Look one thing up, with whatever else is waiting.
    pub async fn get(&self, op: B::Op) -> Result<B::Out> {
        let (tx, rx) = oneshot::channel();
        self.queue.send((op, tx)).await.map_err(|_| read_stopped())?;
        rx.await.map_err(|_| read_stopped())?
    }
}

fn read_stopped() -> Error {
    Error::internal(anyhow::anyhow!("the group read worker stopped"))
}

async fn read_worker<B: ReadBatch>(db: Db, batch: Arc<B>, mut rx: mpsc::Receiver<ReadJob<B>>, limits: ReadLimits) {
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.parallel.max(1)));
    let max_batch = limits.max_batch.max(1);
    loop {
        // Wait for a free slot first: while every slot reads, lookups gather.
        let Ok(slot) = slots.clone().acquire_owned().await else { return };
        let mut jobs: Vec<ReadJob<B>> = Vec::with_capacity(max_batch.min(64));
        if rx.recv_many(&mut jobs, max_batch).await == 0 {
            return;
        }
        let (db, batch) = (db.clone(), batch.clone());
        tokio::spawn(async move {
            let (ops, answers): (Vec<B::Op>, Vec<_>) = jobs.into_iter().unzip();
            let results = async {
                let mut conn = db.pool.acquire().await?;
                batch.read(&mut conn, &ops).await
            }
            .await;
            match results {
                Ok(results) if results.len() == ops.len() => {
                    for (answer, result) in answers.into_iter().zip(results) {
                        let _ = answer.send(result);
                    }
                }
                Ok(_) => {
                    for answer in answers {
                        let _ = answer.send(Err(Error::internal(anyhow::anyhow!("a read batch gave a wrong count"))));
                    }
                }
                Err(e) => {
                    let text = e.to_string();
                    let mut first = Some(e);
                    for answer in answers {
                        let e = first
                            .take()
                            .unwrap_or_else(|| Error::internal(anyhow::anyhow!("a read batch failed: {text}")));
                        let _ = answer.send(Err(e));
                    }
                }
            }
            drop(slot);
        });
    }
}
