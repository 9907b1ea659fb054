//! Round trips of a command over HTTP, counted from sqlx's statement log on a warm
//! connection: the unit of work runs the command in its own transaction without savepoints
//! and claims the Idempotency-Key with the response in one statement at the end.

mod common;

use std::sync::{Arc, Mutex};

use common::{set_up, training, Api};

/// The statements sqlx logs on one thread (a current-thread runtime runs the test, the server
/// and the pool's connections all on it).
#[derive(Clone)]
struct StatementCounter(Arc<Mutex<Vec<String>>>, std::thread::ThreadId);

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

#[tokio::test]
async fn a_submission_over_http_takes_five_round_trips_and_a_repeat_records_nothing() {
    use tracing_subscriber::layer::SubscriberExt;
    // Process-wide, before the harness tries to install its own: the only test here.
    let counter = StatementCounter(Default::default(), std::thread::current().id());
    let subscriber = tracing_subscriber::registry().with(counter.clone());
    tracing::subscriber::set_global_default(subscriber).expect("no other test sets one");
    let api = Api::start().await;
    set_up(&api).await;
    // Warm: a connection open, the policies and the tokens cached.
    let r = api.post_keyed("clerk", "/v1/applications", "warm", &training(1)).await;
    assert_eq!(r.status, 201, "{}", r.text);

    counter.0.lock().unwrap().clear();
    let r = api.post_keyed("clerk", "/v1/applications", "counted", &training(2)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let statements = counter.0.lock().unwrap().clone();
    // BEGIN (not logged); the person's lock with the read; the append with the read models;
    // the key with the response; COMMIT.
    assert_eq!(statements.len() + 1, 5, "round trips of one submission: BEGIN + {statements:#?}");

    // The same request again: the stored answer, and nothing recorded twice.
    let count = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM events").fetch_one(&api.db.pool).await
    };
    let before = count().await.unwrap();
    let again = api.post_keyed("clerk", "/v1/applications", "counted", &training(2)).await;
    assert_eq!((again.status, again.text.as_str()), (201, r.text.as_str()));
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(count().await.unwrap(), before);
}
