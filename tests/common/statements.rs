//! Counting round trips: the statements sqlx sends (each one round trip: sqlx does not
//! pipeline), from its `sqlx::query` log events, on one thread. `BEGIN` is sent without that
//! log, so a transaction costs one round trip more than counted. Included by path
//! (`#[path = "common/statements.rs"] mod statements;`) where a test counts.

use std::sync::{Arc, Mutex};

/// The statements logged on one thread (a current-thread runtime runs a test, its server and
/// its pool's connections all on it). Install it process-wide with
/// [`StatementCounter::install`]: a thread-scoped subscriber loses events to the interest other
/// threads cached for sqlx's log call sites.
#[derive(Clone)]
pub struct StatementCounter(Arc<Mutex<Vec<String>>>, std::thread::ThreadId);

impl StatementCounter {
    /// Counts this thread's statements from now on. Once per process: the test binary's only
    /// test that counts, installed before anything else sets a subscriber.
    pub fn install() -> StatementCounter {
        use tracing_subscriber::layer::SubscriberExt;
        let counter = StatementCounter(Default::default(), std::thread::current().id());
        let subscriber = tracing_subscriber::registry().with(counter.clone());
        tracing::subscriber::set_global_default(subscriber).expect("no other test sets one");
        counter
    }

    pub fn clear(&self) {
        self.0.lock().unwrap().clear();
    }

    /// What was sent since the last [`StatementCounter::clear`], one summary per statement.
    pub fn statements(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for StatementCounter {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if event.metadata().target() == "sqlx::query" && self.1 == std::thread::current().id() {
            struct Summary(String);
            impl tracing::field::Visit for Summary {
                fn record_debug(&mut self, f: &tracing::field::Field, v: &dyn std::fmt::Debug) {
                    if f.name() == "summary" {
                        self.0 = format!("{v:?}");
                    }
                }
            }
            let mut summary = Summary(String::new());
            event.record(&mut summary);
            self.0.lock().unwrap().push(summary.0);
        }
    }
}
