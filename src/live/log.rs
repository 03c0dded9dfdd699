//! The write-ahead log of events: a directory of segments `log-<first sequence>.wal`, each a
//! run of records
//!
//! ```text
//! [payload length: u32 LE][checksum: u64 LE][sequence: u64 LE][payload: bincode CustomerEvent]
//! ```
//!
//! the checksum being xxh3 of the sequence and payload bytes. Sequences start at 1 and grow by
//! one per event across segments. The segment being written ends with zeros written ahead of
//! its records ([`ROOM_BYTES`]), cut at a clean close; zeros after the last record are the
//! segment's end. Reading ([`read_segment`]) stops at the first record that is incomplete,
//! fails its checksum or holds an event no request could have given
//! ([`super::event::Event::outside_limits`]): when nothing valid follows it, it is a torn or
//! corrupt *tail* (a write cut by a crash), dropped and reported; when a valid record follows,
//! the log is corrupt in the *middle*, which only `--salvage` may cut. Cost: one pass over the
//! bytes.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::event::CustomerEvent;

/// Bytes before a record's payload.
pub const RECORD_HEADER_BYTES: usize = 20;
/// Largest payload a record may declare; a longer one is corrupt.
pub const MAX_PAYLOAD_BYTES: usize = 64 << 10;

const SEGMENT_PREFIX: &str = "log-";
const SEGMENT_SUFFIX: &str = ".wal";

fn bincode_config() -> impl bincode::config::Config {
    bincode::config::standard()
        .with_little_endian()
        .with_fixed_int_encoding()
        .with_limit::<MAX_PAYLOAD_BYTES>()
}

/// Appends the record of `event` with `sequence` to `out`.
pub fn encode_record(sequence: u64, event: &CustomerEvent, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; RECORD_HEADER_BYTES]);
    out[start + 12..start + 20].copy_from_slice(&sequence.to_le_bytes());
    bincode::encode_into_std_write(event, out, bincode_config())
        .expect("an event of capped texts fits the payload limit");
    let payload = out.len() - start - RECORD_HEADER_BYTES;
    let checksum = xxhash_rust::xxh3::xxh3_64(&out[start + 12..]);
    out[start..start + 4].copy_from_slice(&(payload as u32).to_le_bytes());
    out[start + 4..start + 12].copy_from_slice(&checksum.to_le_bytes());
}

/// One decoded record.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Its sequence number.
    pub sequence: u64,
    /// The event.
    pub event: CustomerEvent,
}

/// Why the bytes at some offset are not a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bad {
    /// Fewer bytes than the record needs: a write cut short.
    Incomplete,
    /// The length, checksum or payload is wrong; the record would end at `end`.
    Corrupt {
        /// Where the record claimed to end.
        end: usize,
        /// What is wrong.
        why: String,
    },
}

/// The record at the start of `bytes` and its length in bytes.
pub fn decode_record(bytes: &[u8]) -> Result<(Record, usize), Bad> {
    let header = bytes.get(..RECORD_HEADER_BYTES).ok_or(Bad::Incomplete)?;
    let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
    if len > MAX_PAYLOAD_BYTES {
        return Err(Bad::Corrupt {
            end: bytes.len(),
            why: format!("declares {len} payload bytes, more than {MAX_PAYLOAD_BYTES}"),
        });
    }
    let end = RECORD_HEADER_BYTES + len;
    let record = bytes.get(..end).ok_or(Bad::Incomplete)?;
    let checksum = u64::from_le_bytes(header[4..12].try_into().expect("8 bytes"));
    let found = xxhash_rust::xxh3::xxh3_64(&record[12..]);
    if found != checksum {
        return Err(Bad::Corrupt {
            end,
            why: format!("checksum {found:016x} differs from the recorded {checksum:016x}"),
        });
    }
    let sequence = u64::from_le_bytes(header[12..20].try_into().expect("8 bytes"));
    let (event, used) =
        bincode::decode_from_slice(&record[RECORD_HEADER_BYTES..], bincode_config()).map_err(
            |e| Bad::Corrupt {
                end,
                why: format!("payload does not decode: {e}"),
            },
        )?;
    if used != len {
        return Err(Bad::Corrupt {
            end,
            why: format!("payload of {len} bytes holds {used} bytes of event"),
        });
    }
    let event: CustomerEvent = event;
    if let Some(why) = event.event.outside_limits() {
        return Err(Bad::Corrupt {
            end,
            why: format!("holds {why}, which no accepted event has"),
        });
    }
    Ok((Record { sequence, event }, end))
}

