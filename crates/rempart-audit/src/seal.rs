//! Payload sealing: every sealed payload is encrypted under a key derived for its record from
//! its data subject's key, and subject keys are stored wrapped under the instance's master key.
//!
//! ```text
//! subject key  K_s   random 32 bytes, stored as XChaCha20-Poly1305(wrap key, K_s, aad = key id)
//! record key   K_r = HMAC-SHA256(K_s, "rempart-ledger/1 record" || seq)
//! body             = nonce (24) || XChaCha20-Poly1305(K_r, payload, aad = "rempart-ledger/1" || seq || kind)
//! ```
//!
//! Destroying `K_s` makes every payload of that subject unreadable while every hash stays
//! checkable; disclosing `K_r` to an auditor opens exactly one record.

use std::io::Write;
use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use rand::TryRngCore;
use sha2::Sha256;

use crate::AuditError;

const NONCE: usize = 24;
const RECORD_KEY_LABEL: &[u8] = b"rempart-ledger/1 record";
const AAD_LABEL: &[u8] = b"rempart-ledger/1";

/// A 32-byte symmetric key; zeroed on drop is left to the allocator (keys live briefly).
pub type Key = [u8; 32];

fn hmac(key: &[u8], parts: &[&[u8]]) -> Key {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC takes any key"));
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// Fills `buf` from the operating system's random source. A system that cannot supply
/// randomness cannot seal anything safely, so this is the one place the ledger panics.
fn fill_random(buf: &mut [u8]) {
    #[allow(clippy::panic, reason = "no safe way to continue without randomness")]
    if let Err(e) = rand::rngs::OsRng.try_fill_bytes(buf) {
        panic!("the operating system's random source failed: {e}");
    }
}

pub fn random_key() -> Key {
    let mut k = [0u8; 32];
    fill_random(&mut k);
    k
}

/// The instance's master key: wraps subject keys and keys the subject MAC.
#[derive(Clone)]
pub struct MasterKey {
    wrap: Key,
    mac: Key,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    pub fn from_secret(secret: &Key) -> Self {
        MasterKey {
            wrap: hmac(secret, &[b"rempart master wrap"]),
            mac: hmac(secret, &[b"rempart master subject-mac"]),
        }
    }

    /// Reads the key file (64 hex digits), creating it with a fresh key (mode 0600) if it does
    /// not exist.
    pub fn load_or_create(path: &Path) -> Result<Self, AuditError> {
        let key_error = |reason: String| AuditError::Key {
            path: path.display().to_string(),
            reason,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let bytes = hex::decode(text.trim()).map_err(|e| key_error(format!("not hex: {e}")))?;
                let secret = Key::try_from(bytes.as_slice())
                    .map_err(|_| key_error(format!("expected 32 bytes, found {}", bytes.len())))?;
                Ok(Self::from_secret(&secret))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let secret = random_key();
                match write_secret_file(path, format!("{}\n", hex::encode(secret)).as_bytes()) {
                    Ok(()) => Ok(Self::from_secret(&secret)),
                    // Another process starting on the same fresh directory made it first:
                    // its key, complete, is the one.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Self::load_existing(path),
                    Err(e) => Err(key_error(e.to_string())),
                }
            }
            Err(e) => Err(key_error(e.to_string())),
        }
    }

    /// Reads the key file, which must exist.
    pub fn load_existing(path: &Path) -> Result<Self, AuditError> {
        if !path.is_file() {
            return Err(AuditError::Key {
                path: path.display().to_string(),
                reason: "no such file".to_owned(),
            });
        }
        Self::load_or_create(path)
    }

    /// A secret for another purpose (`label`), derived from the master key.
    pub fn derive_secret(&self, label: &str) -> Key {
        hmac(&self.mac, &[b"rempart derived secret\0", label.as_bytes()])
    }

    /// A keyed MAC of a subject's name: finds its key without storing the name.
    pub fn subject_mac(&self, subject: &str) -> String {
        hex::encode(hmac(&self.mac, &[b"subject:", subject.as_bytes()]))
    }

    pub fn wrap(&self, key: &Key, key_id: &str) -> Vec<u8> {
        encrypt(&self.wrap, key, key_id.as_bytes())
    }

    pub fn unwrap(&self, wrapped: &[u8], key_id: &str) -> Result<Key, AuditError> {
        let key = decrypt(&self.wrap, wrapped, key_id.as_bytes()).ok_or_else(|| AuditError::Unseal {
            what: format!("key {key_id}"),
            reason: "wrapped under a different master key, or altered".to_owned(),
        })?;
        Key::try_from(key.as_slice()).map_err(|_| AuditError::Unseal {
            what: format!("key {key_id}"),
            reason: "not a 32-byte key".to_owned(),
        })
    }
}

