//! A reader that refuses a CSV record longer than a cap before the CSV parser buffers it: the
//! `csv` crate grows its record to whatever the input holds, so a file with no line break (or
//! an unclosed quote) would otherwise take memory without bound. Record ends are found as the
//! `csv` crate finds them: a line break (`\n` or `\r`) outside a quoted field, where a quote
//! opens a quoted field only at the field's start (`5" screen` is plain text), `""` inside one
//! is a quote, and a lone `"` closes it.

use std::io::{self, Read};

/// `inner`'s bytes, failing with [`io::ErrorKind::InvalidData`] at the first record (header
/// included) of more than `cap` bytes.
///
/// Only quotes and line breaks change what ends a record, so the reader jumps from one to
/// the next (`memchr`) instead of stepping through every byte: whether a quote opens a
/// quoted field depends only on the byte before it (a comma or a line break, or none).
pub struct CappedRecords<R> {
    inner: R,
    cap: usize,
    /// Bytes of the current record read so far.
    record: usize,
    /// Where the parser is within the current record.
    state: State,
    /// The last byte read (a line break before the first).
    last: u8,
    /// Records ended so far (the current one's number is one more).
    records: u64,
}

/// The `csv` crate's view of the current byte, as far as record ends go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Outside a quoted field.
    Unquoted,
    /// In a quoted field.
    Quoted,
    /// Just after a quote in a quoted field: the field's end, or half of `""`.
    QuoteInQuoted,
}

impl<R: Read> CappedRecords<R> {
    /// `inner` with records of at most `cap` bytes.
    pub fn new(inner: R, cap: usize) -> Self {
        CappedRecords {
            inner,
            cap,
            record: 0,
            state: State::Unquoted,
            last: b'\n',
            records: 0,
        }
    }

    /// Follows the record state over `bytes`; an error when a record grows past the cap.
    fn follow(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut at = 0;
        while at < bytes.len() {
            let rest = &bytes[at..];
            let skip = match self.state {
                State::Unquoted => memchr::memchr3(b'"', b'\n', b'\r', rest),
                State::Quoted => memchr::memchr(b'"', rest),
                State::QuoteInQuoted => Some(0),
            };
            let Some(skip) = skip else {
                self.record += rest.len();
                self.last = bytes[bytes.len() - 1];
                return self.check();
            };
            let byte = rest[skip];
            let before = if skip > 0 { rest[skip - 1] } else { self.last };
            self.record += skip + 1;
            self.check()?;
            let mut ended = false;
            self.state = match (self.state, byte) {
                (State::Quoted, _) => State::QuoteInQuoted,
                (State::QuoteInQuoted, b'"') => State::Quoted,
                (_, b'"') if matches!(before, b',' | b'\n' | b'\r') => State::Quoted,
                (_, b'\n' | b'\r') => {
                    // `\r\n` ends one record.
                    ended = !(byte == b'\n' && before == b'\r' && self.record == 1);
                    State::Unquoted
                }
                _ => State::Unquoted,
            };
            if byte == b'\n' || byte == b'\r' {
                self.record = 0;
                self.records += u64::from(ended);
            }
            self.last = byte;
            at += skip + 1;
        }
        Ok(())
    }

    fn check(&self) -> io::Result<()> {
        if self.record <= self.cap {
            return Ok(());
        }
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "record {} (counting the header as 1) is longer than {} bytes{}",
                self.records + 1,
                self.cap,
                if self.state == State::Quoted {
                    " (inside a quoted field: is a closing quote missing?)"
                } else {
                    ""
                }
            ),
        ))
    }
}

impl<R: Read> Read for CappedRecords<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.follow(&buf[..read])?;
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn read_all(input: &[u8], cap: usize, chunk: usize) -> io::Result<Vec<u8>> {
        /// Hands out at most `chunk` bytes a call, so records straddle reads.
        struct Trickle<'a>(&'a [u8], usize);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = self.0.len().min(buf.len()).min(self.1);
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut out = Vec::new();
        CappedRecords::new(Trickle(input, chunk), cap).read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn long_records_fail_and_others_pass_unchanged() {
        let csv = b"a,b\n1,\"x\ny\"\n22,\"q\"\"q\"\n";
        assert_eq!(read_all(csv, 10, 3).unwrap(), csv);
        let error = read_all(csv, 5, 3).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert_eq!(
            error.to_string(),
            "record 2 (counting the header as 1) is longer than 5 bytes (inside a quoted field: is a closing quote missing?)"
        );
        let unclosed = b"a,b\n1,\"no end\n2,x\n3,y\n";
        assert!(read_all(unclosed, 12, 4).is_err());
        assert_eq!(read_all(b"a,b\n1,5\" screen\n", 12, 2).unwrap().len(), 16);
        let error = read_all(&[b'7'; 100], 50, 64).unwrap_err().to_string();
        assert_eq!(
            error,
            "record 1 (counting the header as 1) is longer than 50 bytes"
        );
    }

    #[test]
    fn crlf_ends_one_record() {
        let csv = b"a,b\r\n1,2\r\n3,\"4\r\n5\"\r\n6,7777777777\r\n";
        assert_eq!(read_all(csv, 13, 5).unwrap(), csv);
        let error = read_all(csv, 10, 5).unwrap_err().to_string();
        assert_eq!(
            error,
            "record 4 (counting the header as 1) is longer than 10 bytes"
        );
    }

    proptest! {
        /// Against the csv crate's own records: no record whose bytes (from the end of the one
        /// before, line break included) fit the cap fails, and every record with more content
        /// than the cap does.
        #[test]
        fn the_cap_matches_the_parsers_records(
            fields in proptest::collection::vec("[a-c\"\n\r,]{0,12}", 1..30),
            cap in 1usize..40,
            chunk in 1usize..9,
        ) {
            let input = fields.concat();
            let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true)
                .from_reader(input.as_bytes());
            let mut record = csv::ByteRecord::new();
            let (mut ends, mut longest_content) = (vec![0u64], 0);
            while let Ok(true) = reader.read_byte_record(&mut record) {
                ends.push(reader.position().byte());
                longest_content = longest_content.max(record.as_slice().len());
            }
            prop_assume!(ends.last() == Some(&(input.len() as u64)));
            let longest = ends.windows(2).map(|pair| (pair[1] - pair[0]) as usize).max().unwrap_or(0);
            let passed = read_all(input.as_bytes(), cap, chunk).is_ok();
            if longest <= cap {
                prop_assert!(passed, "records of at most {} bytes", longest);
            }
            if longest_content > cap {
                prop_assert!(!passed, "a record of {} bytes of content", longest_content);
            }
        }
    }
}
