//! Every file crv writes (stores, scores, targets, generated CSV) appears whole or not at all:
//! it is written to a temporary file in the target's directory, fsynced, then renamed over
//! the target. On error the temporary file is removed and an existing target is untouched.
//!
//! What the name points at is respected:
//! - `-` is standard output, written directly;
//! - a symbolic link is followed to its final target, which is replaced atomically (the link
//!   stays a link, even a dangling one: its target is created);
//! - a device or a named pipe (`/dev/null`, `/dev/stdout`, a FIFO) is opened and written
//!   directly, never replaced by a regular file;
//! - a new file gets the permissions `0666` less the process's umask, like any tool's output;
//!   a replaced file keeps its mode.

use std::fs::{File, Permissions};
use std::io::{BufWriter, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::store::format::MAGIC;

/// The output name that means standard output.
pub const STDOUT: &str = "-";

/// Symbolic links followed before giving up, as the kernel's own limit (`ELOOP`).
const MAX_LINKS: usize = 40;

/// Where the bytes for an output name go.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Destination {
    /// Standard output (`-`).
    Stdout,
    /// A device, a named pipe or a socket: opened and written in place.
    Direct(PathBuf),
    /// A regular file (existing or not), after following every link: replaced atomically.
    Regular(PathBuf),
}

/// Whether `path` is `-`, standard output.
pub fn is_stdout(path: &Path) -> bool {
    path.as_os_str() == STDOUT
}

/// Follows `path`'s symbolic links to the name that is finally written: the path itself when
/// it is not a link, the (possibly missing) target of the last link otherwise.
fn resolve_links(path: &Path) -> Result<PathBuf> {
    let mut current = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        match std::fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let target = std::fs::read_link(&current).map_err(|e| Error::io(&current, e))?;
                current = match current.parent() {
                    Some(parent) if target.is_relative() => parent.join(target),
                    _ => target,
                };
            }
            _ => return Ok(current),
        }
    }
    Err(Error::io(
        path,
        std::io::Error::other(format!("more than {MAX_LINKS} symbolic links")),
    ))
}

fn destination(path: &Path) -> Result<Destination> {
    if is_stdout(path) {
        return Ok(Destination::Stdout);
    }
    let target = resolve_links(path)?;
    match std::fs::metadata(&target) {
        Ok(meta) if meta.is_dir() => Err(Error::io(
            path,
            std::io::Error::other("is a directory, not a file to write"),
        )),
        Ok(meta) if !meta.is_file() => Ok(Destination::Direct(target)),
        _ => Ok(Destination::Regular(target)),
    }
}

/// Writes `path` atomically with `write`, which gets a buffered writer. Returns what `write`
/// returned once the file is durable under its name. `-`, devices and named pipes are written
/// directly (see the module's documentation).
pub fn write_atomically<T>(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<&File>) -> Result<T>,
) -> Result<T> {
    match destination(path)? {
        Destination::Stdout => {
            // Lines already printed go first; then the bytes go straight to descriptor 1.
            let mut stdout = std::io::stdout();
            stdout.flush().map_err(|e| Error::io("<stdout>", e))?;
            let file = stdout
                .as_fd()
                .try_clone_to_owned()
                .map(File::from)
                .map_err(|e| Error::io("<stdout>", e))?;
            write_directly(&file, Path::new("<stdout>"), write)
        }
        Destination::Direct(target) => {
            let file = File::options()
                .write(true)
                .open(&target)
                .map_err(|e| Error::io(path, e))?;
            write_directly(&file, path, write)
        }
        Destination::Regular(target) => replace_regular(&target, path, write),
    }
}

/// Writes an open stream (standard output, a device, a pipe): no temporary file, no rename and
/// no fsync (they mean nothing there).
fn write_directly<T>(
    file: &File,
    name: &Path,
    write: impl FnOnce(&mut BufWriter<&File>) -> Result<T>,
) -> Result<T> {
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let value = write(&mut out)?;
    out.flush().map_err(|e| Error::io(name, e))?;
    Ok(value)
}

/// The temporary file beside `target`, fsynced and renamed over it. `name` is what the user
/// wrote, for messages.
fn replace_regular<T>(
    target: &Path,
    name: &Path,
    write: impl FnOnce(&mut BufWriter<&File>) -> Result<T>,
) -> Result<T> {
    let directory = match target.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    // open(2) applies the umask to 0666, as for any new file; a replaced file keeps its mode.
    let existing_mode = std::fs::metadata(target)
        .ok()
        .map(|meta| meta.mode() & 0o7777);
    let temp = tempfile::Builder::new()
        .prefix(".crv-")
        .suffix(".tmp")
        .permissions(Permissions::from_mode(0o666))
        .tempfile_in(directory)
        .map_err(|e| Error::io(directory, e))?;
    if let Some(mode) = existing_mode {
        temp.as_file()
            .set_permissions(Permissions::from_mode(mode))
            .map_err(|e| Error::io(name, e))?;
    }
    let value = {
        let mut out = BufWriter::with_capacity(1 << 20, temp.as_file());
        let value = write(&mut out)?;
        out.flush().map_err(|e| Error::io(name, e))?;
        value
    };
    temp.as_file().sync_all().map_err(|e| Error::io(name, e))?;
    temp.persist(target).map_err(|e| Error::io(name, e.error))?;
    // The rename is durable only once the directory entry is on disk.
    File::open(directory)
        .and_then(|dir| dir.sync_all())
        .map_err(|e| Error::io(directory, e))?;
    Ok(value)
}

