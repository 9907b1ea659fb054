//! Commands executed together (合并执行): concurrent commands with the same key (one pool's
//! reviews) are handed to ONE of them, which executes them all at once, in one transaction,
//! and answers each.
//!
//! Why, beside [`super::group`] (which runs each member's command on its own, in one shared
//! transaction): a group still reads, locks and appends once per member, one member after
//! another on one connection, so the pool's approvals were bounded by those round trips and
//! PostgreSQL's work per statement. Executed together, a batch reads its applications in one
//! statement, takes and reads the pool's quota once, and appends once
//! ([`super::applications::review_together`]).
//!
//! How a batch forms: the first command with a key leads. While it executes, the commands
//! that arrive with the same key queue. When it has answered its batch, it hands the lead to
//! the first command queued, which executes everything queued by then (at most
//! [`TOGETHER_MAX`]) as the next batch, and so on: each command leads at most one batch, so
//! none waits for more than the batch before its own and its own.
//!
//! Callers run each command in a task of its own (`tokio::spawn`): a command dropped while it
//! leads takes its batch's answers with it (they end in [`Abandoned`]). One dropped while it
//! waits passes the lead on if it had been handed it, so the queue never stays without a
//! leader.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

/// Most commands one batch takes: bounds the statement a batch appends with and the time the
/// first of them waits for its answer.
pub const TOGETHER_MAX: usize = 64;

/// The batches of each key of this process.
#[derive(Debug)]
pub struct Together<I, O> {
    queues: Mutex<HashMap<String, Queue<I, O>>>,
    batches: AtomicU64,
    members: AtomicU64,
}

/// How much executing together happened: `members / batches` is the mean batch size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TogetherStats {
    pub batches: u64,
    pub members: u64,
}

#[derive(Debug)]
struct Queue<I, O> {
    /// Commands waiting, in arrival order, each with where to send its turn (`None`: the
    /// command that leads next, which takes its own answer from the batch it executes).
    waiting: VecDeque<(I, Option<oneshot::Sender<Turn<O>>>)>,
}

#[derive(Debug)]
enum Turn<O> {
    Done(O),
    Lead,
}

/// The command leading the batch this command was in ended before answering it (its task
/// panicked or was dropped): whether the batch was recorded is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the command executing this one with others ended before answering; its outcome is unknown"
)]
pub struct Abandoned;

impl<I, O> Together<I, O> {
    pub fn new() -> Arc<Self> {
        Arc::new(Together { queues: Mutex::default(), batches: 0.into(), members: 0.into() })
    }

    /// The batches executed so far in this process, and their members.
    pub fn stats(&self) -> TogetherStats {
        TogetherStats {
            batches: self.batches.load(Ordering::Relaxed),
            members: self.members.load(Ordering::Relaxed),
        }
    }

    /// Executes `item` together with the commands of `key` queued beside it: `execute` is
    /// called with the batch (this command's item first) if this command leads it, and must
    /// return one answer per item, in order.
    pub async fn run<F, Fut>(&self, key: &str, item: I, execute: F) -> Result<O, Abandoned>
    where
        F: FnOnce(Vec<I>) -> Fut,
        Fut: Future<Output = Vec<O>>,
    {
        let (sender, receiver) = oneshot::channel();
        let leads = {
            let mut queues = self.queues.lock().expect("not poisoned");
            match queues.get_mut(key) {
                // Someone leads: queue behind it.
                Some(queue) => {
                    queue.waiting.push_back((item, Some(sender)));
                    false
                }
                None => {
                    let waiting = VecDeque::from([(item, None)]);
                    queues.insert(key.to_string(), Queue { waiting });
                    true
                }
            }
        };
        if !leads {
            let mut waiting = Waiting { together: self, key, receiver, taken: false };
            let turn = (&mut waiting.receiver).await;
            waiting.taken = true;
            match turn {
                Ok(Turn::Done(answer)) => return Ok(answer),
                Ok(Turn::Lead) => {}
                Err(_) => return Err(Abandoned),
            }
        }
        // This command leads: its item is first in the queue (it was first in an empty queue,
        // or was handed the lead at the front and nobody else takes from the queue meanwhile).
        let mut lead = Lead { together: self, key, handed: false };
        let (items, senders): (Vec<I>, Vec<_>) = {
            let mut queues = self.queues.lock().expect("not poisoned");
            let queue = queues.get_mut(key).expect("a leader's queue");
            let n = queue.waiting.len().min(TOGETHER_MAX);
            queue.waiting.drain(..n).unzip()
        };
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.members.fetch_add(items.len() as u64, Ordering::Relaxed);
        let mut answers = execute(items).await.into_iter();
        let own = answers.next().ok_or(Abandoned);
        for (answer, sender) in answers.zip(senders.into_iter().skip(1)) {
            // A command that went away is not answered.
            let _ = sender.expect("only the leader has no sender").send(Turn::Done(answer));
        }
        lead.hand_over();
        own
    }
}

