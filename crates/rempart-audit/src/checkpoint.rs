//! Signed checkpoints in the C2SP formats used by transparency logs (`tlog-checkpoint` inside a
//! `signed-note`), so that tools outside Rempart can check them:
//!
//! ```text
//! rempart/soc.example.eu          ← origin (the log's name)
//! 4096                            ← tree size
//! 3dE1k…=                         ← base64 Merkle root
//! time 2026-11-22T21:40:00Z       ← extension line
//!
//! — rempart/soc.example.eu AbCd…  ← base64(key hash (4 bytes) || Ed25519 signature)
//! ```
//!
//! A key is named by its verifier key string `name+hash+base64(0x01 || public key)`, the
//! `note` package's `vkey` format; the key hash is the first four bytes of
//! `SHA-256(name || "\n" || 0x01 || public key)`.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey, spki::der::pem::LineEnding};
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use jiff::Timestamp;
use rempart_store::Hash;
use sha2::{Digest, Sha256};

use crate::AuditError;
use crate::seal::{random_key, write_secret_file};

const ED25519: u8 = 0x01;
const SIG_PREFIX: &str = "\u{2014} ";

fn key_hash(name: &str, public: &[u8; 32]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([ED25519]);
    h.update(public);
    let d = h.finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// The ledger's signing key, named by the log's origin.
#[derive(Clone)]
pub struct Signer {
    name: String,
    key: SigningKey,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({})", self.verifier().vkey())
    }
}

impl Signer {
    pub fn new(name: &str, key: SigningKey) -> Result<Self, AuditError> {
        check_name(name)?;
        Ok(Signer {
            name: name.to_owned(),
            key,
        })
    }

    pub fn generate(name: &str) -> Result<Self, AuditError> {
        Self::new(name, SigningKey::from_bytes(&random_key()))
    }

    /// Reads a PKCS#8 PEM Ed25519 key (as `openssl genpkey -algorithm ed25519` writes), creating
    /// the file with a fresh key (mode 0600) if it does not exist and `create` is set.
    pub fn load(path: &Path, name: &str, create: bool) -> Result<Self, AuditError> {
        let key_error = |reason: String| AuditError::Key {
            path: path.display().to_string(),
            reason,
        };
        match std::fs::read_to_string(path) {
            Ok(pem) => {
                let key = SigningKey::from_pkcs8_pem(&pem)
                    .map_err(|e| key_error(format!("not an Ed25519 PKCS#8 PEM key: {e}")))?;
                Self::new(name, key)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
                let signer = Self::generate(name)?;
                match signer.save(path) {
                    Ok(()) => Ok(signer),
                    // Another process starting on the same fresh directory made it first.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Self::load(path, name, false),
                    Err(e) => Err(key_error(e.to_string())),
                }
            }
            Err(e) => Err(key_error(e.to_string())),
        }
    }

    /// Writes the key as PKCS#8 PEM to a new file (mode 0600).
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let pem = self
            .key
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        write_secret_file(path, pem.as_bytes())
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn verifier(&self) -> NoteVerifier {
        let public = self.key.verifying_key();
        NoteVerifier {
            name: self.name.clone(),
            hash: key_hash(&self.name, public.as_bytes()),
            key: public,
        }
    }

    fn signature_line(&self, text: &str) -> String {
        let sig = self.key.sign(text.as_bytes());
        let mut blob = self.verifier().hash.to_be_bytes().to_vec();
        blob.extend_from_slice(&sig.to_bytes());
        format!("{SIG_PREFIX}{} {}\n", self.name, B64.encode(blob))
    }
}

fn check_name(name: &str) -> Result<(), AuditError> {
    if name.is_empty() || name.contains(['+', '\n']) || name.chars().any(char::is_whitespace) {
        return Err(AuditError::Config(format!(
            "`{name}` is not a usable log name (non-empty, no spaces, no `+`)"
        )));
    }
    Ok(())
}

/// A public key that checks note signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteVerifier {
    pub name: String,
    pub hash: u32,
    pub key: VerifyingKey,
}

