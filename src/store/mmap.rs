//! The one place crv memory-maps a file: a store, and the event log's segments while a
//! server replays them at start. Everything else sees the mapping as `&[u8]`.
#![allow(unsafe_code)]

use std::fs::File;
use std::io;

use memmap2::Mmap;

/// Maps `file` read-only.
///
/// The contract that makes this sound: a published store file is never written again. What
/// crv guarantees: it writes every store to a temporary file, fsyncs it and renames it into
/// place, so a replacement is a new inode and this mapping keeps the old bytes; it never
/// opens a published store for writing. What crv cannot guarantee: that no other process
/// truncates the file or writes into it in place while it is mapped. Then reads fault with
/// SIGBUS (truncation) or see bytes change after open validated them, under `&[u8]` borrows
/// that Rust assumes immutable: undefined behaviour that no check inside crv can prevent.
/// docs/format.md states the same contract for users.
///
/// The event log's segments are mapped only while a replay reads them once at start, with
/// the log directory's lock held: no crv process appends to, truncates or compacts a segment
/// then (the lock keeps out every other server and `crv compact`), and the mapping is dropped
/// before this process appends to it. The same holds for other processes as for a store.
pub fn map(file: &File) -> io::Result<Mmap> {
    // SAFETY: the mapping is read-only and only ever read through `&[u8]`. It stays sound
    // only while nothing modifies the file: crv itself never writes a published store (see
    // the contract above); another process writing or truncating it in place breaks that
    // assumption, and crv cannot detect or prevent it.
    unsafe { Mmap::map(file) }
}