/// The lead of a batch: handed to the next command queued when the batch is answered, or
/// when the leader is dropped half way (its batch's senders are dropped with it).
struct Lead<'a, I, O> {
    together: &'a Together<I, O>,
    key: &'a str,
    handed: bool,
}

impl<I, O> Lead<'_, I, O> {
    fn hand_over(&mut self) {
        if !std::mem::replace(&mut self.handed, true) {
            self.together.hand_over(self.key, false);
        }
    }
}

impl<I, O> Together<I, O> {
    /// Hands the lead of `key` to the first command queued that is still there, or closes the
    /// queue when none is. `dropped_leader`: the command at the front was handed the lead and
    /// went away before taking it; its item goes with it.
    fn hand_over(&self, key: &str, dropped_leader: bool) {
        let mut queues = self.queues.lock().expect("not poisoned");
        let queue = queues.get_mut(key).expect("a leader's queue");
        if dropped_leader {
            queue.waiting.pop_front();
        }
        while let Some((item, sender)) = queue.waiting.pop_front() {
            let sender = sender.expect("only the leader has no sender");
            if sender.send(Turn::Lead).is_ok() {
                queue.waiting.push_front((item, None));
                return;
            }
            // That command went away before its turn: its item goes with it.
        }
        queues.remove(key);
    }
}

/// A command waiting for its turn. Dropped before it took the turn (its task cancelled), it
/// passes on a lead it had been handed.
struct Waiting<'a, I, O> {
    together: &'a Together<I, O>,
    key: &'a str,
    receiver: oneshot::Receiver<Turn<O>>,
    /// The turn was taken (it is the command's own to act on).
    taken: bool,
}

impl<I, O> Drop for Waiting<'_, I, O> {
    fn drop(&mut self) {
        if self.taken {
            return;
        }
        if let Ok(Turn::Lead) = self.receiver.try_recv() {
            self.together.hand_over(self.key, true);
        }
    }
}

impl<I, O> Drop for Lead<'_, I, O> {
    fn drop(&mut self) {
        self.hand_over();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Answers each item doubled, once `gate` opens.
    async fn doubled(items: Vec<u32>, gate: Option<oneshot::Receiver<()>>) -> Vec<u32> {
        if let Some(gate) = gate {
            gate.await.unwrap();
        }
        items.into_iter().map(|i| i * 2).collect()
    }

    type Leader = tokio::task::JoinHandle<Result<u32, Abandoned>>;

    /// A queue whose first command (1) leads and holds its batch until the sender is used.
    async fn held_leader() -> (Arc<Together<u32, u32>>, Leader, oneshot::Sender<()>) {
        let together = Together::<u32, u32>::new();
        let (open, gate) = oneshot::channel();
        let first = {
            let together = together.clone();
            tokio::spawn(async move { together.run("k", 1, |i| doubled(i, Some(gate))).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        (together, first, open)
    }

    #[tokio::test]
    async fn the_commands_queued_behind_a_leader_are_executed_together_by_the_first_of_them() {
        let (together, first, open) = held_leader().await;
        let others: Vec<_> = (2..=5)
            .map(|n| {
                let together = together.clone();
                tokio::spawn(async move { together.run("k", n, |i| doubled(i, None)).await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(50)).await;
        open.send(()).unwrap();
        assert_eq!(first.await.unwrap(), Ok(2));
        for (n, other) in (2..=5).zip(others) {
            assert_eq!(other.await.unwrap(), Ok(n * 2));
        }
        // The first alone, then the four queued behind it in one batch.
        assert_eq!(together.stats(), TogetherStats { batches: 2, members: 5 });
    }

    #[tokio::test]
    async fn a_command_dropped_after_it_was_handed_the_lead_passes_it_on() {
        let (together, first, open) = held_leader().await;
        // The second queues (polled once) and is then never polled again.
        let mut second = Box::pin(together.run("k", 2, |i| doubled(i, None)));
        assert!(futures_util::poll!(second.as_mut()).is_pending());
        let third = {
            let together = together.clone();
            tokio::spawn(async move { together.run("k", 3, |i| doubled(i, None)).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        // The first answers its batch and hands the lead to the second, which is dropped
        // before it takes it: the third must still be answered.
        open.send(()).unwrap();
        assert_eq!(first.await.unwrap(), Ok(2));
        drop(second);
        let third = tokio::time::timeout(Duration::from_secs(5), third).await;
        assert_eq!(third.expect("the queue kept a leader").unwrap(), Ok(6));
        assert!(together.queues.lock().unwrap().is_empty(), "the queue closed behind it");
    }
}
