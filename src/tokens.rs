//! API tokens: one per person, holding roles of one scope (a pool, a county, or everything).
//! Only a SHA-256 of the secret is stored; a presented token is found by its id and its secret
//! compared in constant time.

use std::fmt;

use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
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
) -> Result<String, TokenError> {
    if label.trim().is_empty() {
        return Err(TokenError::NoLabel);
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
        "INSERT INTO api_tokens (id, label, roles, pool, county, secret_hash) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(label.trim())
    .bind(&roles)
    .bind(pool)
    .bind(county)
    .bind(hash(&secret))
    .execute(conn)
    .await?;
    Ok(format!("fl_{}_{}", id.simple(), secret))
}

/// The principal a presented token stands for; `None` for anything unknown, malformed or
/// revoked (the caller answers 401 without saying which).
pub async fn authenticate(
    conn: &mut PgConnection,
    token: &str,
) -> Result<Option<Principal>, sqlx::Error> {
    let Some((id, secret)) = token.strip_prefix("fl_").and_then(|t| t.split_once('_')) else {
        return Ok(None);
    };
    let Ok(id) = Uuid::try_parse(id) else { return Ok(None) };
    type Row = (String, Vec<String>, Option<String>, Option<String>, Vec<u8>);
    let row: Option<Row> =
        sqlx::query_as(
            "SELECT label, roles, pool, county, secret_hash FROM api_tokens WHERE id = $1 AND revoked_at IS NULL",
        )
        .bind(id)
        .fetch_optional(conn)
        .await?;
    let Some((label, roles, pool, county, stored)) = row else { return Ok(None) };
    if !bool::from(hash(secret).ct_eq(&stored)) {
        return Ok(None);
    }
    let scope = match (pool, county) {
        (Some(p), _) => Scope::Pool(p),
        (None, Some(c)) => Scope::County(c),
        (None, None) => Scope::All,
    };
    Ok(Some(Principal {
        token_id: id,
        label,
        roles: roles.iter().filter_map(|r| Role::parse(r)).collect(),
        scope,
    }))
}

pub async fn list(conn: &mut PgConnection) -> Result<Vec<TokenInfo>, sqlx::Error> {
    type Row = (
        Uuid,
        String,
        Vec<String>,
        Option<String>,
        Option<String>,
        chrono::DateTime<chrono::Utc>,
        Option<chrono::DateTime<chrono::Utc>>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, label, roles, pool, county, created_at, revoked_at FROM api_tokens ORDER BY created_at, id",
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, label, roles, pool, county, created_at, revoked_at)| TokenInfo {
            id,
            label,
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