/// What reading one segment found.
#[derive(Debug, Default)]
pub struct SegmentRead {
    /// The valid records, in order.
    pub records: Vec<Record>,
    /// Bytes of valid records from the start of the segment.
    pub valid_bytes: u64,
    /// The problem after the valid records, if any.
    pub damage: Option<Damage>,
}

/// A segment's bytes after its valid prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// Where they start.
    pub offset: u64,
    /// Bytes after the valid prefix.
    pub bytes: u64,
    /// Whether a valid record follows the bad one (the log is corrupt in the middle) rather
    /// than nothing valid (a torn or corrupt tail).
    pub in_middle: bool,
    /// What is wrong.
    pub why: String,
}

/// Reads every record of `bytes` (one segment) up to the first bad one, and says what follows.
/// Sequences must grow by one from record to record; a record that breaks the run is corrupt.
pub fn read_segment(bytes: &[u8]) -> SegmentRead {
    let mut records = Vec::new();
    let Ok(mut read) = read_segment_in_windows(bytes, WINDOW_RECORDS, |window| {
        records.append(window);
        Ok::<(), std::convert::Infallible>(())
    });
    read.records = records;
    read
}

/// Records decoded together by [`read_segment_in_windows`]'s callers at start: enough to keep
/// every core busy and to make the replay's per-window joins rare (2^18 against 2^16: the
/// 10^7-event replay's median 4.19 vs 4.29 s, loadtest/README.md), few enough to bound the
/// memory of a long log (a window of decoded records is about 27 MB).
pub const WINDOW_RECORDS: usize = 1 << 18;

/// [`read_segment`] for long logs: hands `each` the valid records in order, at most `window` at
/// a time, each window's checksums and payloads checked and decoded in parallel (records are
/// framed first, one pass over the headers, which also checks that their sequences grow by
/// one), and the previous window's records dropped in parallel: a window is decoded in place,
/// nothing of it copied or freed on one thread while the others wait. `each` may take the
/// records out of the vector it is lent; the vector is reused from window to window, so a long
/// log costs no fresh memory per window (a window is megabytes, which the allocator would
/// otherwise hand back to the system and fault in, zeroed, again). The answer's `records` is
/// empty; an error of `each` stops the reading.
pub fn read_segment_in_windows<E>(
    bytes: &[u8],
    window: usize,
    mut each: impl FnMut(&mut Vec<Record>) -> Result<(), E>,
) -> Result<SegmentRead, E> {
    use rayon::prelude::*;
    let mut offset = 0usize;
    let mut last: Option<u64> = None;
    let capacity = window.min(bytes.len() / RECORD_HEADER_BYTES + 1);
    let mut spans = Vec::with_capacity(capacity);
    let mut records = Vec::with_capacity(capacity);
    loop {
        spans.clear();
        let mut at = offset;
        let mut previous = last;
        while spans.len() < window {
            let Some(header) = bytes.get(at..at + RECORD_HEADER_BYTES) else {
                break;
            };
            let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
            let end = at + RECORD_HEADER_BYTES + len;
            // No event encodes to nothing: a zero length is the room after the last record
            // (or damage, which `damage_at` tells apart).
            if len == 0 || len > MAX_PAYLOAD_BYTES || end > bytes.len() {
                break;
            }
            // Sequences grow by one from the last valid record (a segment's first may be
            // any). The checksum, checked as the record decodes, covers the sequence.
            let sequence = u64::from_le_bytes(header[12..20].try_into().expect("8 bytes"));
            if previous.is_some_and(|previous| previous.checked_add(1) != Some(sequence)) {
                break;
            }
            previous = Some(sequence);
            spans.push(at..end);
            at = end;
        }
        records.par_drain(..).for_each(drop);
        // The first record that does not decode ends the window's valid run.
        let unreadable = std::sync::atomic::AtomicUsize::new(spans.len());
        spans
            .par_iter()
            .enumerate()
            .map(|(index, span)| match decode_record(&bytes[span.clone()]) {
                Ok((record, _)) => record,
                Err(_) => {
                    unreadable.fetch_min(index, std::sync::atomic::Ordering::Relaxed);
                    UNREADABLE
                }
            })
            .collect_into_vec(&mut records);
        let valid = unreadable.into_inner();
        records.truncate(valid);
        let Some(end) = valid.checked_sub(1) else {
            break;
        };
        last = Some(records[end].sequence);
        offset = spans[end].end;
        let whole = valid == window;
        each(&mut records)?;
        if !whole {
            break;
        }
    }
    Ok(SegmentRead {
        records: Vec::new(),
        valid_bytes: offset as u64,
        damage: damage_at(bytes, offset, last),
    })
}

