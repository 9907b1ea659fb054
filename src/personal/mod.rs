//! Personal information (个人信息) in an immutable log.
//!
//! Events cannot be changed once written, so what they hold about a person is decided here,
//! once: a resident ID number is stored as
//! - a keyed hash ([`PersonKey`], HMAC-SHA256) that matches one person across counties and
//!   years without revealing the number, and
//! - a sealed copy ([`Sealed`], AES-256-GCM) for the views allowed to show it;
//!
//! names are stored sealed only. Lists, notices and logs show masked forms
//! (`张*三`, `370802********1234`). The keys live outside the database ([`keys`]).

pub mod keys;

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub use keys::{KeyError, Keys};

/// The keyed hash of a resident ID number: lowercase hex of HMAC-SHA256. Equal numbers give
/// equal keys under one key file; nothing about the number can be read back from it.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct PersonKey(String);

impl PersonKey {
    /// `id_number` must be the canonical form (18 characters, upper-case X), as printed by
    /// `policy::IdNumber`, so that `...123x` and `...123X` are one person.
    pub fn derive(keys: &Keys, id_number: &policy::IdNumber) -> Self {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(keys.hmac_key())
            .expect("HMAC takes any key length");
        mac.update(id_number.to_string().as_bytes());
        Self(hex::encode(mac.finalize().into_bytes()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The keyed hash of a bank account number (lowercase hex of HMAC-SHA256 over `account:` and
/// the digits), under the person-key HMAC key: equal accounts compare equal (the flags of
/// `GET /v1/flags`) while the number itself stays sealed. The prefix keeps an account's key
/// from ever equalling a person's.
pub fn account_key(keys: &Keys, number: &str) -> String {
    let digits: String = number.chars().filter(|c| !c.is_whitespace()).collect();
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(keys.hmac_key()).expect("HMAC takes any key length");
    mac.update(b"account:");
    mac.update(digits.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// A value sealed with AES-256-GCM: `k<key id>:` and base64 of nonce (12 bytes) followed by
/// the ciphertext and tag. The key id names the sealing key (keys rotate; [`keys`]); values
/// sealed before ids existed have no prefix and were sealed under key id 1. The field it
/// belongs to is bound in as associated data, so a sealed name cannot be passed off as a
/// sealed ID number.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Sealed(String);

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealed(..)")
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OpenError {
    #[error("the sealed value is not valid base64 or too short")]
    Malformed,
    #[error("the sealed value does not open with this key for field `{0}` (wrong key, wrong field, or altered)")]
    Rejected(&'static str),
    #[error("the sealed value was sealed under key id {0}, which the key file does not hold")]
    UnknownKey(u32),
}

/// The fields sealed values belong to; the associated data of the seal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    IdNumber,
    Name,
    BankAccount,
    /// 职业技能等级证书编号: identifies the holder as surely as a name does.
    CertificateNumber,
}

impl Field {
    fn name(self) -> &'static str {
        match self {
            Field::IdNumber => "id_number",
            Field::Name => "name",
            Field::BankAccount => "bank_account",
            Field::CertificateNumber => "certificate_number",
        }
    }
}

const NONCE_LEN: usize = 12;

impl Sealed {
    pub fn seal(keys: &Keys, field: Field, plaintext: &str) -> Self {
        let key_id = keys.current_seal_id();
        let key = keys.seal_key(key_id).expect("the current sealing key");
        let cipher = Aes256Gcm::new_from_slice(key).expect("a 32-byte key");
        // A fresh random nonce per seal: 96-bit nonces stay safe far beyond the number of
        // values one key will ever seal here.
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let ciphertext = cipher
            .encrypt(&nonce, Payload { msg: plaintext.as_bytes(), aad: field.name().as_bytes() })
            .expect("encryption of a short value cannot fail");
        let mut bytes = nonce.to_vec();
        bytes.extend(ciphertext);
        Self(format!("k{key_id}:{}", base64::engine::general_purpose::STANDARD.encode(bytes)))
    }

    /// The id of the key this value was sealed under.
    pub fn key_id(&self) -> Result<u32, OpenError> {
        Ok(self.split()?.0)
    }

    fn split(&self) -> Result<(u32, &str), OpenError> {
        match self.0.strip_prefix('k').and_then(|r| r.split_once(':')) {
            Some((id, rest)) => Ok((id.parse().map_err(|_| OpenError::Malformed)?, rest)),
            // Base64 has no `:`: a value without the prefix predates key ids.
            None => Ok((1, &self.0)),
        }
    }

    pub fn open(&self, keys: &Keys, field: Field) -> Result<String, OpenError> {
        let (key_id, encoded) = self.split()?;
        let key = keys.seal_key(key_id).ok_or(OpenError::UnknownKey(key_id))?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| OpenError::Malformed)?;
        if bytes.len() <= NONCE_LEN {
            return Err(OpenError::Malformed);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let cipher = Aes256Gcm::new_from_slice(key).expect("a 32-byte key");
        let plain = cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload { msg: ciphertext, aad: field.name().as_bytes() },
            )
            .map_err(|_| OpenError::Rejected(field.name()))?;
        String::from_utf8(plain).map_err(|_| OpenError::Rejected(field.name()))
    }

    /// Seals a value bound to its field *and* to the record it belongs to (the stream of the
    /// event, or the payout): both are the associated data, so a sealed value copied into
    /// another record, or another field, does not open there.
    pub fn seal_bound(keys: &Keys, field: Field, record: &str, plaintext: &str) -> Self {
        let key_id = keys.current_seal_id();
        let key = keys.seal_key(key_id).expect("the current sealing key");
        let cipher = Aes256Gcm::new_from_slice(key).expect("a 32-byte key");
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let aad = bound_aad(field, record);
        let ciphertext = cipher
            .encrypt(&nonce, Payload { msg: plaintext.as_bytes(), aad: aad.as_bytes() })
            .expect("encryption of a short value cannot fail");
        let mut bytes = nonce.to_vec();
        bytes.extend(ciphertext);
        Self(format!("k{key_id}:{}", base64::engine::general_purpose::STANDARD.encode(bytes)))
    }

    /// Opens a value of `record`: sealed bound to it ([`Sealed::seal_bound`]), or an older
    /// value sealed to its field only (before values were bound to records). A value bound to
    /// another record opens neither way.
    pub fn open_bound(&self, keys: &Keys, field: Field, record: &str) -> Result<String, OpenError> {
        let (key_id, encoded) = self.split()?;
        let key = keys.seal_key(key_id).ok_or(OpenError::UnknownKey(key_id))?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| OpenError::Malformed)?;
        if bytes.len() <= NONCE_LEN {
            return Err(OpenError::Malformed);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let cipher = Aes256Gcm::new_from_slice(key).expect("a 32-byte key");
        let aad = bound_aad(field, record);
        let plain = cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ciphertext, aad: aad.as_bytes() })
            .or_else(|_| {
                cipher.decrypt(
                    Nonce::from_slice(nonce),
                    Payload { msg: ciphertext, aad: field.name().as_bytes() },
                )
            })
            .map_err(|_| OpenError::Rejected(field.name()))?;
        String::from_utf8(plain).map_err(|_| OpenError::Rejected(field.name()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The associated data of a bound seal: field and record, separated by a byte neither holds.
fn bound_aad(field: Field, record: &str) -> String {
    format!("{}\u{1f}{record}", field.name())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> policy::IdNumber {
        policy::IdNumber::parse(s).unwrap()
    }

    // A valid number: 17 digits and the ISO 7064 MOD 11-2 check character.
    const ID: &str = "11010519491231002X";

    #[test]
    fn one_person_has_one_key_and_keys_differ_between_key_files() {
        let (a, b) = (Keys::generate(), Keys::generate());
        let k1 = PersonKey::derive(&a, &id(ID));
        assert_eq!(k1, PersonKey::derive(&a, &id(&ID.to_lowercase())), "x and X are one person");
        assert_ne!(k1, PersonKey::derive(&b, &id(ID)));
        assert_eq!(k1.as_str().len(), 64);
        assert!(!k1.as_str().contains("110105"), "the key reveals nothing of the number");
    }

    #[test]
    fn sealed_values_open_only_with_their_key_and_field() {
        let (keys, other) = (Keys::generate(), Keys::generate());
        let sealed = Sealed::seal(&keys, Field::Name, "张小三");
        assert_eq!(sealed.open(&keys, Field::Name).unwrap(), "张小三");
        assert_ne!(sealed, Sealed::seal(&keys, Field::Name, "张小三"), "a fresh nonce every time");
        assert!(!sealed.as_str().contains("张"));
        assert_eq!(sealed.open(&other, Field::Name), Err(OpenError::Rejected("name")));
        assert_eq!(sealed.open(&keys, Field::IdNumber), Err(OpenError::Rejected("id_number")));
        assert_eq!(format!("{sealed:?}"), "Sealed(..)");
    }

    #[test]
    fn a_bound_seal_opens_only_in_its_record_and_field_and_old_seals_still_open() {
        let keys = Keys::generate();
        let sealed = Sealed::seal_bound(&keys, Field::Name, "application-a", "张小三");
        assert_eq!(sealed.open_bound(&keys, Field::Name, "application-a").unwrap(), "张小三");
        assert_eq!(
            sealed.open_bound(&keys, Field::Name, "application-b"),
            Err(OpenError::Rejected("name")),
            "moved to another record"
        );
        assert_eq!(
            sealed.open_bound(&keys, Field::IdNumber, "application-a"),
            Err(OpenError::Rejected("id_number"))
        );
        assert!(sealed.open(&keys, Field::Name).is_err(), "not an unbound seal");
        let old = Sealed::seal(&keys, Field::Name, "李四");
        assert_eq!(old.open_bound(&keys, Field::Name, "application-a").unwrap(), "李四");
    }

    #[test]
    fn an_altered_seal_is_refused() {
        let keys = Keys::generate();
        let sealed = Sealed::seal(&keys, Field::IdNumber, ID);
        let encoded = sealed.as_str().strip_prefix("k1:").unwrap();
        let mut bytes = base64::engine::general_purpose::STANDARD.decode(encoded).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let altered =
            Sealed(format!("k1:{}", base64::engine::general_purpose::STANDARD.encode(bytes)));
        assert_eq!(altered.open(&keys, Field::IdNumber), Err(OpenError::Rejected("id_number")));
        assert_eq!(Sealed("%%".into()).open(&keys, Field::IdNumber), Err(OpenError::Malformed));
    }

    #[test]
    fn after_rotation_new_values_name_the_new_key_and_old_ones_still_open() {
        let keys = Keys::generate();
        let old = Sealed::seal(&keys, Field::Name, "张小三");
        // A value from before key ids: bare base64, sealed under what is now key id 1.
        let legacy = Sealed(old.as_str().strip_prefix("k1:").unwrap().to_string());
        let rotated = keys.rotated();
        let new = Sealed::seal(&rotated, Field::Name, "李四");
        assert_eq!((old.key_id(), legacy.key_id(), new.key_id()), (Ok(1), Ok(1), Ok(2)));
        assert!(new.as_str().starts_with("k2:"));
        assert_eq!(old.open(&rotated, Field::Name).unwrap(), "张小三");
        assert_eq!(legacy.open(&rotated, Field::Name).unwrap(), "张小三");
        assert_eq!(new.open(&rotated, Field::Name).unwrap(), "李四");
        assert_eq!(new.open(&keys, Field::Name), Err(OpenError::UnknownKey(2)));
    }
}
