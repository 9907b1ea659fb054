//! Persons' data keys in `person_keys` (migration 0016), outside the log: read with a
//! command's read, recorded with its events (in the statement of the append, so a key exists
//! exactly when something sealed under it was recorded), destroyed by erasure.
//!
//! A row is `(person_key, generation, sealed_key, created_at, erased_at)`: the key sealed
//! under the master sealing key ([`DataKey::sealed`]), or, once erased, no key and the time
//! it was erased. The database lets a row change only that way (a trigger): a data key is
//! never replaced, and never deleted. At most one generation of a person is live.

use std::collections::BTreeMap;

use sqlx::PgConnection;

use super::{DataKey, Keys, OpenError, Sealed};

/// One row of `person_keys`; `sealed_key` is none once erased.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, sqlx::FromRow)]
pub struct DataKeyRow {
    pub person_key: String,
    pub generation: i32,
    pub sealed_key: Option<String>,
}

/// A data key to record with the command's events.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NewDataKey {
    pub person_key: String,
    pub generation: i32,
    pub sealed_key: String,
}

/// The data keys a command seals with: one per person it was asked for.
#[derive(Debug, Default)]
pub struct DataKeys {
    by_person: BTreeMap<String, DataKey>,
}

impl DataKeys {
    /// From each person's latest row ([`latest`]): its live key, opened with the master keys;
    /// for a person with none (never seen, or erased) a new key of the next generation, which
    /// the command records with its events (returned).
    pub fn from_latest(
        keys: &Keys,
        persons: &[&str],
        rows: &[DataKeyRow],
    ) -> Result<(Self, Vec<NewDataKey>), OpenError> {
        let mut by_person = BTreeMap::new();
        let mut new = Vec::new();
        for person in persons {
            if by_person.contains_key(*person) {
                continue;
            }
            let latest =
                rows.iter().filter(|r| r.person_key == *person).max_by_key(|r| r.generation);
            let key = match latest {
                Some(DataKeyRow { generation, sealed_key: Some(sealed), .. }) => {
                    let generation =
                        u32::try_from(*generation).map_err(|_| OpenError::Malformed)?;
                    DataKey::open(keys, person, generation, &Sealed::from_recorded(sealed))?
                }
                erased_or_none => {
                    let generation = erased_or_none.map_or(1, |r| r.generation + 1);
                    let key =
                        DataKey::generate(u32::try_from(generation).expect("generations from 1"));
                    new.push(NewDataKey {
                        person_key: person.to_string(),
                        generation,
                        sealed_key: key.sealed(keys, person).as_str().to_string(),
                    });
                    key
                }
            };
            by_person.insert(person.to_string(), key);
        }
        Ok((DataKeys { by_person }, new))
    }

    /// The data key of `person`, one of those it was made for.
    pub fn of(&self, person: &str) -> &DataKey {
        self.by_person.get(person).expect("the data keys were read for this person")
    }
}

/// The latest row of each of `persons`, as [`latest`] reads them; `fundledger_lock_read`
/// (migration 0016) returns the same as JSON.
pub const LATEST_SQL: &str = "SELECT DISTINCT ON (person_key) person_key, generation, sealed_key
       FROM person_keys WHERE person_key = ANY($1) ORDER BY person_key, generation DESC";

/// The latest data key row of each of `persons` (none for a person never seen).
pub async fn latest(
    conn: &mut PgConnection,
    persons: &[&str],
) -> Result<Vec<DataKeyRow>, sqlx::Error> {
    sqlx::query_as(LATEST_SQL).bind(persons).fetch_all(conn).await
}

/// Every generation of `persons`, erased ones included (for the views that open values).
pub async fn all_of(
    conn: &mut PgConnection,
    persons: &[&str],
) -> Result<Vec<DataKeyRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT person_key, generation, sealed_key FROM person_keys
          WHERE person_key = ANY($1) ORDER BY person_key, generation",
    )
    .bind(persons)
    .fetch_all(conn)
    .await
}

/// Destroys the live data key of `person`, if there is one: its generation.
pub async fn erase(conn: &mut PgConnection, person: &str) -> Result<Option<i32>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE person_keys SET sealed_key = NULL, erased_at = now()
          WHERE person_key = $1 AND erased_at IS NULL RETURNING generation",
    )
    .bind(person)
    .fetch_optional(conn)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    #[test]
    fn a_live_key_is_reused_and_a_person_without_one_gets_the_next_generation() {
        let keys = Keys::generate();
        let live = DataKey::generate(2);
        let rows = vec![
            DataKeyRow {
                person_key: A.into(),
                generation: 2,
                sealed_key: Some(live.sealed(&keys, A).as_str().into()),
            },
            DataKeyRow { person_key: B.into(), generation: 1, sealed_key: None },
        ];
        let (data, new) = DataKeys::from_latest(&keys, &[A, B, A], &rows).unwrap();
        let value = live.seal(super::super::Field::Name, "r", "张三");
        assert_eq!(data.of(A).open_value(&value, super::super::Field::Name, "r").unwrap(), "张三");
        assert_eq!(data.of(B).generation(), 2, "erased generation 1: the next one");
        assert_eq!(new.len(), 1, "only B's key is new: {new:?}");
        assert_eq!((new[0].person_key.as_str(), new[0].generation), (B, 2));
        let (data, new) = DataKeys::from_latest(&keys, &[A], &[]).unwrap();
        assert_eq!((data.of(A).generation(), new.len()), (1, 1), "a person never seen");
    }
}