/// What a record that does not decode stands as among a window's decoded records, until the
/// window is cut before it.
const UNREADABLE: Record = Record {
    sequence: 0,
    event: CustomerEvent {
        customer_id: 0,
        event: super::event::Event::Purchase {
            amount: 0.0,
            time: 0,
        },
    },
};

/// What is wrong with the bytes at `offset` of a segment whose valid records before it end
/// with sequence `last`; `None` at the end of the segment, or where only zeros follow (the
/// room an appender writes ahead, [`Appender`]).
fn damage_at(bytes: &[u8], offset: usize, last: Option<u64>) -> Option<Damage> {
    let rest = bytes
        .get(offset..)
        .filter(|rest| rest.iter().any(|&byte| byte != 0))?;
    let bad = match decode_record(rest) {
        Ok((record, len)) => Bad::Corrupt {
            end: len,
            why: format!(
                "sequence {} follows {}: the log skips or repeats events",
                record.sequence,
                last.unwrap_or(0)
            ),
        },
        Err(bad) => bad,
    };
    let (why, end) = match bad {
        Bad::Incomplete => (
            format!("a record cut short ({} bytes left)", rest.len()),
            rest.len(),
        ),
        Bad::Corrupt { end, why } => (why, end.min(rest.len())),
    };
    Some(Damage {
        offset: offset as u64,
        bytes: rest.len() as u64,
        in_middle: valid_record_within(&rest[end..], last.unwrap_or(0)),
        why,
    })
}

/// Whether a valid record with a sequence after `after` starts anywhere in `bytes` (a record
/// that survived after damage). Only a header whose sequence could follow `after` within these
/// bytes is checksummed, so random bytes cost one comparison each.
fn valid_record_within(bytes: &[u8], after: u64) -> bool {
    let most = after + (bytes.len() / RECORD_HEADER_BYTES) as u64 + 1;
    (0..bytes.len().saturating_sub(RECORD_HEADER_BYTES - 1)).any(|start| {
        let sequence =
            u64::from_le_bytes(bytes[start + 12..start + 20].try_into().expect("8 bytes"));
        (after + 1..=most).contains(&sequence) && decode_record(&bytes[start..]).is_ok()
    })
}

/// A segment file and the sequence of its first record.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Segment {
    /// The first sequence it holds (from its name).
    pub first: u64,
    /// Its path.
    pub path: PathBuf,
}

/// The name of the segment whose first record is `first`.
pub fn segment_path(dir: &Path, first: u64) -> PathBuf {
    dir.join(format!("{SEGMENT_PREFIX}{first:020}{SEGMENT_SUFFIX}"))
}

/// The segments in `dir`, by first sequence.
pub fn segments(dir: &Path) -> io::Result<Vec<Segment>> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let first = name
            .strip_prefix(SEGMENT_PREFIX)
            .and_then(|rest| rest.strip_suffix(SEGMENT_SUFFIX))
            .and_then(|digits| digits.parse::<u64>().ok());
        if let Some(first) = first {
            found.push(Segment {
                first,
                path: entry.path(),
            });
        }
    }
    found.sort();
    Ok(found)
}

/// Makes the directory entries of `dir` durable (after a create, rename or delete).
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Zeros the appender writes ahead of its last record at a time, once fewer than half of them
/// are left: a group of up to some 300 single events lands in blocks the file already has,
/// so that its `fdatasync` writes those blocks alone and not the inode too (a file that grows
/// changes its size with every write: on ext4 a sync took 144-160 µs into written zeros
/// against 232-250 µs at the end of the file, loadtest/README.md). Zeros are written, not
/// `fallocate`d: writing into an unwritten extent changes the extent tree, which a sync must
/// then make durable too, and whose conversion ext4 without a journal may leave unsynced.
pub const ROOM_BYTES: u64 = 64 << 10;