impl NoteVerifier {
    /// `name+hash+base64(0x01 || public key)`.
    pub fn vkey(&self) -> String {
        let mut blob = vec![ED25519];
        blob.extend_from_slice(self.key.as_bytes());
        format!("{}+{:08x}+{}", self.name, self.hash, B64.encode(blob))
    }

    pub fn parse(vkey: &str) -> Result<Self, AuditError> {
        let bad = |why: &str| AuditError::Config(format!("verifier key `{vkey}`: {why}"));
        let mut parts = vkey.trim().splitn(3, '+');
        let (Some(name), Some(hash), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("expected name+hash+key"));
        };
        let blob = B64.decode(key).map_err(|_| bad("key is not base64"))?;
        let (Some(&ED25519), Ok(public)) = (blob.first(), <[u8; 32]>::try_from(blob.get(1..).unwrap_or_default()))
        else {
            return Err(bad("not an Ed25519 key"));
        };
        let key = VerifyingKey::from_bytes(&public).map_err(|_| bad("not a valid Ed25519 point"))?;
        let expected = key_hash(name, &public);
        if u32::from_str_radix(hash, 16).ok() != Some(expected) {
            return Err(bad("key hash does not match the name and key"));
        }
        Ok(NoteVerifier {
            name: name.to_owned(),
            hash: expected,
            key,
        })
    }
}

/// What a checkpoint states.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
    pub time: Timestamp,
}

