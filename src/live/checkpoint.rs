//! Checkpoints: what a compaction folded into a store beyond its columns. A checkpoint names
//! the last event sequence folded in and the identity of the store it was folded into (the
//! store's header checksum, which covers every section's checksum), and carries every
//! customer's [`History`] (event counts, recent events, contacts). At start the newest
//! checkpoint whose store identity is the store's says which events the store already holds;
//! a checkpoint written for a store that a crash kept from being renamed into place matches
//! nothing and is ignored.
//!
//! File: `checkpoint-<sequence>.ckpt` = magic, body length (u64 LE), xxh3 of the body (u64
//! LE), body (bincode), written through [`crate::atomic_file`]. A body decodes only after its
//! checksum matched; `fuzz/fuzz_targets/checkpoint_body.rs` feeds the body decoder directly.

use std::io::Write;
use std::path::{Path, PathBuf};

use bincode::config::{Configuration, Fixint, LittleEndian};
use bincode::{Decode, Encode};

use super::customer::History;
use crate::atomic_file::write_atomically;
use crate::error::{Error, Result};

const MAGIC: &[u8; 8] = b"CRVCKPT1";
const PREFIX: &str = "checkpoint-";
const SUFFIX: &str = ".ckpt";

/// A checkpoint's contents.
#[derive(Debug, Clone, Default, PartialEq, Encode, Decode)]
pub struct Checkpoint {
    /// The last event sequence the store holds.
    pub last_sequence: u64,
    /// The store's identity ([`crate::Store::identity`]).
    pub store_identity: u64,
    /// Every customer with events, and their history.
    pub customers: Vec<(u64, History)>,
}

fn config() -> Configuration<LittleEndian, Fixint> {
    bincode::config::standard()
        .with_little_endian()
        .with_fixed_int_encoding()
}

/// The path of the checkpoint of `sequence` in `dir`.
pub fn path(dir: &Path, sequence: u64) -> PathBuf {
    dir.join(format!("{PREFIX}{sequence:020}{SUFFIX}"))
}

/// Bytes a checkpoint file's body may claim as it decodes (containers' lengths times their
/// items' sizes): the reader's bound on what a damaged body can make it allocate.
const MAX_BODY_CLAIM: usize = 1 << 32;

/// Writes `checkpoint` durably into `dir`; returns its path.
pub fn write(dir: &Path, checkpoint: &Checkpoint) -> Result<PathBuf> {
    let path = path(dir, checkpoint.last_sequence);
    let body = bincode::encode_to_vec(checkpoint, config())
        .map_err(|e| Error::io(&path, std::io::Error::other(e)))?;
    write_atomically(&path, |out| {
        out.write_all(&header(&body))
            .and_then(|()| out.write_all(&body))
            .map_err(|e| Error::io(&path, e))
    })?;
    Ok(path)
}

/// The bytes of a checkpoint file: header and body (for tests and fuzzing; [`write`] does not
/// copy the body).
pub fn encode(checkpoint: &Checkpoint) -> std::result::Result<Vec<u8>, String> {
    let body = bincode::encode_to_vec(checkpoint, config()).map_err(|e| e.to_string())?;
    let mut file = header(&body).to_vec();
    file.extend_from_slice(&body);
    Ok(file)
}

/// The file's first bytes for `body`: magic, body length (u64 LE), xxh3 of the body (u64 LE).
fn header(body: &[u8]) -> [u8; 24] {
    let mut header = [0; 24];
    header[..8].copy_from_slice(MAGIC);
    header[8..16].copy_from_slice(&(body.len() as u64).to_le_bytes());
    header[16..].copy_from_slice(&xxhash_rust::xxh3::xxh3_64(body).to_le_bytes());
    header
}

/// Decodes a checkpoint file's bytes; the error says what is wrong.
pub fn decode(bytes: &[u8]) -> std::result::Result<Checkpoint, String> {
    if bytes.get(..8) != Some(MAGIC) {
        return Err("not a crv checkpoint (magic)".into());
    }
    let number = |at: usize| {
        bytes
            .get(at..at + 8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
            .ok_or_else(|| "cut short".to_string())
    };
    let (len, checksum) = (number(8)?, number(16)?);
    let body = bytes.get(24..).unwrap_or_default();
    if body.len() as u64 != len {
        return Err(format!("body of {} bytes, expected {len}", body.len()));
    }
    if xxhash_rust::xxh3::xxh3_64(body) != checksum {
        return Err("checksum mismatch".into());
    }
    decode_body::<MAX_BODY_CLAIM>(body)
}

/// Decodes a checkpoint's body (the bytes after the header, whose checksum they matched),
/// claiming at most `CLAIM` bytes for its containers: all of it, or an error.
pub(super) fn decode_body<const CLAIM: usize>(
    body: &[u8],
) -> std::result::Result<Checkpoint, String> {
    let (checkpoint, used) = bincode::decode_from_slice(body, config().with_limit::<CLAIM>())
        .map_err(|e| format!("body does not decode: {e}"))?;
    if used != body.len() {
        return Err("trailing bytes after the body".into());
    }
    Ok(checkpoint)
}

/// The checkpoints in `dir` as (sequence, path), newest first.
pub fn list(dir: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let sequence = name
            .to_str()
            .and_then(|n| n.strip_prefix(PREFIX))
            .and_then(|n| n.strip_suffix(SUFFIX))
            .and_then(|digits| digits.parse::<u64>().ok());
        if let Some(sequence) = sequence {
            found.push((sequence, entry.path()));
        }
    }
    found.sort_by(|a, b| b.cmp(a));
    Ok(found)
}

/// The newest checkpoint in `dir` for the store of `identity`, `None` when none is; unreadable
/// or damaged checkpoints are reported through `warn` and skipped.
pub fn for_store(
    dir: &Path,
    identity: u64,
    warn: &mut dyn FnMut(String),
) -> Result<Option<Checkpoint>> {
    for (_, path) in list(dir).map_err(|e| Error::io(dir, e))? {
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        match decode(&bytes) {
            Ok(checkpoint) if checkpoint.store_identity == identity => return Ok(Some(checkpoint)),
            Ok(_) => {}
            Err(why) => warn(format!(
                "{}: skipped a damaged checkpoint: {why}",
                path.display()
            )),
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_round_trip_and_damage_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let mut history = History::default();
        history.record(
            3,
            &crate::live::event::Event::Purchase {
                amount: 1.0,
                time: 2,
            },
        );
        let checkpoint = Checkpoint {
            last_sequence: 3,
            store_identity: 77,
            customers: vec![(9, history)],
        };
        let path = write(dir.path(), &checkpoint).unwrap();
        let mut warnings = Vec::new();
        let found = for_store(dir.path(), 77, &mut |w| warnings.push(w)).unwrap();
        assert_eq!(found, Some(checkpoint));
        assert_eq!(for_store(dir.path(), 78, &mut |_| {}).unwrap(), None);
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert!(decode(&bytes).unwrap_err().contains("checksum"));
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(
            for_store(dir.path(), 77, &mut |w| warnings.push(w)).unwrap(),
            None
        );
        assert!(warnings[0].contains("damaged"));
    }
}
