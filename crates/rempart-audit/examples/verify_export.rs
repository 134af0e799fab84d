//! A standalone verifier for `rempart audit export` documents (format `rempart-audit-export/1`),
//! written for an auditor: it uses no Rempart code, only SHA-256, Ed25519 and
//! XChaCha20-Poly1305 from public crates, and follows the format description in
//! `crates/rempart-audit/src/export.rs`.
//!
//! ```text
//! cargo run -p rempart-audit --example verify_export -- export.json --key 'rempart+1a2b3c4d+AV…'
//! ```
//!
//! It checks that the checkpoint is signed by a key you trust, that every record hashes to its
//! leaf and chains to the record before it, that every payload is the one the record committed
//! to (decrypting sealed ones with their record keys), that every record is in the signed tree
//! (inclusion proofs), and that a checkpoint you held before is a prefix of this one
//! (consistency proof). Exit status 0 when all holds, 1 with the first failure otherwise.

#![allow(clippy::print_stdout, reason = "a command-line program")]

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use serde_json::Value;
use sha2::{Digest, Sha256};

type Hash = [u8; 32];

/// What a successful verification covered.
#[derive(Debug)]
pub struct Summary {
    pub records: usize,
    pub opened: usize,
    pub tree_size: u64,
    pub previous_size: Option<u64>,
}

fn sha256(parts: &[&[u8]]) -> Hash {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

fn node(l: &Hash, r: &Hash) -> Hash {
    sha256(&[&[1], l, r])
}

fn hash_hex(v: &Value, what: &str) -> Result<Hash, String> {
    let bytes = hex::decode(v.as_str().ok_or(format!("{what}: not a string"))?).map_err(|e| format!("{what}: {e}"))?;
    bytes.try_into().map_err(|_| format!("{what}: not 32 bytes"))
}

fn hashes(v: &Value, what: &str) -> Result<Vec<Hash>, String> {
    v.as_array()
        .ok_or(format!("{what}: not a list"))?
        .iter()
        .map(|h| hash_hex(h, what))
        .collect()
}

/// A trusted key: `name+hash+base64(0x01 || public key)`.
struct Key {
    name: String,
    hash: [u8; 4],
    key: VerifyingKey,
}

fn parse_key(vkey: &str) -> Result<Key, String> {
    let mut parts = vkey.trim().splitn(3, '+');
    let (Some(name), Some(hash), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format!("`{vkey}` is not name+hash+key"));
    };
    let blob = B64.decode(key).map_err(|e| format!("key: {e}"))?;
    if blob.len() != 33 || blob[0] != 1 {
        return Err("not an Ed25519 verifier key".into());
    }
    let public: [u8; 32] = blob[1..].try_into().map_err(|_| "bad key length")?;
    let computed = sha256(&[name.as_bytes(), b"\n", &[1], &public]);
    if hex::encode(&computed[..4]) != hash {
        return Err("the key hash does not match the name and key".into());
    }
    Ok(Key {
        name: name.to_owned(),
        hash: [computed[0], computed[1], computed[2], computed[3]],
        key: VerifyingKey::from_bytes(&public).map_err(|e| e.to_string())?,
    })
}

/// Checks a signed checkpoint note; returns (size, root).
fn open_checkpoint(note: &str, keys: &[Key]) -> Result<(u64, Hash), String> {
    let (body, sigs) = note.split_once("\n\n").ok_or("checkpoint: no signature block")?;
    let text = format!("{body}\n");
    let mut lines = body.lines();
    let _origin = lines.next().ok_or("checkpoint: no origin")?;
    let size: u64 = lines
        .next()
        .and_then(|l| l.parse().ok())
        .ok_or("checkpoint: bad size line")?;
    let root: Hash = lines
        .next()
        .and_then(|l| B64.decode(l).ok())
        .and_then(|b| b.try_into().ok())
        .ok_or("checkpoint: bad root line")?;
    let mut trusted = false;
    for line in sigs.lines().filter(|l| !l.is_empty()) {
        let rest = line.strip_prefix("\u{2014} ").ok_or("checkpoint: bad signature line")?;
        let (name, blob) = rest.split_once(' ').ok_or("checkpoint: bad signature line")?;
        let blob = B64.decode(blob).map_err(|e| e.to_string())?;
        let Some(key) = keys
            .iter()
            .find(|k| k.name == name && blob.len() == 68 && blob[..4] == k.hash)
        else {
            continue;
        };
        let sig = Signature::from_slice(&blob[4..]).map_err(|e| e.to_string())?;
        key.key
            .verify(text.as_bytes(), &sig)
            .map_err(|_| format!("checkpoint of size {size}: signature by {name} does not verify"))?;
        trusted = true;
    }
    if !trusted {
        return Err(format!("checkpoint of size {size}: no signature by a trusted key"));
    }
    Ok((size, root))
}

