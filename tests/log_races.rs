//! Races against real PostgreSQL: optimistic concurrency, the cross-stream tag condition, and
//! the live reader that must never skip a committed event. The failure modes of the event
//! stores that went before are regression tests here: out-of-order commits, a rolled-back
//! append, a writer idle in its transaction, a bulk import racing a reader.

use std::sync::Arc;
use std::time::Duration;

use events::{Metadata, Tag};
use fundledger::postgres::testing::TestDatabase;
use fundledger::store::{
    append, read_tagged, sequence, Append, AppendCondition, AppendError, ExpectedVersion, NewEvent,
    Position, Subscription,
};
use rand::Rng;
use serde_json::json;
use sqlx::{Connection, Executor, PgPool};
use tokio::sync::Barrier;

fn event(stream: &str, tags: &[&Tag]) -> NewEvent {
    NewEvent {
        stream_id: stream.to_string(),
        event_type: "TestHappened".to_string(),
        schema_version: 1,
        data: json!({}),
        metadata: Metadata::default(),
        tags: tags.iter().map(|t| (*t).clone()).collect(),
        business_date: None,
    }
}

/// The final log once every committed event has its position (other tests share the cluster,
/// and their open transactions hold sequencing back for a moment).
async fn all_positions(pool: &PgPool) -> Vec<i64> {
    let mut conn = pool.acquire().await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        sequence(&mut conn).await.unwrap();
        let (events, logged): (i64, i64) =
            sqlx::query_as("SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM log)")
                .fetch_one(&mut *conn)
                .await
                .unwrap();
        if events == logged {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the log was not fully sequenced");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    sqlx::query_scalar("SELECT position FROM log ORDER BY position")
        .fetch_all(&mut *conn)
        .await
        .unwrap()
}

/// Follows the log until `stop` says the writers are done and every committed event has been
/// handed out; returns every position it was handed, in the order it was handed them.
async fn follow(pool: PgPool, stop: Arc<tokio::sync::Notify>) -> Vec<i64> {
    let mut sub = Subscription::start(&pool, Position::START).await.unwrap().with_page_limit(37);
    let mut seen = Vec::new();
    let stopped = stop.notified();
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            page = sub.next_page() => seen.extend(page.unwrap().iter().map(|e| e.position.unwrap().0)),
            () = &mut stopped => break,
        }
    }
    let committed: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&pool).await.unwrap();
    while sub.checkpoint().0 < committed {
        let page = tokio::time::timeout(Duration::from_secs(30), sub.next_page())
            .await
            .expect("the reader stopped short of the committed log")
            .unwrap();
        seen.extend(page.iter().map(|e| e.position.unwrap().0));
    }
    seen
}

