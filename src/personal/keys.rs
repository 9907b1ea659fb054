//! The keys that protect personal information, kept outside the database.
//!
//! One file, `personal.key` in the key directory (`--key-dir`; by default `keys/` under the
//! data directory of the private cluster) or `FUNDLEDGER_KEY_FILE`, mode 0600, never printed
//! or logged. It holds the HMAC key of person keys, which can never change (a person's
//! earlier subsidies are found by it), and the sealing keys by id: `fundledger keys rotate`
//! adds a new one that seals from then on, and the old ones stay to open what they sealed.
//! The database records a check value of each key (`key_checks`, [`crate::key_checks`]), so a
//! missing or different file stops the service instead of starting a new ledger.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use aes_gcm::aead::rand_core::RngCore;
use aes_gcm::aead::OsRng;
use hmac::{Hmac, Mac};
use sha2::Sha256;

const KEY_LEN: usize = 32;
/// Format marker on the first line. v1 held one sealing key (now key id 1).
const HEADER_V1: &str = "fundledger-personal-keys v1";
const HEADER: &str = "fundledger-personal-keys v2";
/// What a key check value is the HMAC of.
const CHECK_CONSTANT: &[u8] = b"fundledger key check v1";

/// The check value recorded in the database for a key: HMAC-SHA256(key, a constant). It tells
/// the right key from another and reveals nothing of it.
pub fn check_value(key: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(CHECK_CONSTANT);
    mac.finalize().into_bytes().into()
}

/// The HMAC key for person keys and the AES-256-GCM sealing keys by id.
#[derive(Clone)]
pub struct Keys {
    hmac: [u8; KEY_LEN],
    /// Sorted by id; the last one seals.
    seals: Vec<(u32, [u8; KEY_LEN])>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(..)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read or write the key file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the key file {path} does not exist")]
    Missing { path: PathBuf },
    #[error("the key file {path} is not a fundledger key file ({reason})")]
    Malformed { path: PathBuf, reason: &'static str },
    #[error(
        "the key file {path} can be read by other users (mode {mode:o}); run `chmod 600 {path}`"
    )]
    TooOpen { path: PathBuf, mode: u32 },
}

fn random_key() -> [u8; KEY_LEN] {
    let mut key = [0; KEY_LEN];
    OsRng.fill_bytes(&mut key);
    key
}

impl Keys {
    /// Fresh random keys (sealing key id 1).
    pub fn generate() -> Self {
        Self { hmac: random_key(), seals: vec![(1, random_key())] }
    }

    /// The key file to use: `FUNDLEDGER_KEY_FILE`, or `personal.key` in `key_dir`.
    pub fn default_path(key_dir: &Path) -> PathBuf {
        match std::env::var_os("FUNDLEDGER_KEY_FILE") {
            Some(p) if !p.is_empty() => PathBuf::from(p),
            _ => key_dir.join("personal.key"),
        }
    }