/// Writes a new secret file readable by its owner only; refuses to overwrite.
pub fn write_secret_file(path: &Path, content: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        rempart_store::private_dir(parent)?;
    }
    // Written whole under a name of this process's own, then linked into place, which fails
    // if the file exists: another process never reads a half-written key, and never has its
    // key replaced.
    let tmp = path.with_extension(format!(
        "tmp.{}.{}",
        std::process::id(),
        hex::encode(&random_key()[..4])
    ));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options.open(&tmp).and_then(|mut file| {
        file.write_all(content)?;
        file.sync_all()
    });
    let linked = written.and_then(|()| std::fs::hard_link(&tmp, path));
    let _ = std::fs::remove_file(&tmp);
    linked
}

/// The key of one record, derived from its subject's key.
pub fn record_key(subject_key: &Key, seq: u64) -> Key {
    hmac(subject_key, &[RECORD_KEY_LABEL, &seq.to_be_bytes()])
}

fn payload_aad(seq: u64, kind: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(AAD_LABEL.len() + 8 + kind.len());
    aad.extend_from_slice(AAD_LABEL);
    aad.extend_from_slice(&seq.to_be_bytes());
    aad.extend_from_slice(kind.as_bytes());
    aad
}

/// Seals a payload for record `seq` of `kind`.
pub fn seal(record_key: &Key, seq: u64, kind: &str, plaintext: &[u8]) -> Vec<u8> {
    encrypt(record_key, plaintext, &payload_aad(seq, kind))
}

/// Opens a sealed payload; `None` if the key is wrong or the body was altered.
pub fn open(record_key: &Key, seq: u64, kind: &str, body: &[u8]) -> Option<Vec<u8>> {
    decrypt(record_key, body, &payload_aad(seq, kind))
}

/// Derives a purpose-bound key from a subject key (`label` names the purpose and the item).
pub fn derive(subject_key: &Key, label: &[&[u8]]) -> Key {
    hmac(subject_key, label)
}

/// Encrypts with XChaCha20-Poly1305 under a random nonce: `nonce || ciphertext`.
pub fn encrypt(key: &Key, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
    let cipher = XChaCha20Poly1305::new(key.into());
    let mut nonce = [0u8; NONCE];
    fill_random(&mut nonce);
    let mut out = nonce.to_vec();
    // Encryption into a Vec fails only on a plaintext longer than the cipher's 256 GiB limit.
    match cipher.encrypt(XNonce::from_slice(&nonce), Payload { msg: plaintext, aad }) {
        Ok(ct) => out.extend_from_slice(&ct),
        Err(_) => unreachable!("payloads are far below the XChaCha20-Poly1305 length limit"),
    }
    out
}

/// Opens what [`encrypt`] sealed; `None` if the key, the associated data or the bytes differ.
pub fn decrypt(key: &Key, body: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
    if body.len() < NONCE {
        return None;
    }
    let (nonce, ct) = body.split_at(NONCE);
    XChaCha20Poly1305::new(key.into())
        .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad })
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Processes starting at once on a fresh data directory all get the one key that was
    /// written, whole, whichever wrote it (a second writer once failed with "File exists", or
    /// read a half-written file).
    #[test]
    fn keys_created_at_once_are_one_key() {
        for _ in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let master = dir.path().join("keys/master.key");
            let signing = dir.path().join("keys/signing.pem");
            let results: Vec<_> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..8)
                    .map(|_| {
                        s.spawn(|| {
                            let m = MasterKey::load_or_create(&master).unwrap();
                            let k = crate::Signer::load(&signing, "rempart/test", true).unwrap();
                            (m.derive_secret("probe"), k.verifier().vkey())
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            assert!(results.windows(2).all(|w| w[0] == w[1]));
            let names: Vec<_> = std::fs::read_dir(dir.path().join("keys"))
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert_eq!(names.len(), 2, "no temporary file left: {names:?}");
        }
    }

    #[test]
    fn a_sealed_payload_opens_only_with_its_record_key_seq_and_kind() {
        let subject = random_key();
        let k5 = record_key(&subject, 5);
        let body = seal(&k5, 5, "alert.raise", b"{\"user\":\"alice\"}");
        assert_eq!(
            open(&k5, 5, "alert.raise", &body).as_deref(),
            Some(&b"{\"user\":\"alice\"}"[..])
        );
        assert!(open(&record_key(&subject, 6), 5, "alert.raise", &body).is_none());
        assert!(open(&k5, 6, "alert.raise", &body).is_none(), "moved to another record");
        assert!(open(&k5, 5, "token.create", &body).is_none(), "relabelled");
        let mut flipped = body.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(open(&k5, 5, "alert.raise", &flipped).is_none());
    }

    #[test]
    fn wrapped_keys_unwrap_only_under_their_master_and_id() {
        let m = MasterKey::from_secret(&random_key());
        let k = random_key();
        let w = m.wrap(&k, "key-1");
        assert_eq!(m.unwrap(&w, "key-1").ok(), Some(k));
        assert!(m.unwrap(&w, "key-2").is_err());
        assert!(MasterKey::from_secret(&random_key()).unwrap(&w, "key-1").is_err());
        assert_eq!(m.subject_mac("user:alice"), m.subject_mac("user:alice"));
        assert_ne!(m.subject_mac("user:alice"), m.subject_mac("user:bob"));
    }
}
