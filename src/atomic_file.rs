//! Every file crv writes (stores, scores, targets, generated CSV) appears whole or not at all:
//! it is written to a temporary file in the target's directory, fsynced, then renamed over
//! the target. On error the temporary file is removed and an existing target is untouched.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use crate::error::{Error, Result};

/// Writes `path` atomically with `write`, which gets a buffered writer. Returns what `write`
/// returned once the file is durable under its name.
pub fn write_atomically<T>(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<&File>) -> Result<T>,
) -> Result<T> {
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let temp = tempfile::Builder::new()
        .prefix(".crv-")
        .suffix(".tmp")
        .tempfile_in(directory)
        .map_err(|e| Error::io(directory, e))?;
    let value = {
        let mut out = BufWriter::with_capacity(1 << 20, temp.as_file());
        let value = write(&mut out)?;
        out.flush().map_err(|e| Error::io(path, e))?;
        value
    };
    temp.as_file().sync_all().map_err(|e| Error::io(path, e))?;
    temp.persist(path).map_err(|e| Error::io(path, e.error))?;
    // The rename is durable only once the directory entry is on disk.
    File::open(directory)
        .and_then(|dir| dir.sync_all())
        .map_err(|e| Error::io(directory, e))?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_write_leaves_the_old_file_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        std::fs::write(&path, "old").unwrap();
        let result: Result<()> = write_atomically(&path, |out| {
            out.write_all(b"half of the new").unwrap();
            Err(Error::invalid("test", "fails halfway"))
        });
        assert!(result.is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn successful_write_replaces_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        std::fs::write(&path, "old").unwrap();
        write_atomically(&path, |out| {
            out.write_all(b"new").map_err(|e| Error::io("x", e))
        })
        .unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
    }
}