impl Checkpoint {
    /// The signed text.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\ntime {}\n",
            self.origin,
            self.size,
            B64.encode(self.root),
            self.time
        )
    }

    /// The signed note, signed by every signer (a key rotation signs with the old and the new).
    pub fn sign(&self, signers: &[&Signer]) -> String {
        let body = self.body();
        let mut note = body.clone();
        note.push('\n');
        for s in signers {
            note.push_str(&s.signature_line(&body));
        }
        note
    }

    /// Parses a note and checks its signatures: it must carry a valid signature by at least
    /// one of `trusted`, and no signature by a trusted key's hash that fails. Returns the
    /// checkpoint and the keys that signed it.
    pub fn open(note: &str, trusted: &[NoteVerifier]) -> Result<(Checkpoint, Vec<NoteVerifier>), AuditError> {
        let bad = |why: String| AuditError::Checkpoint(why);
        let Some((body, sigs)) = note.split_once("\n\n") else {
            return Err(bad("not a signed note (no blank line before the signatures)".to_owned()));
        };
        let text = format!("{body}\n");
        let checkpoint = Self::parse_body(&text)?;
        let mut signed_by = Vec::new();
        for line in sigs.lines().filter(|l| !l.is_empty()) {
            let Some(rest) = line.strip_prefix(SIG_PREFIX) else {
                return Err(bad(format!("malformed signature line `{line}`")));
            };
            let Some((name, blob)) = rest.split_once(' ') else {
                return Err(bad(format!("malformed signature line `{line}`")));
            };
            let blob = B64
                .decode(blob)
                .map_err(|_| bad(format!("signature of `{name}` is not base64")))?;
            if blob.len() != 4 + 64 {
                return Err(bad(format!("signature of `{name}` has {} bytes, not 68", blob.len())));
            }
            let hash = u32::from_be_bytes([blob[0], blob[1], blob[2], blob[3]]);
            let Some(key) = trusted.iter().find(|k| k.name == name && k.hash == hash) else {
                // Signatures by keys the reader does not know are ignored, as the note format says.
                continue;
            };
            let sig = Signature::from_slice(&blob[4..]).map_err(|e| bad(e.to_string()))?;
            if key.key.verify(text.as_bytes(), &sig).is_err() {
                return Err(bad(format!(
                    "the signature by {name}+{hash:08x} does not verify: the checkpoint was altered or forged"
                )));
            }
            signed_by.push(key.clone());
        }
        if signed_by.is_empty() {
            return Err(bad(format!(
                "checkpoint of size {} carries no signature by a trusted key",
                checkpoint.size
            )));
        }
        Ok((checkpoint, signed_by))
    }

    fn parse_body(text: &str) -> Result<Checkpoint, AuditError> {
        let bad = |why: &str| AuditError::Checkpoint(format!("checkpoint body: {why}"));
        let mut lines = text.lines();
        let origin = lines
            .next()
            .filter(|l| !l.is_empty())
            .ok_or_else(|| bad("no origin line"))?;
        let size = lines
            .next()
            .and_then(|l| l.parse::<u64>().ok())
            .ok_or_else(|| bad("second line is not a tree size"))?;
        let root = lines
            .next()
            .and_then(|l| B64.decode(l).ok())
            .and_then(|b| Hash::try_from(b.as_slice()).ok())
            .ok_or_else(|| bad("third line is not a base64 SHA-256 root"))?;
        let time = lines
            .find_map(|l| l.strip_prefix("time "))
            .and_then(|t| t.parse::<Timestamp>().ok())
            .ok_or_else(|| bad("no `time` line"))?;
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
            time,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkpoint() -> Checkpoint {
        Checkpoint {
            origin: "rempart/test".to_owned(),
            size: 42,
            root: [7; 32],
            time: Timestamp::from_second(1_800_000_000).unwrap_or(Timestamp::UNIX_EPOCH),
        }
    }

    #[test]
    fn a_signed_checkpoint_opens_under_its_key_and_not_another() {
        let a = Signer::generate("rempart/test").unwrap_or_else(|e| panic!("{e}"));
        let b = Signer::generate("rempart/test").unwrap_or_else(|e| panic!("{e}"));
        let note = checkpoint().sign(&[&a]);
        let (cp, by) = Checkpoint::open(&note, &[a.verifier()]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cp, checkpoint());
        assert_eq!(by, vec![a.verifier()]);
        assert!(Checkpoint::open(&note, &[b.verifier()]).is_err());
        let both = checkpoint().sign(&[&a, &b]);
        assert!(Checkpoint::open(&both, &[b.verifier()]).is_ok());
    }

    #[test]
    fn an_altered_checkpoint_fails_its_signature() {
        let a = Signer::generate("rempart/test").unwrap_or_else(|e| panic!("{e}"));
        let note = checkpoint().sign(&[&a]).replace("\n42\n", "\n43\n");
        let err = Checkpoint::open(&note, &[a.verifier()]).err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("does not verify")));
    }

    #[test]
    fn verifier_keys_round_trip_and_reject_a_wrong_hash() {
        let a = Signer::generate("rempart/test").unwrap_or_else(|e| panic!("{e}"));
        let vkey = a.verifier().vkey();
        assert_eq!(NoteVerifier::parse(&vkey).ok(), Some(a.verifier()));
        let wrong = vkey.replacen("rempart/test+", "rempart/other+", 1);
        assert!(NoteVerifier::parse(&wrong).is_err());
    }

    proptest::proptest! {
        /// Any checkpoint signs and opens to itself; any text fed to the parsers is refused or
        /// read, never a panic.
        #[test]
        fn signed_checkpoints_round_trip_and_garbage_is_refused(
            size in proptest::prelude::any::<u64>(),
            root in proptest::prelude::any::<[u8; 32]>(),
            secs in 0i64..4_000_000_000,
            garbage in ".{0,200}",
        ) {
            let a = Signer::generate("rempart/prop").unwrap_or_else(|e| panic!("{e}"));
            let cp = Checkpoint { origin: "rempart/prop".to_owned(), size, root, time: Timestamp::from_second(secs).unwrap_or(Timestamp::UNIX_EPOCH) };
            let note = cp.sign(&[&a]);
            let opened = Checkpoint::open(&note, &[a.verifier()]).map(|(c, _)| c).ok();
            proptest::prop_assert_eq!(opened, Some(cp));
            let _ = Checkpoint::open(&garbage, &[a.verifier()]);
            let _ = NoteVerifier::parse(&garbage);
            // Cut inside the signed (ASCII) body and append anything.
            let cut = note.find("\n\n").unwrap_or(0) / 2;
            let spliced = format!("{}{garbage}", &note[..cut]);
            proptest::prop_assert!(Checkpoint::open(&spliced, &[a.verifier()]).is_err() || spliced == note);
        }
    }
}
