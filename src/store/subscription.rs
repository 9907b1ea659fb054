//! Following the log live.
//!
//! Correctness does not depend on notifications: positions are gapless and final once handed
//! out (see `fundledger_sequence`), so "read everything after my checkpoint" can never miss an
//! event that commits later. Each poll first runs the sequencer itself, so a subscriber makes
//! progress with no other process running. LISTEN/NOTIFY (sent by the sequencer of another
//! process) only cuts the wait; polling every [`POLL_INTERVAL`] covers the rest.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::watch;

use super::{head, read_all, sequence, Position, RecordedEvent, READ_PAGE_LIMIT_MAX};

/// Channel `fundledger_sequence` notifies on commit, with the new head position as payload.
pub const NOTIFY_CHANNEL: &str = "fundledger_log";

/// Longest a subscriber waits before looking again without a notification. Appends do not
/// notify (a NOTIFY would serialise their commits), so this bounds the feed's latency.
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);

#[derive(Debug)]
pub struct Subscription {
    pool: PgPool,
    listener: Option<PgListener>,
    checkpoint: Position,
    page_limit: i64,
}

impl Subscription {
    /// Starts after `checkpoint`. The listener is set up before the first read, so a commit
    /// between the read and the wait still wakes us.
    pub async fn start(pool: &PgPool, checkpoint: Position) -> Result<Self, sqlx::Error> {
        let listener = match PgListener::connect_with(pool).await {
            Ok(mut l) => match l.listen(NOTIFY_CHANNEL).await {
                Ok(()) => Some(l),
                Err(e) => {
                    tracing::warn!(error = %e, "LISTEN failed; the subscription polls instead");
                    None
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "no listener connection; the subscription polls instead");
                None
            }
        };
        Ok(Self { pool: pool.clone(), listener, checkpoint, page_limit: READ_PAGE_LIMIT_MAX })
    }

    pub fn with_page_limit(mut self, limit: i64) -> Self {
        self.page_limit = limit.clamp(1, READ_PAGE_LIMIT_MAX);
        self
    }

    /// The position of the last event handed out.
    pub fn checkpoint(&self) -> Position {
        self.checkpoint
    }

    /// The events committed after the checkpoint, without waiting (possibly none).
    pub async fn poll(&mut self) -> Result<Vec<RecordedEvent>, sqlx::Error> {
        let mut conn = self.pool.acquire().await?;
        sequence(&mut conn).await?;
        let page = read_all(&mut conn, self.checkpoint, self.page_limit).await?;
        for (i, e) in page.iter().enumerate() {
            // Positions are gapless (ARCHITECTURE.md, "never skip"); a hole here would mean
            // the sequencer's invariant broke. Refuse to hand out anything past it.
            assert_eq!(
                e.position,
                Some(Position(self.checkpoint.0 + 1 + i as i64)),
                "the log has a hole after position {}",
                self.checkpoint
            );
        }
        if let Some(last) = page.last().and_then(|e| e.position) {
            self.checkpoint = last;
        }
        Ok(page)
    }

    /// Waits until at least one event after the checkpoint has committed, and returns a page.
    pub async fn next_page(&mut self) -> Result<Vec<RecordedEvent>, sqlx::Error> {
        loop {
            let page = self.poll().await?;
            if !page.is_empty() {
                return Ok(page);
            }
            self.wait().await;
        }
    }

    async fn wait(&mut self) {
        let Some(listener) = self.listener.as_mut() else {
            tokio::time::sleep(POLL_INTERVAL).await;
            return;
        };
        match tokio::time::timeout(POLL_INTERVAL, listener.try_recv()).await {
            Ok(Ok(Some(_))) | Err(_) => {}
            // The listener connection dropped; sqlx reconnects on the next call. Until then
            // polling carries on, so nothing is missed, only later.
            Ok(Ok(None)) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "listener failed; falling back to polling");
                self.listener = None;
            }
        }
    }
}

/// The log's head as one process follows it, shared by all its live readers: one task with one
/// LISTEN connection sequences and looks at the head every [`POLL_INTERVAL`], and readers wait
/// on a watch channel, holding no connection while they wait. N readers cost one poll, not N
/// polls and N held connections. The task runs while someone watches, and stops after the
/// last reader has gone.
#[derive(Debug, Clone)]
pub struct LiveHead {
    inner: Arc<LiveHeadInner>,
}

#[derive(Debug)]
struct LiveHeadInner {
    pool: PgPool,
    head: watch::Sender<i64>,
    /// Whether the task runs; changed only under this lock, with the receiver count.
    running: Mutex<bool>,
}

impl LiveHead {
    pub fn new(pool: PgPool) -> Self {
        LiveHead {
            inner: Arc::new(LiveHeadInner {
                pool,
                head: watch::channel(0).0,
                running: Mutex::new(false),
            }),
        }
    }

    /// The head's position, updated as events commit (starting the shared task if needed).
    pub fn watch(&self) -> watch::Receiver<i64> {
        let mut running = self.inner.running.lock().expect("not poisoned");
        let receiver = self.inner.head.subscribe();
        if !*running {
            *running = true;
            tokio::spawn(follow(self.inner.clone()));
        }
        receiver
    }

    /// How many readers follow the head now.
    pub fn readers(&self) -> usize {
        self.inner.head.receiver_count()
    }
}

async fn follow(inner: Arc<LiveHeadInner>) {
    let mut listener = match PgListener::connect_with(&inner.pool).await {
        Ok(mut l) => match l.listen(NOTIFY_CHANNEL).await {
            Ok(()) => Some(l),
            Err(e) => {
                tracing::warn!(error = %e, "LISTEN failed; the live feed polls instead");
                None
            }
        },
        Err(e) => {
            tracing::warn!(error = %e, "no listener connection; the live feed polls instead");
            None
        }
    };
    loop {
        {
            let mut running = inner.running.lock().expect("not poisoned");
            if inner.head.receiver_count() == 0 {
                *running = false;
                return;
            }
        }
        let polled = async {
            let mut conn = inner.pool.acquire().await?;
            sequence(&mut conn).await?;
            head(&mut conn).await
        }
        .await;
        match polled {
            Ok(Position(p)) => {
                inner.head.send_if_modified(|h| {
                    let moved = *h != p;
                    *h = p;
                    moved
                });
            }
            Err(e) => tracing::warn!(error = %e, "looking at the log's head failed; retrying"),
        }
        match listener.as_mut() {
            None => tokio::time::sleep(POLL_INTERVAL).await,
            Some(l) => match tokio::time::timeout(POLL_INTERVAL, l.try_recv()).await {
                Ok(Ok(_)) | Err(_) => {}
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "listener failed; falling back to polling");
                    listener = None;
                }
            },
        }
    }
}

/// Reads the events after `checkpoint` (at most `limit`), checking that positions are gapless;
/// a short read on a pooled connection, released at once.
pub async fn read_after(
    pool: &PgPool,
    checkpoint: Position,
    limit: i64,
) -> Result<Vec<RecordedEvent>, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let page = read_all(&mut conn, checkpoint, limit.clamp(1, READ_PAGE_LIMIT_MAX)).await?;
    for (i, e) in page.iter().enumerate() {
        assert_eq!(
            e.position,
            Some(Position(checkpoint.0 + 1 + i as i64)),
            "the log has a hole after position {checkpoint}"
        );
    }
    Ok(page)
}