/// The reader's sequence equals the log, position for position (without printing thousands
/// of numbers when it does not).
fn assert_same_sequence(seen: &[i64], log: &[i64]) {
    assert_eq!(
        seen.len(),
        log.len(),
        "the reader saw {} events, the log holds {}",
        seen.len(),
        log.len()
    );
    if let Some(i) = seen.iter().zip(log).position(|(a, b)| a != b) {
        panic!(
            "the reader diverges from the log at index {i}: saw {}, log has {}",
            seen[i], log[i]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_many_writers_expecting_one_version_exactly_one_wins() {
    const WRITERS: usize = 32;
    let db = TestDatabase::new().await;
    let mut conn = db.pool.acquire().await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    append(&mut tx, &Append { events: vec![event("app-1", &[])], ..Append::default() })
        .await
        .unwrap();
    tx.commit().await.unwrap();
    drop(conn);

    let barrier = Arc::new(Barrier::new(WRITERS));
    let tasks: Vec<_> = (0..WRITERS)
        .map(|_| {
            let (pool, barrier) = (db.pool.clone(), barrier.clone());
            tokio::spawn(async move {
                let mut tx = pool.begin().await.unwrap();
                barrier.wait().await;
                let a = Append {
                    events: vec![event("app-1", &[])],
                    expected: vec![("app-1".into(), ExpectedVersion::Exact(1))],
                    condition: None,
                };
                let out = append(&mut tx, &a).await;
                if out.is_ok() {
                    tx.commit().await.unwrap();
                }
                out
            })
        })
        .collect();
    let mut wins = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => wins += 1,
            Err(AppendError::StreamVersionConflict { actual: 2, expected: 1, .. }) => {}
            Err(other) => panic!("unexpected outcome: {other}"),
        }
    }
    assert_eq!(wins, 1);
    assert_eq!(all_positions(&db.pool).await, vec![1, 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_many_writers_deciding_on_one_tag_read_only_one_appends() {
    const WRITERS: usize = 32;
    let db = TestDatabase::new().await;
    let quota = Tag::pool_year("371500", 2024);
    let barrier = Arc::new(Barrier::new(WRITERS));
    let tasks: Vec<_> = (0..WRITERS)
        .map(|i| {
            let (pool, barrier, quota) = (db.pool.clone(), barrier.clone(), quota.clone());
            tokio::spawn(async move {
                let mut tx = pool.begin().await.unwrap();
                let read = read_tagged(&mut tx, std::slice::from_ref(&quota)).await.unwrap();
                // Everyone has read the same state before anyone appends.
                barrier.wait().await;
                let a = Append {
                    events: vec![event(&format!("approval-{i}"), &[&quota])],
                    expected: vec![],
                    condition: Some(AppendCondition { tags: vec![quota], after: read.read_point }),
                };
                let out = append(&mut tx, &a).await;
                if out.is_ok() {
                    tx.commit().await.unwrap();
                }
                (read.events.len(), out)
            })
        })
        .collect();
    let mut wins = 0;
    for t in tasks {
        let (read_events, out) = t.await.unwrap();
        assert_eq!(read_events, 0);
        match out {
            Ok(_) => wins += 1,
            Err(AppendError::TagConflict { .. }) => {}
            Err(other) => panic!("unexpected outcome: {other}"),
        }
    }
    assert_eq!(wins, 1, "two appends succeeded on the same read of one tag");
    assert_eq!(all_positions(&db.pool).await, vec![1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writers_on_unrelated_tags_never_conflict() {
    const WRITERS: usize = 16;
    let db = TestDatabase::new().await;
    let barrier = Arc::new(Barrier::new(WRITERS));
    let tasks: Vec<_> = (0..WRITERS)
        .map(|i| {
            let (pool, barrier) = (db.pool.clone(), barrier.clone());
            tokio::spawn(async move {
                let tag = Tag::pool_year(&format!("3708{i:02}"), 2024);
                let mut tx = pool.begin().await.unwrap();
                let read = read_tagged(&mut tx, std::slice::from_ref(&tag)).await.unwrap();
                barrier.wait().await;
                let a = Append {
                    events: vec![event(&format!("s-{i}"), &[&tag])],
                    expected: vec![],
                    condition: Some(AppendCondition { tags: vec![tag], after: read.read_point }),
                };
                append(&mut tx, &a).await.unwrap();
                tx.commit().await.unwrap();
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(all_positions(&db.pool).await, (1..=WRITERS as i64).collect::<Vec<_>>());
}

/// Commands only conditioned on a tag (every submission on the policies' tag) hold it together:
/// sixteen of them append and then all wait, uncommitted, for each other (with the exclusive
/// lock of migrations before 0017 the second append waits for the first commit, which waits
/// for the second: the barrier times out). A writer of the tag (an event carrying it) still
/// waits for every one of them, and a reader whose read came before that writer's commit
/// fails its condition.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readers_of_a_tag_run_together_and_its_writer_still_excludes_them() {
    const READERS: usize = 16;
    let db = TestDatabase::new().await;
    let policies = Tag::parse("policies").unwrap();
    let barrier = Arc::new(Barrier::new(READERS + 1));
    let release = Arc::new(tokio::sync::Notify::new());
    let tasks: Vec<_> = (0..READERS)
        .map(|i| {
            let (pool, barrier, release, policies) =
                (db.pool.clone(), barrier.clone(), release.clone(), policies.clone());
            tokio::spawn(async move {
                let mut tx = pool.begin().await.unwrap();
                let read = read_tagged(&mut tx, std::slice::from_ref(&policies)).await.unwrap();
                let a = Append {
                    events: vec![event(&format!("application-{i}"), &[])],
                    expected: vec![],
                    condition: Some(AppendCondition {
                        tags: vec![policies],
                        after: read.read_point,
                    }),
                };
                let released = release.notified();
                append(&mut tx, &a).await.unwrap();
                barrier.wait().await;
                released.await;
                tx.commit().await.unwrap();
            })
        })
        .collect();
    tokio::time::timeout(Duration::from_secs(20), barrier.wait())
        .await
        .expect("readers of one tag were serialised: not all appended before any committed");

    // The writer of the tag, meanwhile, waits for all of them.
    let mut late = db.pool.begin().await.unwrap();
    let late_read = read_tagged(&mut late, std::slice::from_ref(&policies)).await.unwrap();
    let writer = {
        let (pool, policies) = (db.pool.clone(), policies.clone());
        tokio::spawn(async move {
            let mut tx = pool.begin().await.unwrap();
            let a = Append {
                events: vec![event("policy-1", &[&policies])],
                expected: vec![],
                condition: None,
            };
            append(&mut tx, &a).await.unwrap();
            tx.commit().await.unwrap();
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!writer.is_finished(), "the tag's writer appended while its readers held it");
    release.notify_waiters();
    for t in tasks {
        t.await.unwrap();
    }
    writer.await.unwrap();

    // A reader that read before the writer committed fails its condition.
    let a = Append {
        events: vec![event("application-late", &[])],
        expected: vec![],
        condition: Some(AppendCondition { tags: vec![policies], after: late_read.read_point }),
    };
    match append(&mut late, &a).await {
        Err(AppendError::TagConflict { .. }) => {}
        other => panic!("a read from before the writer's commit must fail, got {other:?}"),
    }
}

/// Many writers, of which some hold their transaction open before and after appending and some
/// roll back, race a live reader. The reader's sequence must equal the final log exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_live_reader_sees_exactly_the_committed_log_under_concurrent_writers() {
    const WRITERS: usize = 16;
    const APPENDS_PER_WRITER: usize = 25;
    let db = TestDatabase::new().await;
    let stop = Arc::new(tokio::sync::Notify::new());
    let reader = tokio::spawn(follow(db.pool.clone(), stop.clone()));

    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let pool = db.pool.clone();
            tokio::spawn(async move {
                let mut committed = 0;
                for n in 0..APPENDS_PER_WRITER {
                    let (events, hold_before, hold_after, roll_back) = {
                        let mut rng = rand::thread_rng();
                        (
                            rng.gen_range(1..=4),
                            rng.gen_bool(0.2),
                            rng.gen_bool(0.1),
                            rng.gen_bool(0.1),
                        )
                    };
                    let mut tx = pool.begin().await.unwrap();
                    if hold_before {
                        tx.execute("SELECT pg_sleep(0.005)").await.unwrap();
                    }
                    let tag = Tag::parse(&format!("writer:{w}")).unwrap();
                    let batch = (0..events).map(|_| event(&format!("w{w}-{n}"), &[&tag])).collect();
                    append(&mut tx, &Append { events: batch, ..Append::default() }).await.unwrap();
                    if hold_after {
                        // Holding the append lock: every other writer queues behind us.
                        tokio::time::sleep(Duration::from_millis(3)).await;
                    }
                    if roll_back {
                        tx.rollback().await.unwrap();
                    } else {
                        tx.commit().await.unwrap();
                        committed += events;
                    }
                }
                committed
            })
        })
        .collect();
    let mut committed = 0;
    for w in writers {
        committed += w.await.unwrap();
    }
    stop.notify_one();
    let seen = reader.await.unwrap();
    let log = all_positions(&db.pool).await;
    assert_eq!(log.len(), committed, "the log holds exactly the committed events");
    assert_same_sequence(&seen, &log);
    assert_eq!(log, (1..=committed as i64).collect::<Vec<_>>(), "positions are gapless");
}

/// The gap problem of sequences: transaction A takes an id, B takes the next and commits
/// first; a reader that then reads "after the highest I saw" loses A's event for good. Here
/// B's event gets no position while A, which started writing before it, is still open.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_event_committed_out_of_order_waits_for_the_earlier_writer() {
    let db = TestDatabase::new().await;
    let mut sub = Subscription::start(&db.pool, Position::START).await.unwrap();

    let mut a = db.pool.begin().await.unwrap();
    append(&mut a, &one("a")).await.unwrap();
    // B is not blocked by A: they share no stream and no tag.
    let mut b = db.pool.begin().await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), append(&mut b, &one("b")))
        .await
        .expect("unrelated writers never wait for each other")
        .unwrap();
    b.commit().await.unwrap();

    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        sub.poll().await.unwrap().is_empty(),
        "B is withheld while A may still commit before it"
    );

    a.commit().await.unwrap();
    assert_eq!(drain(&mut sub, 2).await, vec!["a", "b"]);
}

/// The other order: B started writing first (smaller transaction id), A appends later and
/// stays open, B commits. B may be handed out at once, since A can only come after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_older_writer_that_commits_first_is_not_held_back_by_a_younger_one() {
    let db = TestDatabase::new().await;
    let mut sub = Subscription::start(&db.pool, Position::START).await.unwrap();
    let mut b = db.pool.begin().await.unwrap();
    b.execute("SELECT pg_current_xact_id()").await.unwrap();
    let mut a = db.pool.begin().await.unwrap();
    append(&mut a, &one("a")).await.unwrap();
    append(&mut b, &one("b")).await.unwrap();
    b.commit().await.unwrap();
    assert_eq!(drain(&mut sub, 1).await, vec!["b"]);
    a.commit().await.unwrap();
    assert_eq!(drain(&mut sub, 1).await, vec!["a"]);
}

/// A rolled-back append must neither leave a hole a reader waits on forever nor stall it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rolled_back_append_leaves_no_gap_and_does_not_stall_the_reader() {
    let db = TestDatabase::new().await;
    let mut sub = Subscription::start(&db.pool, Position::START).await.unwrap();
    let mut tx = db.pool.begin().await.unwrap();
    append(&mut tx, &one("doomed")).await.unwrap();
    tx.rollback().await.unwrap();

    let mut tx = db.pool.begin().await.unwrap();
    append(&mut tx, &one("kept")).await.unwrap();
    tx.commit().await.unwrap();

    let page = tokio::time::timeout(Duration::from_secs(10), sub.next_page())
        .await
        .expect("reader stalled")
        .unwrap();
    assert_eq!(page.iter().map(|e| e.stream_id.as_str()).collect::<Vec<_>>(), vec!["kept"]);
    assert_eq!(page[0].position, Some(Position(1)), "the rolled-back event takes no position");
    assert_eq!(all_positions(&db.pool).await, vec![1]);
}

/// A writer idle in its transaction before it writes delays nobody. One idle after appending
/// delays the feed (nothing may be positioned past a place it could still take) but blocks no
/// other writer, and the reader sees everything, in order, once it ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_writer_idle_in_its_transaction_never_makes_the_reader_skip() {
    let db = TestDatabase::new().await;
    let mut sub = Subscription::start(&db.pool, Position::START).await.unwrap();

    let mut idle = db.pool.begin().await.unwrap();
    idle.execute("SELECT count(*) FROM events").await.unwrap();
    for i in 0..5 {
        let mut tx = db.pool.begin().await.unwrap();
        append(&mut tx, &one(&format!("before-{i}"))).await.unwrap();
        tx.commit().await.unwrap();
    }
    assert_eq!(drain(&mut sub, 5).await.len(), 5, "a reading transaction delays nothing");

    append(&mut idle, &one("idle")).await.unwrap();
    let others: Vec<_> = (0..8)
        .map(|i| {
            let pool = db.pool.clone();
            tokio::spawn(async move {
                let mut tx = pool.begin().await.unwrap();
                append(&mut tx, &one(&format!("after-{i}"))).await.unwrap();
                tx.commit().await.unwrap();
            })
        })
        .collect();
    for t in others {
        tokio::time::timeout(Duration::from_secs(5), t)
            .await
            .expect("other writers do not wait for the idle one")
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(sub.poll().await.unwrap().is_empty(), "nothing is positioned past the open append");
    idle.commit().await.unwrap();
    let rest = drain(&mut sub, 9).await;
    assert_eq!(rest[0], "idle", "the idle writer started first, so it comes first");
    assert_eq!(all_positions(&db.pool).await, (1..=14).collect::<Vec<_>>());
}

fn one(stream: &str) -> Append {
    Append { events: vec![event(stream, &[])], ..Append::default() }
}

/// Reads from the subscription until `n` more events came, and returns their streams.
async fn drain(sub: &mut Subscription, n: usize) -> Vec<String> {
    let mut seen = Vec::new();
    while seen.len() < n {
        let page = tokio::time::timeout(Duration::from_secs(30), sub.next_page())
            .await
            .expect("the reader got nothing new")
            .unwrap();
        seen.extend(page.into_iter().map(|e| e.stream_id));
    }
    assert_eq!(seen.len(), n, "more events than expected");
    seen
}

/// One transaction appending 10,000 events races small writers and a live reader: the reader
/// sees the import whole, in order, between the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bulk_import_racing_a_reader_is_seen_whole_and_in_order() {
    const IMPORTED: usize = 10_000;
    let db = TestDatabase::new().await;
    let stop = Arc::new(tokio::sync::Notify::new());
    let reader = tokio::spawn(follow(db.pool.clone(), stop.clone()));
    let small: Vec<_> = (0..8)
        .map(|w| {
            let pool = db.pool.clone();
            tokio::spawn(async move {
                for n in 0..20 {
                    let mut tx = pool.begin().await.unwrap();
                    append(
                        &mut tx,
                        &Append {
                            events: vec![event(&format!("s{w}-{n}"), &[])],
                            ..Append::default()
                        },
                    )
                    .await
                    .unwrap();
                    tx.commit().await.unwrap();
                }
            })
        })
        .collect();
    let import = {
        let pool = db.pool.clone();
        tokio::spawn(async move {
            let tag = Tag::parse("import:1").unwrap();
            let batch =
                (0..IMPORTED).map(|i| event(&format!("import-{}", i % 100), &[&tag])).collect();
            let mut tx = pool.begin().await.unwrap();
            let out =
                append(&mut tx, &Append { events: batch, ..Append::default() }).await.unwrap();
            tx.commit().await.unwrap();
            out
        })
    };
    for t in small {
        t.await.unwrap();
    }
    let imported = import.await.unwrap();
    stop.notify_one();
    let seen = reader.await.unwrap();
    assert_same_sequence(&seen, &all_positions(&db.pool).await);
    assert_eq!(seen.len(), IMPORTED + 160);
    let ids: Vec<i64> = imported.events.iter().map(|e| e.0).collect();
    let positions: Vec<i64> =
        sqlx::query_scalar("SELECT position FROM log WHERE event_id = ANY ($1) ORDER BY position")
            .bind(&ids)
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert_eq!(positions.len(), IMPORTED);
    assert_eq!(
        positions[IMPORTED - 1] - positions[0] + 1,
        IMPORTED as i64,
        "the import occupies one contiguous run"
    );
}

/// The harness has teeth: the same out-of-order commit against a plain sequence-numbered table
/// makes a naive "read after the highest position" reader lose an event. This is the failure
/// the store's design rules out.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn control_a_naive_sequence_log_does_skip_under_out_of_order_commits() {
    let db = TestDatabase::new().await;
    let mut owner = db.owner_connection().await;
    owner.execute("CREATE TABLE naive (position bigserial PRIMARY KEY, body text)").await.unwrap();
    let opts = db.owner.clone();
    let mut a = sqlx::PgConnection::connect_with(&opts).await.unwrap();
    let mut b = sqlx::PgConnection::connect_with(&opts).await.unwrap();
    a.execute("BEGIN; INSERT INTO naive (body) VALUES ('a')").await.unwrap();
    b.execute("BEGIN; INSERT INTO naive (body) VALUES ('b'); COMMIT").await.unwrap();
    let first = naive_read(&mut owner, 0).await.unwrap();
    assert_eq!(first, vec![2]);
    a.execute("COMMIT").await.unwrap();
    let second = naive_read(&mut owner, 2).await.unwrap();
    assert!(second.is_empty(), "position 1 committed after the reader moved past it: skipped");
}

async fn naive_read(conn: &mut sqlx::PgConnection, after: i64) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT position FROM naive WHERE position > $1 ORDER BY position")
        .bind(after)
        .fetch_all(conn)
        .await
}