/// The open segment events are appended to: its records, then (but for a file system that
/// refused them) zeros written ahead ([`ROOM_BYTES`]), which a reader takes for the
/// segment's end ([`read_segment`]) and [`Appender::trim`] cuts at a clean close.
#[derive(Debug)]
pub struct Appender {
    file: Arc<File>,
    path: PathBuf,
    /// Bytes of records.
    len: u64,
    /// Bytes of the file: `len`, then zeros.
    size: u64,
    /// Whether zeros are written ahead (cleared when writing them failed: a full disk or a
    /// file system without room to spare).
    ahead: bool,
    /// Set when a failed write could not be undone: the file's tail is unknown, so nothing
    /// more is appended until a restart truncates it.
    broken: bool,
}

impl Appender {
    /// Opens `path` for appending at `len` bytes (what is valid of it), creating it if needed;
    /// anything after `len` (a torn tail, zeros written ahead) is cut first.
    pub fn open(path: &Path, len: u64) -> io::Result<Appender> {
        let created = !path.exists();
        let file = File::options()
            .create(true)
            .write(true)
            .truncate(false)
            .open(path)?;
        if file.metadata()?.len() != len {
            file.set_len(len)?;
            file.sync_all()?;
        }
        if created {
            sync_dir(path.parent().unwrap_or(Path::new(".")))?;
        }
        Ok(Appender {
            file: Arc::new(file),
            path: path.to_path_buf(),
            len,
            size: len,
            ahead: true,
            broken: false,
        })
    }

