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
//!
//! Since migration 0016 a person's values are sealed under a data key of that person
//! ([`DataKey`], `p<generation>:`), itself kept sealed under the master sealing key in
//! `person_keys`, outside the log ([`data_keys`]). Erasing the person destroys that key: every
//! value sealed under it becomes unreadable in the log, in exports and in backups of the log,
//! while the log's bytes, its hashes and its signed checkpoints stay as they were
//! (crypto-shredding). Values sealed before (`k<id>:` or no prefix) stay under the master key.

pub mod data_keys;
pub mod keys;

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub use data_keys::DataKeys;
pub use keys::{KeyError, Keys};
pub use projections::applications::ERASED;

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

    /// A person key as recorded (64 lowercase hex characters), e.g. given to
    /// `fundledger persons erase --person-key`.
    pub fn parse(text: &str) -> Option<Self> {
        let ok = text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        ok.then(|| Self(text.to_string()))
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

/// A value sealed with AES-256-GCM: a prefix naming the key, and base64 of nonce (12 bytes)
/// followed by the ciphertext and tag. `k<key id>:` names a master sealing key (keys rotate;
/// [`keys`]); values sealed before ids existed have no prefix and were sealed under key id 1;
/// `p<generation>:` names a generation of the data key of the person the record is about
/// ([`DataKey`]; the record names the person). The field it belongs to is bound in as
/// associated data, so a sealed name cannot be passed off as a sealed ID number.
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
    /// A `p<generation>:` value: it opens with its person's data key only
    /// ([`DataKey::open_value`]), never with the master keys.
    #[error("the sealed value was sealed under generation {0} of a person's data key, not under a master key")]
    SealedForPerson(u32),
}

/// The fields sealed values belong to; the associated data of the seal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    IdNumber,
    Name,
    BankAccount,
    /// 职业技能等级证书编号: identifies the holder as surely as a name does.
    CertificateNumber,
    /// A person's data key, as `person_keys` keeps it (sealed under the master key).
    DataKey,
}

impl Field {
    pub fn name(self) -> &'static str {
        match self {
            Field::IdNumber => "id_number",
            Field::Name => "name",
            Field::BankAccount => "bank_account",
            Field::CertificateNumber => "certificate_number",
            Field::DataKey => "person_data_key",
        }
    }
}

const NONCE_LEN: usize = 12;

/// AES-256-GCM under `key` with `aad`: nonce (fresh, random) followed by ciphertext and tag,
/// in base64.
fn encrypt(key: &[u8], aad: &str, plaintext: &str) -> String {
    let cipher = Aes256Gcm::new_from_slice(key).expect("a 32-byte key");
    // A fresh random nonce per seal: 96-bit nonces stay safe far beyond the number of values
    // one key will ever seal here.
    let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
    let ciphertext = cipher
        .encrypt(&nonce, Payload { msg: plaintext.as_bytes(), aad: aad.as_bytes() })
        .expect("encryption of a short value cannot fail");
    let mut bytes = nonce.to_vec();
    bytes.extend(ciphertext);
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Opens what [`encrypt`] sealed, trying each of `aads` in turn.
fn decrypt(key: &[u8], encoded: &str, aads: &[&str], field: Field) -> Result<String, OpenError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| OpenError::Malformed)?;
    if bytes.len() <= NONCE_LEN {
        return Err(OpenError::Malformed);
    }
    let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
    let cipher = Aes256Gcm::new_from_slice(key).expect("a 32-byte key");
    let plain = aads
        .iter()
        .find_map(|aad| {
            cipher
                .decrypt(Nonce::from_slice(nonce), Payload { msg: ciphertext, aad: aad.as_bytes() })
                .ok()
        })
        .ok_or(OpenError::Rejected(field.name()))?;
    String::from_utf8(plain).map_err(|_| OpenError::Rejected(field.name()))
}

/// The key a sealed value names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SealedUnder {
    /// A master sealing key, by id.
    Master(u32),
    /// A generation of the record's person's data key.
    Person(u32),
}

impl Sealed {
    pub fn seal(keys: &Keys, field: Field, plaintext: &str) -> Self {
        let key_id = keys.current_seal_id();
        let key = keys.seal_key(key_id).expect("the current sealing key");
        Self(format!("k{key_id}:{}", encrypt(key, field.name(), plaintext)))
    }

    /// The id of the master key this value was sealed under
    /// ([`OpenError::SealedForPerson`] for a value sealed under a person's data key).
    pub fn key_id(&self) -> Result<u32, OpenError> {
        match self.split()? {
            (SealedUnder::Master(id), _) => Ok(id),
            (SealedUnder::Person(generation), _) => Err(OpenError::SealedForPerson(generation)),
        }
    }

