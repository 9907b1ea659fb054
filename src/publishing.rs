//! Publishing a policy (发布政策): a policy file becomes a `PolicyPublished` event carrying the
//! whole policy, catalogs included, so a replay knows exactly which rules were in force when.

use std::path::{Path, PathBuf};

use events::{Metadata, Tag};
use policy::catalog::CatalogTexts;
use policy::{Policy, PolicyFileError};
use sqlx::PgPool;

use crate::store::{
    append, read_stream, read_tagged, Append, AppendCondition, AppendError, ExpectedVersion,
    NewEvent,
};

/// How often a publish is retried when another publish committed between its read and its
/// append. Publishing is rare; more conflicts than this mean something is wrong.
const PUBLISH_ATTEMPTS_MAX: usize = 5;

pub const POLICY_PUBLISHED: &str = "PolicyPublished";
pub const POLICY_PUBLISHED_VERSION: i32 = 1;

/// Every `PolicyPublished` event carries this tag, so "the policies in force" is one read.
pub const POLICIES_TAG: &str = "policies";

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: field `{field}`: {message}", line = error.line, field = error.field, message = error.message)]
    Invalid { path: PathBuf, error: PolicyFileError },
    #[error("policy `{0}` is already published; a changed policy is published under a new id")]
    AlreadyPublished(String),
    /// Two policies of one program in force for one region on the same day would make the
    /// choice between them arbitrary.
    #[error(
        "policy `{id}` overlaps the published policy `{other}`: same program, same region, \
         periods that share days. Give one of them effective dates that do not overlap"
    )]
    Overlaps { id: String, other: String },
    #[error(transparent)]
    Store(AppendError),
}

/// The stream of one policy's events.
pub fn policy_stream(id: &str) -> String {
    format!("policy-{id}")
}

/// Reads and validates a policy file. Catalogs it references are looked up, by their path
/// relative to the policy file's directory, under `catalogs/` beside it.
pub fn load_policy_file(path: &Path) -> Result<Policy, PublishError> {
    let read = |p: &Path| {
        std::fs::read_to_string(p)
            .map_err(|source| PublishError::Io { path: p.to_path_buf(), source })
    };
    let text = read(path)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut catalogs = CatalogTexts::new();
    if let Ok(entries) = std::fs::read_dir(dir.join("catalogs")) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".toml") {
                catalogs.insert(format!("catalogs/{name}"), read(&entry.path())?);
            }
        }
    }
    Policy::from_toml_with_catalogs(&text, &catalogs)
        .map_err(|error| PublishError::Invalid { path: path.to_path_buf(), error })
}

/// Embeds a file of `policies/` in the binary, by its path relative to that directory.
macro_rules! shipped {
    ($($file:literal),* $(,)?) => {
        &[$(($file, include_str!(concat!("../policies/", $file)))),*]
    };
}

/// The policy files shipped with the binary, `(file name, text)`: every `policies/*.toml`
/// (a test checks that none is missing).
pub const SHIPPED_POLICIES: &[(&str, &str)] = shipped![
    "jinan-2021-job-stabilization.toml",
    "jinan-2021-on-the-job-training.toml",
    "jining-2025-skill-upgrade.toml",
    "liaocheng-2024-training.toml",
    "shandong-2024-expansion-quota.toml",
    "shandong-2024-job-stabilization.toml",
    "shandong-2024-skill-upgrade.toml",
    "state-council-holidays.toml",
];

/// The catalogs shipped with the binary, by their path relative to `policies/`.
pub const SHIPPED_CATALOGS: &[(&str, &str)] = shipped![
    "catalogs/jining-2025-urgent.toml",
    "catalogs/liaocheng-2024-training.toml",
    "catalogs/occupations-2022.toml",
];

/// The shipped policies, loaded and validated as `policy publish` would load the files.
pub fn shipped_policies() -> Result<Vec<Policy>, PublishError> {
    let catalogs: CatalogTexts =
        SHIPPED_CATALOGS.iter().map(|(p, t)| (p.to_string(), t.to_string())).collect();
    SHIPPED_POLICIES
        .iter()
        .map(|(file, text)| {
            Policy::from_toml_with_catalogs(text, &catalogs).map_err(|error| {
                PublishError::Invalid { path: Path::new("policies").join(file), error }
            })
        })
        .collect()
}

/// Who publishes the shipped policies on a fresh ledger.
pub const SYSTEM_ACTOR: &str = "system";