    /// Reads the key file; never creates one (see [`crate::key_checks::personal`]).
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let io = |source| KeyError::Io { path: path.to_path_buf(), source };
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(KeyError::Missing { path: path.to_path_buf() })
            }
            Err(e) => return Err(io(e)),
        };
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyError::TooOpen { path: path.to_path_buf(), mode });
        }
        Self::parse(&std::fs::read_to_string(path).map_err(io)?)
            .map_err(|reason| KeyError::Malformed { path: path.to_path_buf(), reason })
    }

    /// Writes a new key file (mode 0600, in a directory of mode 0700 if it creates one); fails
    /// if one exists, so two processes starting at once cannot both write one.
    pub fn create(&self, path: &Path) -> Result<(), KeyError> {
        write_new(path, &self.text())
    }

    /// Replaces the key file with these keys: written beside it, flushed, then renamed over
    /// it, so a crash leaves the old file or the new one, never half of one.
    pub fn replace(&self, path: &Path) -> Result<(), KeyError> {
        let io = |source| KeyError::Io { path: path.to_path_buf(), source };
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".new");
        let tmp = PathBuf::from(tmp);
        let _ = std::fs::remove_file(&tmp);
        write_new(&tmp, &self.text())?;
        std::fs::rename(&tmp, path).map_err(io)?;
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
        }
        Ok(())
    }

    /// These keys and a new sealing key, which seals from now on.
    pub fn rotated(&self) -> Self {
        let mut next = self.clone();
        next.seals.push((self.current_seal_id() + 1, random_key()));
        next
    }

    fn text(&self) -> String {
        let mut text = format!("{HEADER}\nhmac {}\n", hex::encode(self.hmac));
        for (id, key) in &self.seals {
            text.push_str(&format!("seal {id} {}\n", hex::encode(key)));
        }
        text
    }

    fn parse(text: &str) -> Result<Self, &'static str> {
        let mut lines = text.lines();
        let header = lines.next();
        if header != Some(HEADER) && header != Some(HEADER_V1) {
            return Err("missing header line");
        }
        let hex_key = |h: &str| -> Result<[u8; KEY_LEN], &'static str> {
            let bytes = hex::decode(h).map_err(|_| "key is not hex")?;
            bytes.try_into().map_err(|_| "key is not 32 bytes")
        };
        let hmac = lines
            .next()
            .and_then(|l| l.strip_prefix("hmac "))
            .ok_or("missing hmac line")
            .and_then(hex_key)?;
        let mut seals = Vec::new();
        for line in lines.filter(|l| !l.trim().is_empty()) {
            let rest = line.strip_prefix("seal ").ok_or("unexpected key name")?;
            let (id, key) = if header == Some(HEADER_V1) {
                (1, rest)
            } else {
                let (id, key) = rest.split_once(' ').ok_or("a seal line without an id")?;
                (id.parse::<u32>().map_err(|_| "a seal key id is not a number")?, key)
            };
            if seals.last().is_some_and(|(last, _)| *last >= id) || id == 0 {
                return Err("seal key ids must increase from 1");
            }
            seals.push((id, hex_key(key)?));
        }
        if seals.is_empty() || (header == Some(HEADER_V1) && seals.len() != 1) {
            return Err("missing seal line");
        }
        Ok(Self { hmac, seals })
    }

    pub(crate) fn hmac_key(&self) -> &[u8] {
        &self.hmac
    }

    /// The id of the key new values are sealed with.
    pub fn current_seal_id(&self) -> u32 {
        self.seals.last().expect("at least one sealing key").0
    }

    pub(crate) fn seal_key(&self, id: u32) -> Option<&[u8]> {
        self.seals.iter().find(|(i, _)| *i == id).map(|(_, k)| k.as_slice())
    }

    /// (purpose, key id, check value) of every key, as `key_checks` records them.
    pub fn check_values(&self) -> Vec<(&'static str, u32, [u8; 32])> {
        let mut checks = vec![("person", 1, check_value(&self.hmac))];
        checks.extend(self.seals.iter().map(|(id, k)| ("seal", *id, check_value(k))));
        checks
    }
}

/// Creates `path` with `text`, mode 0600; its directory, if missing, with mode 0700.
pub(crate) fn write_new(path: &Path, text: &str) -> Result<(), KeyError> {
    let io = |source| KeyError::Io { path: path.to_path_buf(), source };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        // Only the key directory itself is private: its parents may be the data directory,
        // which the PostgreSQL server's own account must be able to pass through.
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        std::fs::DirBuilder::new().mode(0o700).create(dir).map_err(io)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    f.write_all(text.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_path() -> PathBuf {
        std::env::temp_dir()
            .join(format!("fundledger-keys-{}", uuid::Uuid::new_v4().simple()))
            .join("personal.key")
    }

    #[test]
    fn the_key_file_is_created_private_and_read_back_the_same() {
        let path = temp_path();
        assert!(matches!(Keys::load(&path), Err(KeyError::Missing { .. })), "never created");
        let first = Keys::generate();
        first.create(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = std::fs::metadata(path.parent().unwrap()).unwrap().permissions().mode();
        assert_eq!(dir_mode & 0o777, 0o700);
        assert!(first.create(&path).is_err(), "an existing key file is never overwritten");
        let again = Keys::load(&path).unwrap();
        assert_eq!((first.hmac, first.seals.clone()), (again.hmac, again.seals));
        assert_eq!(format!("{first:?}"), "Keys(..)", "keys never print");
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn a_rotated_file_keeps_every_key_and_a_v1_file_reads_as_key_id_1() {
        let path = temp_path();
        let first = Keys::generate();
        first.create(&path).unwrap();
        let rotated = first.rotated();
        rotated.replace(&path).unwrap();
        let read = Keys::load(&path).unwrap();
        assert_eq!(read.current_seal_id(), 2);
        assert_eq!(read.seal_key(1), first.seal_key(1));
        assert_eq!(read.hmac, first.hmac, "the person-key key never rotates");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);

        let v1 = format!(
            "fundledger-personal-keys v1\nhmac {}\nseal {}\n",
            hex::encode(first.hmac),
            hex::encode(first.seal_key(1).unwrap())
        );
        let parsed = Keys::parse(&v1).unwrap();
        assert_eq!((parsed.current_seal_id(), parsed.seal_key(1)), (1, first.seal_key(1)));
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn a_readable_or_damaged_key_file_is_refused() {
        let path = temp_path();
        Keys::generate().create(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(Keys::load(&path), Err(KeyError::TooOpen { mode: 0o644, .. })));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&path, "fundledger-personal-keys v2\nhmac 00\n").unwrap();
        assert!(matches!(Keys::load(&path), Err(KeyError::Malformed { .. })));
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }
}