    /// The generation of the person's data key this value was sealed under, if it was.
    pub fn person_generation(&self) -> Option<u32> {
        match self.split() {
            Ok((SealedUnder::Person(generation), _)) => Some(generation),
            _ => None,
        }
    }

    fn split(&self) -> Result<(SealedUnder, &str), OpenError> {
        let prefixed = |tag: char| -> Option<Result<(u32, &str), OpenError>> {
            let (id, rest) = self.0.strip_prefix(tag)?.split_once(':')?;
            Some(id.parse().map(|id| (id, rest)).map_err(|_| OpenError::Malformed))
        };
        // Base64 has no `:`: a value without a prefix predates key ids.
        if let Some(split) = prefixed('k') {
            return split.map(|(id, rest)| (SealedUnder::Master(id), rest));
        }
        if let Some(split) = prefixed('p') {
            return split.map(|(generation, rest)| (SealedUnder::Person(generation), rest));
        }
        Ok((SealedUnder::Master(1), &self.0))
    }

    /// The master key of a value sealed under one.
    fn master<'k>(&self, keys: &'k Keys) -> Result<(&'k [u8], &str), OpenError> {
        match self.split()? {
            (SealedUnder::Master(id), encoded) => {
                Ok((keys.seal_key(id).ok_or(OpenError::UnknownKey(id))?, encoded))
            }
            (SealedUnder::Person(generation), _) => Err(OpenError::SealedForPerson(generation)),
        }
    }

    pub fn open(&self, keys: &Keys, field: Field) -> Result<String, OpenError> {
        let (key, encoded) = self.master(keys)?;
        decrypt(key, encoded, &[field.name()], field)
    }

    /// Seals a value bound to its field *and* to the record it belongs to (the stream of the
    /// event, or the payout): both are the associated data, so a sealed value copied into
    /// another record, or another field, does not open there.
    pub fn seal_bound(keys: &Keys, field: Field, record: &str, plaintext: &str) -> Self {
        let key_id = keys.current_seal_id();
        let key = keys.seal_key(key_id).expect("the current sealing key");
        Self(format!("k{key_id}:{}", encrypt(key, &bound_aad(field, record), plaintext)))
    }

    /// Opens a value of `record`: sealed bound to it ([`Sealed::seal_bound`]), or an older
    /// value sealed to its field only (before values were bound to records). A value bound to
    /// another record opens neither way.
    pub fn open_bound(&self, keys: &Keys, field: Field, record: &str) -> Result<String, OpenError> {
        let (key, encoded) = self.master(keys)?;
        decrypt(key, encoded, &[&bound_aad(field, record), field.name()], field)
    }

    /// A value as recorded (a `*_sealed` field of an event).
    pub fn from_recorded(text: &str) -> Self {
        Self(text.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One person's data key (crypto-shredding): what that person's ID number, name, certificate
/// number and bank accounts are sealed under (`p<generation>:`, bound to field and record like
/// [`Sealed::seal_bound`]). It is kept outside the log, in `person_keys`, sealed under the
/// master sealing key and bound to its person and generation ([`DataKey::sealed`]). Erasing
/// the person destroys it; a person who applies again afterwards gets the next generation.
#[derive(Clone)]
pub struct DataKey {
    generation: u32,
    key: [u8; 32],
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DataKey(generation {}, ..)", self.generation)
    }
}

impl DataKey {
    /// A fresh random key of `generation` (1 for a person's first).
    pub fn generate(generation: u32) -> Self {
        use aes_gcm::aead::rand_core::RngCore;
        let mut key = [0; 32];
        OsRng.fill_bytes(&mut key);
        Self { generation, key }
    }

    pub fn generation(&self) -> u32 {
        self.generation
    }

    /// The key as `person_keys.sealed_key` holds it: sealed under the master sealing key in
    /// force, bound to the person and the generation (a key copied to another row does not
    /// open there).
    pub fn sealed(&self, keys: &Keys, person: &str) -> Sealed {
        let record = data_key_record(person, self.generation);
        Sealed::seal_bound(keys, Field::DataKey, &record, &hex::encode(self.key))
    }

    /// Opens a person's data key of `generation` as `person_keys` holds it.
    pub fn open(
        keys: &Keys,
        person: &str,
        generation: u32,
        sealed: &Sealed,
    ) -> Result<Self, OpenError> {
        let record = data_key_record(person, generation);
        let (key, encoded) = sealed.master(keys)?;
        let text = decrypt(key, encoded, &[&bound_aad(Field::DataKey, &record)], Field::DataKey)?;
        let bytes = hex::decode(text).map_err(|_| OpenError::Malformed)?;
        let key = bytes.try_into().map_err(|_| OpenError::Malformed)?;
        Ok(Self { generation, key })
    }

    /// Seals a value of the person, bound to its field and record.
    pub fn seal(&self, field: Field, record: &str, plaintext: &str) -> Sealed {
        let sealed = encrypt(&self.key, &bound_aad(field, record), plaintext);
        Sealed(format!("p{}:{sealed}", self.generation))
    }

    /// Opens a value this key sealed ([`OpenError::Rejected`] for a value of another
    /// generation, another person, record or field).
    pub fn open_value(
        &self,
        sealed: &Sealed,
        field: Field,
        record: &str,
    ) -> Result<String, OpenError> {
        match sealed.split()? {
            (SealedUnder::Person(g), encoded) if g == self.generation => {
                decrypt(&self.key, encoded, &[&bound_aad(field, record)], field)
            }
            (SealedUnder::Person(_), _) => Err(OpenError::Rejected(field.name())),
            (SealedUnder::Master(id), _) => Err(OpenError::UnknownKey(id)),
        }
    }
}

/// The record a sealed data key is bound to.
fn data_key_record(person: &str, generation: u32) -> String {
    format!("person_keys/{person}/{generation}")
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

    const PERSON: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    #[test]
    fn a_persons_values_open_with_their_data_key_only_never_with_the_master_keys() {
        let keys = Keys::generate();
        let data = DataKey::generate(1);
        let sealed = data.seal(Field::Name, "application-a", "张小三");
        assert!(sealed.as_str().starts_with("p1:"), "{}", sealed.as_str());
        assert_eq!(sealed.person_generation(), Some(1));
        assert_eq!(data.open_value(&sealed, Field::Name, "application-a").unwrap(), "张小三");
        assert_eq!(sealed.open(&keys, Field::Name), Err(OpenError::SealedForPerson(1)));
        assert_eq!(
            sealed.open_bound(&keys, Field::Name, "application-a"),
            Err(OpenError::SealedForPerson(1))
        );
        assert_eq!(sealed.key_id(), Err(OpenError::SealedForPerson(1)));
        assert_eq!(
            data.open_value(&sealed, Field::Name, "application-b"),
            Err(OpenError::Rejected("name")),
            "bound to its record"
        );
        assert_eq!(
            DataKey::generate(1).open_value(&sealed, Field::Name, "application-a"),
            Err(OpenError::Rejected("name")),
            "another person's key"
        );
        assert_eq!(
            DataKey::generate(2).open_value(&sealed, Field::Name, "application-a"),
            Err(OpenError::Rejected("name")),
            "another generation"
        );
        let master = Sealed::seal(&keys, Field::Name, "李四");
        assert_eq!(data.open_value(&master, Field::Name, "x"), Err(OpenError::UnknownKey(1)));
        assert_eq!(format!("{data:?}"), "DataKey(generation 1, ..)", "a data key never prints");
    }

    #[test]
    fn a_sealed_data_key_opens_for_its_person_and_generation_and_after_rotation() {
        let keys = Keys::generate();
        let data = DataKey::generate(3);
        let sealed = data.sealed(&keys, PERSON);
        assert!(sealed.as_str().starts_with("k1:"));
        let value = data.seal(Field::IdNumber, "application-a", ID);
        let opened = DataKey::open(&keys, PERSON, 3, &sealed).unwrap();
        assert_eq!(opened.open_value(&value, Field::IdNumber, "application-a").unwrap(), ID);
        assert!(DataKey::open(&keys, PERSON, 2, &sealed).is_err(), "bound to its generation");
        let other = PERSON.replace('9', "8");
        assert!(DataKey::open(&keys, &other, 3, &sealed).is_err(), "bound to its person");
        assert!(DataKey::open(&Keys::generate(), PERSON, 3, &sealed).is_err());
        let rotated = keys.rotated();
        let reopened = DataKey::open(&rotated, PERSON, 3, &sealed).unwrap();
        assert_eq!(reopened.open_value(&value, Field::IdNumber, "application-a").unwrap(), ID);
        assert!(data.sealed(&rotated, PERSON).as_str().starts_with("k2:"));
    }

    #[test]
    fn person_keys_parse_as_recorded_only() {
        assert!(PersonKey::parse(PERSON).is_some());
        assert!(PersonKey::parse(&PERSON.to_uppercase()).is_none());
        assert!(PersonKey::parse(&PERSON[1..]).is_none());
        assert!(PersonKey::parse("11010519491231002X").is_none());
    }
}