/// RFC 9162 §2.1.3.2.
fn verify_inclusion(leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut f, mut s, mut r) = (index, size - 1, *leaf);
    for p in proof {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            r = node(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    s == 0 && r == *root
}

/// RFC 9162 §2.1.4.2.
fn verify_consistency(m: u64, n: u64, old: &Hash, new: &Hash, proof: &[Hash]) -> bool {
    if m == 0 || m > n {
        return false;
    }
    if m == n {
        return proof.is_empty() && old == new;
    }
    let mut path = Vec::new();
    if m.is_power_of_two() {
        path.push(*old);
    }
    path.extend_from_slice(proof);
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    let (mut f, mut s) = (m - 1, n - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            fr = node(c, &fr);
            sr = node(c, &sr);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            sr = node(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    fr == *old && sr == *new && s == 0
}

fn push_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Verifies an export document against the trusted verifier keys.
pub fn verify(doc: &Value, trusted: &[String]) -> Result<Summary, String> {
    if doc["format"] != "rempart-audit-export/1" {
        return Err(format!("unknown format {}", doc["format"]));
    }
    let keys = trusted.iter().map(|k| parse_key(k)).collect::<Result<Vec<_>, _>>()?;
    let (size, root) = open_checkpoint(doc["checkpoint"].as_str().ok_or("no checkpoint")?, &keys)?;
    let records = doc["records"].as_array().ok_or("no records")?;
    let mut previous: Option<(u64, Hash)> = None;
    let mut opened = 0;
    for r in records {
        let seq = r["seq"].as_u64().ok_or("record without seq")?;
        let at = |what: &str| format!("record {seq}: {what}");
        let str_of = |k: &str| r[k].as_str().unwrap_or("");
        let payload_hash = hash_hex(&r["payload_hash"], &at("payload_hash"))?;
        let prev_hash = hash_hex(&r["prev_hash"], &at("prev_hash"))?;
        let leaf_hash = hash_hex(&r["leaf_hash"], &at("leaf_hash"))?;
        let mut data = b"rempart-ledger/1".to_vec();
        data.extend_from_slice(&seq.to_be_bytes());
        data.extend_from_slice(&r["time_ns"].as_i64().ok_or(at("time_ns"))?.to_be_bytes());
        push_str(&mut data, str_of("actor"));
        push_str(&mut data, str_of("kind"));
        push_str(&mut data, str_of("key_id"));
        data.extend_from_slice(&payload_hash);
        data.extend_from_slice(&prev_hash);
        if sha256(&[&[0], &data]) != leaf_hash {
            return Err(at("its fields do not hash to its leaf hash (altered)"));
        }
        // An export is a contiguous run of records: a gap is an omission.
        if let Some((p, h)) = previous {
            if p + 1 != seq {
                return Err(format!("record {} is missing from the export", p + 1));
            }
            if h != prev_hash {
                return Err(at("does not chain to the record before it"));
            }
        }
        previous = Some((seq, leaf_hash));
        let mut checked = false;
        if let Some(body) = r["body"].as_str() {
            let body = B64.decode(body).map_err(|e| at(&e.to_string()))?;
            if sha256(&[&body]) != payload_hash {
                return Err(at("its payload is not the one it committed to"));
            }
            let clear = match (str_of("status"), r["record_key"].as_str()) {
                ("public", _) => Some(body),
                ("sealed", Some(key)) if body.len() >= 24 => {
                    let key = B64.decode(key).map_err(|e| at(&e.to_string()))?;
                    let cipher = XChaCha20Poly1305::new_from_slice(&key).map_err(|e| at(&e.to_string()))?;
                    let mut aad = b"rempart-ledger/1".to_vec();
                    aad.extend_from_slice(&seq.to_be_bytes());
                    aad.extend_from_slice(str_of("kind").as_bytes());
                    let clear = cipher
                        .decrypt(
                            XNonce::from_slice(&body[..24]),
                            Payload {
                                msg: &body[24..],
                                aad: &aad,
                            },
                        )
                        .map_err(|_| at("its sealed payload does not open under its record key"))?;
                    Some(clear)
                }
                _ => None,
            };
            if let Some(clear) = clear {
                let parsed: Value = serde_json::from_slice(&clear).map_err(|e| at(&e.to_string()))?;
                if parsed != r["payload"] {
                    return Err(at("the payload shown is not the payload committed to"));
                }
                opened += 1;
                checked = true;
            }
        }
        if !checked && !r["payload"].is_null() {
            return Err(at("shows a payload that cannot be checked against the record"));
        }
        let proof = hashes(&r["inclusion_proof"], &at("inclusion_proof"))?;
        if !verify_inclusion(&leaf_hash, seq, size, &proof, &root) {
            return Err(at("not in the signed tree (inclusion proof fails)"));
        }
    }
    let mut previous_size = None;
    if let Some(p) = doc.get("previous").filter(|p| !p.is_null()) {
        let (old_size, old_root) = open_checkpoint(p["checkpoint"].as_str().ok_or("previous: no checkpoint")?, &keys)?;
        let proof = hashes(&p["consistency_proof"], "consistency_proof")?;
        if !verify_consistency(old_size, size, &old_root, &root, &proof) {
            return Err(format!(
                "the checkpoint of size {old_size} you held is not a prefix of this one: history was rewritten"
            ));
        }
        previous_size = Some(old_size);
    }
    Ok(Summary {
        records: records.len(),
        opened,
        tree_size: size,
        previous_size,
    })
}

#[allow(dead_code, reason = "tests include this file for `verify` alone")]
fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mut file, mut keys) = (None, Vec::new());
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--key" => keys.extend(it.next().cloned()),
            other => file = Some(other.to_owned()),
        }
    }
    let Some(file) = file.filter(|_| !keys.is_empty()) else {
        println!("usage: verify_export EXPORT.json --key VKEY [--key VKEY…]");
        return std::process::ExitCode::from(2);
    };
    let result = std::fs::read_to_string(&file)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str::<Value>(&t).map_err(|e| e.to_string()))
        .and_then(|doc| verify(&doc, &keys));
    match result {
        Ok(s) => {
            println!(
                "verified: {} records ({} payloads opened) in a signed tree of {}{}",
                s.records,
                s.opened,
                s.tree_size,
                s.previous_size
                    .map(|p| format!("; your checkpoint of {p} is a prefix of it"))
                    .unwrap_or_default()
            );
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            println!("FAILED: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
