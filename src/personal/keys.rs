//! The keys that protect personal information, kept outside the database.
//!
//! One file, `<data-dir>/keys/personal.key` by default or `FUNDLEDGER_KEY_FILE`, created on
//! first start with mode 0600 and never printed or logged. Losing it makes sealed values
//! unreadable and person keys unmatchable: back it up with the database, store it apart.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use aes_gcm::aead::rand_core::RngCore;
use aes_gcm::aead::OsRng;

const KEY_LEN: usize = 32;
/// Format marker on the first line, so a later format can be told apart.
const HEADER: &str = "fundledger-personal-keys v1";

/// The HMAC key for person keys and the AES-256-GCM key for sealed values.
pub struct Keys {
    hmac: [u8; KEY_LEN],
    seal: [u8; KEY_LEN],
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(..)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read or create the key file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the key file {path} is not a fundledger key file ({reason})")]
    Malformed { path: PathBuf, reason: &'static str },
    #[error(
        "the key file {path} can be read by other users (mode {mode:o}); run `chmod 600 {path}`"
    )]
    TooOpen { path: PathBuf, mode: u32 },
}

impl Keys {
    /// Fresh random keys.
    pub fn generate() -> Self {
        let mut keys = Self { hmac: [0; KEY_LEN], seal: [0; KEY_LEN] };
        OsRng.fill_bytes(&mut keys.hmac);
        OsRng.fill_bytes(&mut keys.seal);
        keys
    }

    /// The key file to use: `FUNDLEDGER_KEY_FILE`, or `keys/personal.key` under the data dir.
    pub fn default_path(data_dir: &Path) -> PathBuf {
        match std::env::var_os("FUNDLEDGER_KEY_FILE") {
            Some(p) if !p.is_empty() => PathBuf::from(p),
            _ => data_dir.join("keys").join("personal.key"),
        }
    }

    /// Reads the key file, creating it (mode 0600) with fresh keys if it does not exist.
    pub fn load_or_create(path: &Path) -> Result<Self, KeyError> {
        let io = |source| KeyError::Io { path: path.to_path_buf(), source };
        if !path.exists() {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(io)?;
            }
            let keys = Self::generate();
            let text = format!(
                "{HEADER}\nhmac {}\nseal {}\n",
                hex::encode(keys.hmac),
                hex::encode(keys.seal)
            );
            // create_new: two processes starting at once cannot both write a key file.
            match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
                Ok(mut f) => {
                    f.write_all(text.as_bytes()).map_err(io)?;
                    f.sync_all().map_err(io)?;
                    return Ok(keys);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io(e)),
            }
        }
        let mode = std::fs::metadata(path).map_err(io)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyError::TooOpen { path: path.to_path_buf(), mode });
        }
        Self::parse(&std::fs::read_to_string(path).map_err(io)?)
            .map_err(|reason| KeyError::Malformed { path: path.to_path_buf(), reason })
    }

    fn parse(text: &str) -> Result<Self, &'static str> {
        let mut lines = text.lines();
        if lines.next() != Some(HEADER) {
            return Err("missing header line");
        }
        let mut read = |name: &str| -> Result<[u8; KEY_LEN], &'static str> {
            let line = lines.next().ok_or("missing key line")?;
            let hex_key = line
                .strip_prefix(name)
                .and_then(|r| r.strip_prefix(' '))
                .ok_or("unexpected key name")?;
            let bytes = hex::decode(hex_key).map_err(|_| "key is not hex")?;
            bytes.try_into().map_err(|_| "key is not 32 bytes")
        };
        Ok(Self { hmac: read("hmac")?, seal: read("seal")? })
    }

    pub(crate) fn hmac_key(&self) -> &[u8] {
        &self.hmac
    }

    pub(crate) fn seal_key(&self) -> &[u8] {
        &self.seal
    }
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
        let first = Keys::load_or_create(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let again = Keys::load_or_create(&path).unwrap();
        assert_eq!((first.hmac, first.seal), (again.hmac, again.seal));
        assert_eq!(format!("{first:?}"), "Keys(..)", "keys never print");
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn a_readable_or_damaged_key_file_is_refused() {
        let path = temp_path();
        Keys::load_or_create(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(Keys::load_or_create(&path), Err(KeyError::TooOpen { mode: 0o644, .. })));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&path, "fundledger-personal-keys v1\nhmac 00\n").unwrap();
        assert!(matches!(Keys::load_or_create(&path), Err(KeyError::Malformed { .. })));
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }
}
