//! The one place crv memory-maps a file. Everything else sees the mapping as `&[u8]`.
#![allow(unsafe_code)]

use std::fs::File;
use std::io;

use memmap2::Mmap;

/// Maps `file` read-only.
///
/// The contract that makes this sound: a published store file is never written again. The
/// writer creates a temporary file, fsyncs it and renames it into place, so a replacement
/// is a new inode and this mapping keeps the old bytes. The risk that remains is another
/// process truncating or writing the file in place against that contract: reads would then
/// see changed bytes or fault with SIGBUS. Every byte is validated before it is trusted, so
/// changed bytes yield errors, not undefined behaviour of crv's own code.
pub fn map(file: &File) -> io::Result<Mmap> {
    // SAFETY: crv never mutates a published store file (see the contract above), and the
    // mapping is only ever read through `&[u8]`, never written.
    unsafe { Mmap::map(file) }
}