/// Refuses, unless `force`, an output of a command that does not write stores when it would
/// replace one of the command's `inputs` (the same file, however it is named) or an existing
/// store file. Standard output, devices and named pipes are never refused.
pub fn check_output(path: &Path, inputs: &[&Path], force: bool) -> Result<()> {
    if force {
        return Ok(());
    }
    let Destination::Regular(target) = destination(path)? else {
        return Ok(());
    };
    let Ok(meta) = std::fs::metadata(&target) else {
        return Ok(());
    };
    let refuse = |what: String| {
        Err(Error::invalid(
            "output",
            format!(
                "{} {what}; choose another name, or pass --force to replace it",
                path.display()
            ),
        ))
    };
    for input in inputs {
        if let Ok(input_meta) = std::fs::metadata(input)
            && (input_meta.dev(), input_meta.ino()) == (meta.dev(), meta.ino())
        {
            return refuse(format!("is this command's input {}", input.display()));
        }
    }
    if is_store_file(&target) {
        return refuse("is a crv store file".to_string());
    }
    Ok(())
}

/// Whether the file at `path` starts with the store's magic bytes.
pub fn is_store_file(path: &Path) -> bool {
    let mut magic = [0u8; MAGIC.len()];
    File::open(path)
        .and_then(|mut file| std::io::Read::read_exact(&mut file, &mut magic))
        .is_ok_and(|()| magic == MAGIC)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::FileTypeExt;

    use super::*;

    fn write_text(path: &Path, text: &str) -> Result<()> {
        write_atomically(path, |out| {
            out.write_all(text.as_bytes())
                .map_err(|e| Error::io(path, e))
        })
    }

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
        write_text(&path, "new").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
    }

    #[test]
    fn a_symlink_stays_a_link_and_its_target_gets_the_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        let link = dir.path().join("link.csv");
        // Relative to the link's directory, dangling at first: the target is created.
        std::os::unix::fs::symlink("sub/real.csv", &link).unwrap();
        write_text(&link, "first").unwrap();
        write_text(&link, "second").unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(
            std::fs::read_to_string(sub.join("real.csv")).unwrap(),
            "second"
        );
        // The temporary file lived beside the target, and is gone.
        assert_eq!(std::fs::read_dir(&sub).unwrap().count(), 1);
    }

    #[test]
    fn a_named_pipe_is_written_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let pipe = dir.path().join("pipe.csv");
        let status = std::process::Command::new("mkfifo")
            .arg(&pipe)
            .status()
            .unwrap();
        assert!(status.success());
        let reader = {
            let pipe = pipe.clone();
            std::thread::spawn(move || std::fs::read_to_string(pipe).unwrap())
        };
        write_text(&pipe, "through the pipe").unwrap();
        assert_eq!(reader.join().unwrap(), "through the pipe");
        assert!(std::fs::metadata(&pipe).unwrap().file_type().is_fifo());
    }

    #[test]
    fn dev_null_is_written_and_stays_a_device() {
        let null = Path::new("/dev/null");
        write_text(null, "discarded").unwrap();
        assert!(
            std::fs::metadata(null)
                .unwrap()
                .file_type()
                .is_char_device()
        );
    }

    #[test]
    fn a_new_file_follows_the_umask_and_a_replaced_one_keeps_its_mode() {
        let dir = tempfile::tempdir().unwrap();
        let fresh = dir.path().join("fresh.csv");
        write_text(&fresh, "x").unwrap();
        // The umask of the test process is unknown: compare with a file created plainly.
        let plain = dir.path().join("plain.csv");
        std::fs::write(&plain, "x").unwrap();
        let mode = |path: &Path| std::fs::metadata(path).unwrap().mode() & 0o777;
        assert_eq!(mode(&fresh), mode(&plain));
        let kept = dir.path().join("kept.csv");
        std::fs::write(&kept, "old").unwrap();
        std::fs::set_permissions(&kept, Permissions::from_mode(0o640)).unwrap();
        write_text(&kept, "new").unwrap();
        assert_eq!(mode(&kept), 0o640);
    }

    #[test]
    fn a_directory_is_refused_with_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let message = write_text(dir.path(), "x").unwrap_err().to_string();
        assert!(message.contains("is a directory"), "{message}");
    }

    #[test]
    fn check_output_refuses_an_input_or_a_store_unless_forced() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.csv");
        std::fs::write(&input, "customer_id\n1\n").unwrap();
        let store = dir.path().join("s.crv");
        std::fs::write(&store, [&MAGIC[..], b"rest"].concat()).unwrap();
        let link = dir.path().join("alias.csv");
        std::os::unix::fs::symlink(&input, &link).unwrap();
        for path in [&input, &link, &store] {
            let message = check_output(path, &[&input], false)
                .unwrap_err()
                .to_string();
            assert!(message.contains("--force"), "{message}");
            check_output(path, &[&input], true).unwrap();
        }
        check_output(&dir.path().join("new.csv"), &[&input], false).unwrap();
        check_output(Path::new("-"), &[&input], false).unwrap();
        check_output(Path::new("/dev/null"), &[&input], false).unwrap();
    }
}
