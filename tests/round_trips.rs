//! Round trips of a command over HTTP, counted from sqlx's statement log on a warm
//! connection: a submission is executed together with any others of its queue (here none), in
//! one transaction without savepoints, and the Idempotency-Keys are claimed with the responses
//! in one statement at the end.

mod common;

#[path = "common/statements.rs"]
mod statements;

use common::{set_up, training, Api};

#[tokio::test]
async fn a_submission_over_http_takes_five_round_trips_and_a_repeat_records_nothing() {
    // Before the harness tries to install its own subscriber: the only test here.
    let counter = statements::StatementCounter::install();
    let api = Api::start().await;
    set_up(&api).await;
    // Warm: a connection open, the policies and the tokens cached.
    let r = api.post_keyed("clerk", "/v1/applications", "warm", &training(1)).await;
    assert_eq!(r.status, 201, "{}", r.text);

    counter.clear();
    let r = api.post_keyed("clerk", "/v1/applications", "counted", &training(2)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let statements = counter.statements();
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