    /// Appends `bytes` (whole records) in one write, then writes [`ROOM_BYTES`] of zeros
    /// ahead when fewer than half of that are left. On an error the file is cut back to where
    /// the records end, so that a later append never follows a partial record; when even that
    /// fails the appender refuses every later append.
    pub fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.broken {
            return Err(io::Error::other(
                "an earlier failed write could not be undone; restart to recover the log",
            ));
        }
        if let Err(error) = self.file.write_all_at(bytes, self.len) {
            match self.file.set_len(self.len) {
                Ok(()) => self.size = self.len,
                Err(_) => self.broken = true,
            }
            return Err(error);
        }
        self.len += bytes.len() as u64;
        self.size = self.size.max(self.len);
        if self.ahead && self.size - self.len < ROOM_BYTES / 2 {
            self.write_room();
        }
        Ok(())
    }

    /// Writes [`ROOM_BYTES`] of zeros after the file's end; on a failure cuts them off again
    /// and writes none from then on (appends then grow the file, as without room).
    fn write_room(&mut self) {
        static ZEROS: [u8; ROOM_BYTES as usize] = [0; ROOM_BYTES as usize];
        match self.file.write_all_at(&ZEROS, self.size) {
            Ok(()) => self.size += ROOM_BYTES,
            Err(error) => {
                tracing::debug!(%error, path = %self.path.display(), "no room written ahead in the event log");
                self.ahead = false;
                // Should this fail too, some zeros stay: a reader takes them for the end.
                let _ = self.file.set_len(self.size);
            }
        }
    }

    /// Cuts the zeros written ahead and makes that durable (a clean close leaves the records
    /// alone in the file).
    pub fn trim(&mut self) -> io::Result<()> {
        if self.size == self.len || self.broken {
            return Ok(());
        }
        self.file.set_len(self.len)?;
        self.size = self.len;
        self.file.sync_data()
    }

    /// The segment's file, to make it durable without holding the appender (the writer's
    /// sync thread).
    pub fn sync_handle(&self) -> Arc<File> {
        Arc::clone(&self.file)
    }

    /// Refuses every later append: a sync through a [`Appender::sync_handle`] failed.
    pub fn refuse_appends(&mut self) {
        self.broken = true;
    }

    /// Bytes in the segment.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the segment is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The segment's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::event::Event;

    fn records(count: u64) -> Vec<u8> {
        let mut out = Vec::new();
        for sequence in 1..=count {
            let event = CustomerEvent {
                customer_id: sequence * 10,
                event: Event::Purchase {
                    amount: sequence as f64,
                    time: 5,
                },
            };
            encode_record(sequence, &event, &mut out);
        }
        out
    }

    #[test]
    fn records_round_trip() {
        let bytes = records(5);
        let read = read_segment(&bytes);
        assert_eq!(read.records.len(), 5);
        assert_eq!(read.valid_bytes, bytes.len() as u64);
        assert!(read.damage.is_none());
        assert_eq!(read.records[4].event.customer_id, 50);
    }

    #[test]
    fn a_checksummed_record_no_request_could_have_given_is_corrupt() {
        use crate::live::event::SetValue;
        let refused = [
            (
                Event::Purchase {
                    amount: f64::NAN,
                    time: 5,
                },
                "the number NaN",
            ),
            (
                Event::Purchase {
                    amount: -2.0,
                    time: 5,
                },
                "negative",
            ),
            (
                Event::Purchase {
                    amount: 1.0,
                    time: i64::MIN,
                },
                "outside the years",
            ),
            (
                Event::Set {
                    column: "margin".into(),
                    value: SetValue::Number(f64::INFINITY),
                },
                "the number inf",
            ),
            (
                Event::Contact {
                    channel: "x".repeat(crate::limits::MAX_EVENT_TEXT_BYTES + 1),
                    campaign: String::new(),
                    offer: String::new(),
                    time: 5,
                },
                "a text of 257 bytes",
            ),
        ];
        for (event, why) in refused {
            let mut bytes = Vec::new();
            encode_record(
                1,
                &CustomerEvent {
                    customer_id: 7,
                    event,
                },
                &mut bytes,
            );
            match decode_record(&bytes) {
                Err(Bad::Corrupt { end, why: found }) => {
                    assert_eq!(end, bytes.len());
                    assert!(found.contains(why), "{found}");
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn a_torn_or_flipped_tail_is_a_tail() {
        let bytes = records(5);
        let whole = read_segment(&bytes[..]).valid_bytes;
        for cut in [bytes.len() - 1, bytes.len() - 15, bytes.len() - 30] {
            let read = read_segment(&bytes[..cut]);
            let damage = read.damage.expect("damaged");
            assert!(!damage.in_middle, "cut at {cut}");
            assert!(read.records.len() < 5 && read.valid_bytes < whole);
        }
        let mut flipped = bytes.clone();
        let last = flipped.len() - 3;
        flipped[last] ^= 0x10;
        let read = read_segment(&flipped);
        assert_eq!(read.records.len(), 4);
        assert!(!read.damage.unwrap().in_middle);
        let mut garbage = bytes.clone();
        garbage.extend_from_slice(b"\x13\x37\x00\x00garbage");
        let read = read_segment(&garbage);
        assert_eq!(read.records.len(), 5);
        assert!(!read.damage.unwrap().in_middle);
    }

    #[test]
    fn windows_read_what_one_pass_reads() {
        let mut bytes = records(23);
        for window in [1, 4, 23, 100] {
            let mut seen = Vec::new();
            let read = read_segment_in_windows(&bytes, window, |records| {
                assert!(!records.is_empty() && records.len() <= window);
                seen.extend(records.iter().map(|record| record.sequence));
                Ok::<(), ()>(())
            })
            .unwrap();
            assert_eq!(seen, (1..=23).collect::<Vec<_>>(), "window {window}");
            assert_eq!(read.valid_bytes, bytes.len() as u64);
            assert!(read.damage.is_none());
        }
        // A bad checksum in record 12: every window stops before it, at the same offset.
        let twelfth = read_segment(&records(11)).valid_bytes as usize;
        bytes[twelfth + RECORD_HEADER_BYTES + 1] ^= 4;
        let one_pass = read_segment(&bytes);
        assert_eq!(one_pass.records.len(), 11);
        for window in [1, 5, 11, 12, 64] {
            let mut count = 0;
            let read = read_segment_in_windows(&bytes, window, |records| {
                count += records.len();
                Ok::<(), ()>(())
            })
            .unwrap();
            assert_eq!(count, 11, "window {window}");
            assert_eq!(read.valid_bytes, twelfth as u64);
            assert_eq!(read.damage, one_pass.damage);
            assert!(read.damage.as_ref().unwrap().in_middle);
        }
        // An error of the callback stops the reading.
        let mut calls = 0;
        let stopped = read_segment_in_windows(&records(20), 5, |_| {
            calls += 1;
            Err("stop")
        });
        assert_eq!((stopped.unwrap_err(), calls), ("stop", 1));
    }

    #[test]
    fn a_sequence_that_skips_or_repeats_ends_the_valid_run_in_every_window() {
        // Records 1..=10, then a whole record (checksum right) numbered 12, or 10 again.
        for wrong in [12, 10, 0] {
            let mut bytes = records(10);
            let tenth = bytes.len() as u64;
            let event = CustomerEvent {
                customer_id: 7,
                event: Event::Purchase {
                    amount: 1.0,
                    time: 5,
                },
            };
            encode_record(wrong, &event, &mut bytes);
            encode_record(wrong + 1, &event, &mut bytes);
            for window in [1, 3, 10, 11, 64] {
                let mut seen = Vec::new();
                let read = read_segment_in_windows(&bytes, window, |records| {
                    seen.extend(records.iter().map(|record| record.sequence));
                    Ok::<(), ()>(())
                })
                .unwrap();
                assert_eq!(
                    seen,
                    (1..=10).collect::<Vec<_>>(),
                    "{wrong}, window {window}"
                );
                assert_eq!(read.valid_bytes, tenth);
                let damage = read.damage.expect("the wrong sequence is reported");
                assert!(damage.why.contains("skips or repeats"), "{}", damage.why);
                // A record after it continues from 10 (11, or 13 after a hole): the middle.
                assert_eq!(damage.in_middle, wrong != 0);
            }
        }
    }

    #[test]
    fn zeros_after_the_last_record_are_the_end_and_damage_before_them_is_not() {
        let bytes = records(5);
        let zeros = vec![0u8; ROOM_BYTES as usize];
        let read = read_segment(&[&bytes[..], &zeros[..]].concat());
        assert_eq!(read.records.len(), 5);
        assert_eq!(read.valid_bytes, bytes.len() as u64);
        assert!(read.damage.is_none(), "{:?}", read.damage);
        // A record cut short (or flipped) before the zeros: a tail, as at the file's end.
        for damaged in [bytes[..bytes.len() - 9].to_vec(), {
            let mut flipped = bytes.clone();
            let last = flipped.len() - 3;
            flipped[last] ^= 0x10;
            flipped
        }] {
            let read = read_segment(&[&damaged[..], &zeros[..]].concat());
            assert_eq!(read.records.len(), 4);
            let damage = read.damage.expect("a damaged tail");
            assert!(!damage.in_middle, "{damage:?}");
        }
        // Zeros, then a valid record (blocks written out of order): in the middle.
        let third = read_segment(&records(2)).valid_bytes as usize;
        let mut holed = bytes.clone();
        holed[third..third + 30].fill(0);
        let read = read_segment(&[&holed[..], &zeros[..]].concat());
        assert_eq!(read.records.len(), 2);
        assert!(read.damage.expect("a hole").in_middle);
    }

    #[test]
    fn an_appender_writes_zeros_ahead_and_cuts_them_at_a_clean_close() {
        let dir = tempfile::tempdir().unwrap();
        let path = segment_path(dir.path(), 1);
        let bytes = records(40);
        let mut appender = Appender::open(&path, 0).unwrap();
        for record in bytes.chunks(bytes.len() / 4) {
            appender.append(record).unwrap();
        }
        assert_eq!(appender.len(), bytes.len() as u64);
        let file = fs::read(&path).unwrap();
        assert_eq!(
            file.len(),
            bytes.len() / 4 + ROOM_BYTES as usize,
            "one room written"
        );
        assert_eq!(&file[..bytes.len()], &bytes[..]);
        let read = read_segment(&file);
        assert_eq!((read.records.len(), read.damage), (40, None));
        // Groups past the room grow the file, and the room follows them.
        let big = records(2 * ROOM_BYTES / 40);
        let mut appender = Appender::open(&path, 0).unwrap();
        appender.append(&big).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().len(),
            big.len() as u64 + ROOM_BYTES
        );
        appender.trim().unwrap();
        assert_eq!(fs::read(&path).unwrap(), big);
        // Reopened at a shorter length (a torn tail cut), the zeros go too.
        appender.append(&records(1)).unwrap();
        drop(appender);
        Appender::open(&path, 48).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().len(), 48);
    }

    #[test]
    fn a_flipped_bit_before_valid_records_is_in_the_middle() {
        let mut bytes = records(5);
        bytes[RECORD_HEADER_BYTES + 2] ^= 1;
        let read = read_segment(&bytes);
        assert!(read.records.is_empty());
        let damage = read.damage.unwrap();
        assert!(damage.in_middle, "{damage:?}");
        // A flipped length too: the records after it are still found.
        let mut bytes = records(5);
        bytes[0] ^= 0x40;
        assert!(read_segment(&bytes).damage.unwrap().in_middle);
    }
}