/// On an empty log, publishes the policies shipped with the binary as `system`, so that a
/// fresh ledger decides applications on its first request (API.md, "A fresh ledger has the
/// notices in force"). A log with any event is left alone: policies are then added or
/// replaced with `policy publish`. Returns the ids published. Two services starting at once
/// on one empty log publish each policy once (the second gets `AlreadyPublished`, skipped).
pub async fn publish_shipped_on_empty_log(pool: &PgPool) -> Result<Vec<String>, PublishError> {
    let policies = shipped_policies()?;
    let empty: bool = sqlx::query_scalar("SELECT NOT EXISTS (SELECT 1 FROM events)")
        .fetch_one(pool)
        .await
        .map_err(|e| PublishError::Store(e.into()))?;
    let mut published = Vec::new();
    if !empty {
        return Ok(published);
    }
    for policy in &policies {
        match publish(pool, policy, SYSTEM_ACTOR).await {
            Ok(_) => published.push(policy.id.to_string()),
            Err(PublishError::AlreadyPublished(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(published)
}

/// Records the policy as published, unless it is already published or overlaps a published
/// policy of the same program and region. Returns the event id.
///
/// The check reads every published policy and appends on condition that no policy was
/// published since, so two overlapping policies published at the same instant cannot both
/// get in.
pub async fn publish(pool: &PgPool, policy: &Policy, actor: &str) -> Result<i64, PublishError> {
    let id = policy.id.to_string();
    let tag = Tag::parse(POLICIES_TAG).expect("a valid tag");
    let store = |e: sqlx::Error| PublishError::Store(e.into());
    for _ in 0..PUBLISH_ATTEMPTS_MAX {
        let mut tx = pool.begin().await.map_err(store)?;
        let read = read_tagged(&mut tx, std::slice::from_ref(&tag)).await.map_err(store)?;
        let mut all = policies_in(&read.events);
        if all.iter().any(|p| p.id == policy.id) {
            return Err(PublishError::AlreadyPublished(id));
        }
        all.push(policy.clone());
        if let Some((a, b)) =
            policy::select::overlaps(&all).into_iter().find(|(a, b)| *a == id || *b == id)
        {
            let other = if a == id { b } else { a };
            return Err(PublishError::Overlaps { id, other });
        }
        let event = NewEvent {
            stream_id: policy_stream(&id),
            event_type: POLICY_PUBLISHED.into(),
            schema_version: POLICY_PUBLISHED_VERSION,
            data: serde_json::json!({ "policy": policy }),
            metadata: Metadata { actor: Some(actor.to_string()), ..Metadata::default() },
            tags: vec![tag.clone()],
            business_date: Some(policy.effective_from),
        };
        let appending = Append {
            events: vec![event],
            expected: vec![(policy_stream(&id), ExpectedVersion::NoStream)],
            condition: Some(AppendCondition { tags: vec![tag.clone()], after: read.read_point }),
        };
        match append(&mut tx, &appending).await {
            Ok(out) => {
                tx.commit().await.map_err(store)?;
                return Ok(out.events[0].0);
            }
            Err(e) if e.is_conflict() => continue,
            Err(e) => return Err(PublishError::Store(e)),
        }
    }
    Err(PublishError::Store(AppendError::Invalid(
        "publishing kept conflicting with other publishes",
    )))
}

/// The policies among `events` (a read of [`POLICIES_TAG`]), in publishing order.
pub fn policies_in(events: &[crate::store::RecordedEvent]) -> Vec<Policy> {
    events
        .iter()
        .filter(|e| e.event_type == POLICY_PUBLISHED)
        .map(|e| {
            serde_json::from_value(e.data["policy"].clone()).expect("a recorded policy reads back")
        })
        .collect()
}

/// The published policy with this id, as recorded.
pub async fn published(pool: &PgPool, id: &str) -> Result<Option<Policy>, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let events = read_stream(&mut conn, &policy_stream(id)).await?;
    Ok(events.into_iter().find(|e| e.event_type == POLICY_PUBLISHED).map(|e| {
        serde_json::from_value(e.data["policy"].clone()).expect("a recorded policy reads back")
    }))
}

/// Published policies, parsed once per process and database and reused while no policy is
/// published: a policy carries its whole catalog, and parsing it on every command would cost
/// more than the command. The caller's read point must be taken before this read, and its
/// append conditioned on [`POLICIES_TAG`], so a policy published meanwhile is never missed.
pub async fn policies_cached(
    conn: &mut sqlx::PgConnection,
    database: &str,
) -> Result<std::sync::Arc<Vec<Policy>>, sqlx::Error> {
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT t.event_id FROM event_tags t WHERE t.tag = $1 ORDER BY t.event_id",
    )
    .bind(POLICIES_TAG)
    .fetch_all(&mut *conn)
    .await?;
    policies_of(conn, database, ids).await
}

/// The published policies given the ids of the events tagged [`POLICIES_TAG`] (read by the
/// caller, for example in the same statement as the rest of its read): from the cache when
/// those ids are the cached ones, else read and parsed once.
pub async fn policies_of(
    conn: &mut sqlx::PgConnection,
    database: &str,
    ids: Vec<i64>,
) -> Result<std::sync::Arc<Vec<Policy>>, sqlx::Error> {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, OnceLock};
    type Cache = Mutex<HashMap<String, (Vec<i64>, Arc<Vec<Policy>>)>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some((cached_ids, policies)) = cache.lock().expect("policy cache").get(database) {
        if *cached_ids == ids {
            return Ok(policies.clone());
        }
    }
    let rows: Vec<(String, serde_json::Value)> =
        sqlx::query_as("SELECT event_type, data FROM events WHERE id = ANY ($1) ORDER BY id")
            .bind(&ids)
            .fetch_all(&mut *conn)
            .await?;
    let policies: Arc<Vec<Policy>> = Arc::new(
        rows.into_iter()
            .filter(|(t, _)| t == POLICY_PUBLISHED)
            .map(|(_, d)| {
                serde_json::from_value(d["policy"].clone()).expect("a recorded policy reads back")
            })
            .collect(),
    );
    cache.lock().expect("policy cache").insert(database.to_string(), (ids, policies.clone()));
    Ok(policies)
}
