//! API tokens: one per person, holding roles of one scope (a pool, a county, or everything).
//! Only a SHA-256 of the secret is stored; a presented token is found by its id and its secret
//! compared in constant time.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};
use subtle::ConstantTimeEq;
use uuid::Uuid;

/// What a token may do (API.md, Conventions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Admin,
    /// 市财政局: one pool's payouts, settlements, recoveries and reports.
    CityFinance,
    /// 县区经办: submits applications, opens notices for one county.
    CountyClerk,
    /// 县区审核: reviews one county's applications (never their own).
    CountyReviewer,
    /// 审计: reads everything, writes nothing.
    Auditor,
}

impl Role {
    pub const ALL: [Role; 5] =
        [Role::Admin, Role::CityFinance, Role::CountyClerk, Role::CountyReviewer, Role::Auditor];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::CityFinance => "city_finance",
            Role::CountyClerk => "county_clerk",
            Role::CountyReviewer => "county_reviewer",
            Role::Auditor => "auditor",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Which scope the role needs: county roles a county, city finance a pool.
    fn scope_kind(self) -> &'static str {
        match self {
            Role::Admin | Role::Auditor => "none",
            Role::CityFinance => "pool",
            Role::CountyClerk | Role::CountyReviewer => "county",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a token's roles apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    All,
    Pool(String),
    County(String),
}

/// An authenticated token.
#[derive(Debug, Clone)]
pub struct Principal {
    pub token_id: Uuid,
    /// Recorded as the actor of every write.
    pub label: String,
    /// The person the token stands for (`token create --person`): what maker-checker
    /// compares, recorded in every event's metadata with the token id.
    pub person: String,
    pub roles: Vec<Role>,
    pub scope: Scope,
}

impl Principal {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("--role: `{0}` is not a role; roles are admin, city_finance, county_clerk, county_reviewer, auditor")]
    UnknownRole(String),
    #[error("--role: at least one role is needed")]
    NoRole,
    #[error("--label: say whom the token is for (recorded as the actor of every write)")]
    NoLabel,
    #[error("--person: name the person the token stands for (a staff number or another identifier unique to one person; maker-checker compares it)")]
    NoPerson,
    #[error("--{needed}: role {role} acts for one {needed}; give --{needed} CODE")]
    ScopeMissing { role: Role, needed: &'static str },
    #[error("--role: {0} and {1} need different scopes; a token holds roles of one scope")]
    MixedScopes(Role, Role),
    #[error("--pool/--county: give one of them, not both")]
    TwoScopes,
    #[error("token {0} does not exist")]
    NotFound(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// A token as listed: never its secret.
#[derive(Debug, Clone)]
pub struct TokenInfo {
    pub id: Uuid,
    pub label: String,
    pub person: String,
    pub roles: Vec<String>,
    pub pool: Option<String>,
    pub county: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
}

fn hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// Parses `--role a,b` against the scope given, refusing combinations that cannot be checked.
pub fn parse_roles(
    roles: &str,
    pool: Option<&str>,
    county: Option<&str>,
) -> Result<(Vec<Role>, Scope), TokenError> {
    let mut parsed = Vec::new();
    for r in roles.split(',').map(str::trim).filter(|r| !r.is_empty()) {
        let role = Role::parse(r).ok_or_else(|| TokenError::UnknownRole(r.to_string()))?;
        if !parsed.contains(&role) {
            parsed.push(role);
        }
    }
    let first = *parsed.first().ok_or(TokenError::NoRole)?;
    let scoped: Vec<Role> = parsed.iter().copied().filter(|r| r.scope_kind() != "none").collect();
    if let (Some(global), Some(local)) =
        (parsed.iter().find(|r| r.scope_kind() == "none"), scoped.first())
    {
        return Err(TokenError::MixedScopes(*global, *local));
    }
    if let (Some(a), Some(b)) =
        (scoped.first(), scoped.iter().find(|r| r.scope_kind() != scoped[0].scope_kind()))
    {
        return Err(TokenError::MixedScopes(*a, *b));
    }
    let scope = match (pool, county) {
        (Some(_), Some(_)) => return Err(TokenError::TwoScopes),
        (Some(p), None) => Scope::Pool(p.to_string()),
        (None, Some(c)) => Scope::County(c.to_string()),
        (None, None) => Scope::All,
    };
    let needed = scoped.first().map_or("none", |r| r.scope_kind());
    let given = match scope {
        Scope::All => "none",
        Scope::Pool(_) => "pool",
        Scope::County(_) => "county",
    };
    if needed != "none" && needed != given {
        let role = scoped[0];
        return Err(TokenError::ScopeMissing { role, needed });
    }
    if needed == "none" && given != "none" {
        // Admin and auditor act everywhere; a scope would be silently ignored.
        return Err(TokenError::MixedScopes(first, first));
    }
    Ok((parsed, scope))
}

/// Creates a token and returns it: the only time the secret exists outside the caller.
pub async fn create(
    conn: &mut PgConnection,
    roles: &[Role],
    scope: &Scope,
    label: &str,
    person: &str,
) -> Result<String, TokenError> {
    if label.trim().is_empty() {
        return Err(TokenError::NoLabel);
    }
    if person.trim().is_empty() {
        return Err(TokenError::NoPerson);
    }
    let id = Uuid::new_v4();
    let mut secret = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    let (pool, county) = match scope {
        Scope::All => (None, None),
        Scope::Pool(p) => (Some(p.as_str()), None),
        Scope::County(c) => (None, Some(c.as_str())),
    };
    let roles: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
    sqlx::query(
        "INSERT INTO api_tokens (id, label, person, roles, pool, county, secret_hash) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id)
    .bind(label.trim())
    .bind(person.trim())
    .bind(&roles)
    .bind(pool)
    .bind(county)
    .bind(hash(&secret))
    .execute(conn)
    .await?;
    Ok(format!("fl_{}_{}", id.simple(), secret))
}

/// The id and secret of a presented token, if it has the shape `fl_<id>_<secret>`: checked
/// before anything is looked up, so a malformed token costs no database query.
pub fn parse_token(token: &str) -> Option<(Uuid, &str)> {
    let (id, secret) = token.strip_prefix("fl_")?.split_once('_')?;
    // 32 random bytes, base64url without padding.
    if secret.len() != 43
        || !secret.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return None;
    }
    Some((Uuid::try_parse(id).ok()?, secret))
}

type TokenRow = (Uuid, String, String, Vec<String>, Option<String>, Option<String>, Vec<u8>);

const TOKEN_COLUMNS: &str = "id, label, person, roles, pool, county, secret_hash";

fn principal_of(row: TokenRow) -> (Uuid, Vec<u8>, Principal) {
    let (id, label, person, roles, pool, county, stored) = row;
    let scope = match (pool, county) {
        (Some(p), _) => Scope::Pool(p),
        (None, Some(c)) => Scope::County(c),
        (None, None) => Scope::All,
    };
    let roles = roles.iter().filter_map(|r| Role::parse(r)).collect();
    (id, stored, Principal { token_id: id, label, person, roles, scope })
}

/// The principal a presented token stands for; `None` for anything unknown, malformed or
/// revoked (the caller answers 401 without saying which).
pub async fn authenticate(
    conn: &mut PgConnection,
    token: &str,
) -> Result<Option<Principal>, sqlx::Error> {
    let Some((id, secret)) = parse_token(token) else { return Ok(None) };
    let row: Option<TokenRow> = sqlx::query_as(&format!(
        "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE id = $1 AND revoked_at IS NULL"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let (_, stored, principal) = principal_of(row);
    Ok(bool::from(hash(secret).ct_eq(&stored)).then_some(principal))
}

/// How stale the server's copy of the token table may be: a revoked token stops working, and
/// a new one starts working, within this.
pub const TOKEN_REFRESH_INTERVAL: Duration = Duration::from_secs(1);

/// The live tokens, held in the process and reloaded at most once per
/// [`TOKEN_REFRESH_INTERVAL`], whoever asks. Requests authenticate against this copy, so no
/// request, and no flood of invented tokens, costs a database query of its own: the table is
/// read once a second at most, in total.
#[derive(Debug, Default)]
pub struct TokenCache {
    snapshot: std::sync::RwLock<Arc<Snapshot>>,
    /// Held while loading: one load at a time, and those waiting share its result.
    loading: tokio::sync::Mutex<()>,
    loads: AtomicU64,
}

#[derive(Debug, Default)]
struct Snapshot {
    /// When the query that produced this copy started.
    loaded_at: Option<Instant>,
    tokens: HashMap<Uuid, (Vec<u8>, Principal)>,
}

impl TokenCache {
    /// How many times the token table has been read: what the tests count.
    pub fn loads(&self) -> u64 {
        self.loads.load(Ordering::Relaxed)
    }

    fn current(&self) -> Arc<Snapshot> {
        self.snapshot.read().expect("not poisoned").clone()
    }

    /// A copy loaded after `since` (waiting for the next allowed load if need be).
    async fn load_after(
        &self,
        pool: &PgPool,
        since: Instant,
    ) -> Result<Arc<Snapshot>, sqlx::Error> {
        let _loading = self.loading.lock().await;
        let current = self.current();
        if current.loaded_at.is_some_and(|at| at >= since) {
            return Ok(current);
        }
        if let Some(at) = current.loaded_at {
            // At most one load per interval, however many unknown tokens arrive.
            tokio::time::sleep_until(tokio::time::Instant::from_std(at + TOKEN_REFRESH_INTERVAL))
                .await;
        }
        let started = Instant::now();
        self.loads.fetch_add(1, Ordering::Relaxed);
        let rows: Vec<TokenRow> = sqlx::query_as(&format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE revoked_at IS NULL"
        ))
        .fetch_all(pool)
        .await?;
        let tokens = rows
            .into_iter()
            .map(|row| {
                let (id, stored, principal) = principal_of(row);
                (id, (stored, principal))
            })
            .collect();
        let fresh = Arc::new(Snapshot { loaded_at: Some(started), tokens });
        *self.snapshot.write().expect("not poisoned") = fresh.clone();
        Ok(fresh)
    }

    /// A copy no older than [`TOKEN_REFRESH_INTERVAL`].
    async fn fresh(&self, pool: &PgPool) -> Result<Arc<Snapshot>, sqlx::Error> {
        let now = Instant::now();
        let current = self.current();
        match current.loaded_at {
            Some(at) if now.duration_since(at) < TOKEN_REFRESH_INTERVAL => Ok(current),
            _ => self.load_after(pool, now - TOKEN_REFRESH_INTERVAL).await,
        }
    }

    /// The principal of a presented token; `None` when it is malformed, unknown, revoked or
    /// wrong. A malformed token is refused without looking anything up.
    pub async fn authenticate(
        &self,
        pool: &PgPool,
        token: &str,
    ) -> Result<Option<Principal>, sqlx::Error> {
        let Some((id, secret)) = parse_token(token) else { return Ok(None) };
        let arrived = Instant::now();
        let mut snapshot = self.fresh(pool).await?;
        if !snapshot.tokens.contains_key(&id) {
            // Perhaps created since the copy was loaded: wait for the next load.
            snapshot = self.load_after(pool, arrived).await?;
        }
        let Some((stored, principal)) = snapshot.tokens.get(&id) else { return Ok(None) };
        Ok(bool::from(hash(secret).ct_eq(stored)).then(|| principal.clone()))
    }

    /// Whether a token authenticated earlier still stands (not revoked), as of a copy no older
    /// than [`TOKEN_REFRESH_INTERVAL`]: long-lived streams ask this.
    pub async fn still_valid(&self, pool: &PgPool, token_id: Uuid) -> Result<bool, sqlx::Error> {
        Ok(self.fresh(pool).await?.tokens.contains_key(&token_id))
    }
}

pub async fn list(conn: &mut PgConnection) -> Result<Vec<TokenInfo>, sqlx::Error> {
    type Row = (
        Uuid,
        String,
        String,
        Vec<String>,
        Option<String>,
        Option<String>,
        chrono::DateTime<chrono::Utc>,
        Option<chrono::DateTime<chrono::Utc>>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, label, person, roles, pool, county, created_at, revoked_at FROM api_tokens ORDER BY created_at, id",
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, label, person, roles, pool, county, created_at, revoked_at)| TokenInfo {
            id,
            label,
            person,
            roles,
            pool,
            county,
            created_at,
            revoked_at,
        })
        .collect())
}

/// Revokes a token by id (as `token list` shows it, or the whole token).
pub async fn revoke(conn: &mut PgConnection, id: &str) -> Result<(), TokenError> {
    let raw = id.strip_prefix("fl_").map_or(id, |t| t.split('_').next().unwrap_or(t));
    let uuid = Uuid::try_parse(raw).map_err(|_| TokenError::NotFound(id.to_string()))?;
    let done =
        sqlx::query("UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1")
            .bind(uuid)
            .execute(conn)
            .await?;
    if done.rows_affected() == 0 {
        return Err(TokenError::NotFound(id.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_need_their_scope() {
        assert!(matches!(
            parse_roles("county_clerk", None, None),
            Err(TokenError::ScopeMissing { needed: "county", .. })
        ));
        assert!(matches!(
            parse_roles("city_finance", None, Some("370811")),
            Err(TokenError::ScopeMissing { needed: "pool", .. })
        ));
        assert!(matches!(
            parse_roles("county_clerk,city_finance", Some("370800"), None),
            Err(TokenError::MixedScopes(..))
        ));
        assert!(parse_roles("admin", Some("370800"), None).is_err());
        assert!(matches!(
            parse_roles("auditor,county_clerk", None, Some("370811")),
            Err(TokenError::MixedScopes(..))
        ));
        assert!(matches!(parse_roles("boss", None, None), Err(TokenError::UnknownRole(_))));
        let (roles, scope) =
            parse_roles("county_clerk, county_reviewer", None, Some("370811")).unwrap();
        assert_eq!(roles, vec![Role::CountyClerk, Role::CountyReviewer]);
        assert_eq!(scope, Scope::County("370811".into()));
        assert_eq!(parse_roles("auditor", None, None).unwrap().1, Scope::All);
    }
}
