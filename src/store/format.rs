//! The store file's byte layout (docs/format.md): a fixed preamble, a bincode header describing
//! every section, then 64-byte-aligned little-endian sections. Nothing here touches a file; the
//! reader validates every number in the header against the real byte length before use.

use bincode::{Decode, Encode};

use crate::error::{Error, Result};

#[cfg(target_endian = "big")]
compile_error!(
    "crv's store columns are little-endian and read in place: big-endian hosts are not supported"
);

/// The first eight bytes of every store file.
pub const MAGIC: [u8; 8] = *b"CRVSTORE";
/// The newest format version, bumped on any layout change. Version 2 lets `customer_id` carry a
/// dictionary: text ids in byte order, the column's `u64` values being positions in it.
pub const FORMAT_VERSION: u32 = 2;
/// The oldest version this build reads. A store whose ids are whole numbers is written as
/// version 1, whose layout describes it exactly, so builds that read only version 1 read it.
pub const MIN_FORMAT_VERSION: u32 = 1;
/// Magic (8) + version (4) + header length (4) + header checksum (8).
pub const PREAMBLE_BYTES: usize = 24;
/// Every section starts at a multiple of this, so columns can be read in place as `&[f32]`
/// and SIMD loads never straddle a cache line at the start of a column.
pub const SECTION_ALIGN: usize = 64;
/// Upper bound on the header; dictionaries live in sections, so real headers are a few KiB.
pub const MAX_HEADER_BYTES: usize = 1 << 20;
/// Rows are addressed by `u32` in the id index; `u32::MAX` marks an empty slot.
pub const MAX_ROWS: u64 = u32::MAX as u64 - 1;
/// The column every store has: the customer key.
pub const ID_COLUMN: &str = super::schema::CUSTOMER_ID;

/// The element type of a column, which fixes its section's length (`rows * size`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode)]
pub enum ColumnKind {
    /// `u64` values: the customer id column.
    U64,
    /// `f32` values: every numeric column.
    F32,
    /// `u32` codes into a dictionary of strings: text attributes.
    Text,
}

impl ColumnKind {
    /// Bytes per row of this kind.
    pub fn element_bytes(self) -> u64 {
        match self {
            ColumnKind::U64 => 8,
            ColumnKind::F32 | ColumnKind::Text => 4,
        }
    }

    /// The name `crv info` shows.
    pub fn as_str(self) -> &'static str {
        match self {
            ColumnKind::U64 => "u64",
            ColumnKind::F32 => "f32",
            ColumnKind::Text => "text",
        }
    }
}

/// A contiguous byte range of the file with the xxh3-64 checksum of its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode)]
pub struct Section {
    /// Byte offset from the start of the file; a multiple of [`SECTION_ALIGN`].
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
    /// xxh3-64 of the section's bytes, verified on demand.
    pub checksum: u64,
}

/// A text column's distinct values: `entries + 1` `u64` offsets into a UTF-8 byte section.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct DictionaryMeta {
    /// Number of distinct strings; every code in the column is below it.
    pub entries: u64,
    /// `entries + 1` little-endian `u64` offsets, starting at 0, non-decreasing.
    pub offsets: Section,
    /// The concatenated UTF-8 strings.
    pub bytes: Section,
}

/// One column as the header describes it.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct ColumnMeta {
    /// The CSV header name, unique within the store.
    pub name: String,
    /// The element type.
    pub kind: ColumnKind,
    /// The values, `rows * kind.element_bytes()` bytes.
    pub data: Section,
    /// Present exactly when `kind` is [`ColumnKind::Text`], and (version 2) on `customer_id`
    /// when the ids are text: its `rows` entries in byte order, strictly increasing, the
    /// column's values their positions.
    pub dictionary: Option<DictionaryMeta>,
}

/// The decoded header: everything needed to find and check every section.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct Header {
    /// Number of customers; at most [`MAX_ROWS`].
    pub rows: u64,
    /// The columns, `customer_id` first.
    pub columns: Vec<ColumnMeta>,
    /// The persisted id index: a power-of-two number of `u32` slots (see `id_index`).
    pub id_index: Section,
}

impl Header {
    /// Every section the header names, for overlap and checksum checks, each with a label.
    pub fn sections(&self) -> Vec<(String, Section)> {
        let mut sections = Vec::with_capacity(self.columns.len() * 3 + 1);
        sections.push(("id index".to_string(), self.id_index));
        for column in &self.columns {
            sections.push((format!("column `{}`", column.name), column.data));
            if let Some(dictionary) = &column.dictionary {
                sections.push((
                    format!("dictionary offsets of `{}`", column.name),
                    dictionary.offsets,
                ));
                sections.push((format!("dictionary of `{}`", column.name), dictionary.bytes));
            }
        }
        sections
    }
}

/// Fixed-width integers keep the header's length independent of the offsets inside it, so the
/// writer can size the header before it knows where the sections land.
fn config() -> impl bincode::config::Config {
    bincode::config::standard()
        .with_little_endian()
        .with_fixed_int_encoding()
        .with_limit::<MAX_HEADER_BYTES>()
}

/// Encodes the header; its length depends only on names and counts, never on offsets.
pub fn encode_header(header: &Header) -> Result<Vec<u8>> {
    let bytes = bincode::encode_to_vec(header, config())
        .map_err(|e| Error::CorruptStore(format!("header cannot be encoded: {e}")))?;
    if bytes.len() > MAX_HEADER_BYTES {
        return Err(Error::CorruptStore(format!(
            "header of {} bytes exceeds the {MAX_HEADER_BYTES}-byte limit (too many columns?)",
            bytes.len()
        )));
    }
    Ok(bytes)
}

/// Decodes a header from exactly `bytes`; trailing bytes are an error.
pub fn decode_header(bytes: &[u8]) -> Result<Header> {
    let (header, used): (Header, usize) = bincode::decode_from_slice(bytes, config())
        .map_err(|e| Error::CorruptStore(format!("header does not decode: {e}")))?;
    if used != bytes.len() {
        return Err(Error::CorruptStore(format!(
            "header decodes from {used} of its {} bytes",
            bytes.len()
        )));
    }
    Ok(header)
}

/// The preamble of a version-`version` file whose header is `header_len` bytes with checksum
/// `header_checksum`.
pub fn encode_preamble(
    version: u32,
    header_len: usize,
    header_checksum: u64,
) -> Result<[u8; PREAMBLE_BYTES]> {
    let header_len = u32::try_from(header_len)
        .map_err(|_| Error::CorruptStore(format!("header of {header_len} bytes is too large")))?;
    let mut preamble = [0u8; PREAMBLE_BYTES];
    preamble[0..8].copy_from_slice(&MAGIC);
    preamble[8..12].copy_from_slice(&version.to_le_bytes());
    preamble[12..16].copy_from_slice(&header_len.to_le_bytes());
    preamble[16..24].copy_from_slice(&header_checksum.to_le_bytes());
    Ok(preamble)
}

/// The preamble's fields after magic and version have been checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preamble {
    /// The format version, from [`MIN_FORMAT_VERSION`] to [`FORMAT_VERSION`].
    pub version: u32,
    /// The header's length in bytes.
    pub header_len: usize,
    /// xxh3-64 of the header bytes.
    pub header_checksum: u64,
}

/// Checks magic and version, in that order, before reading anything else.
pub fn decode_preamble(bytes: &[u8]) -> Result<Preamble> {
    if bytes.len() < PREAMBLE_BYTES {
        return Err(Error::CorruptStore(format!(
            "file is {} bytes, shorter than the {PREAMBLE_BYTES}-byte preamble",
            bytes.len()
        )));
    }
    if bytes[0..8] != MAGIC {
        return Err(Error::CorruptStore(format!(
            "bad magic {:02x?}: not a crv store file",
            &bytes[0..8]
        )));
    }
    let version = u32::from_le_bytes(le_array(&bytes[8..12]));
    if !(MIN_FORMAT_VERSION..=FORMAT_VERSION).contains(&version) {
        return Err(Error::CorruptStore(format!(
            "format version {version}, this build reads versions {MIN_FORMAT_VERSION} to \
             {FORMAT_VERSION}"
        )));
    }
    let header_len = u32::from_le_bytes(le_array(&bytes[12..16])) as usize;
    if header_len > MAX_HEADER_BYTES {
        return Err(Error::CorruptStore(format!(
            "header length {header_len} exceeds the {MAX_HEADER_BYTES}-byte limit"
        )));
    }
    Ok(Preamble {
        version,
        header_len,
        header_checksum: u64::from_le_bytes(le_array(&bytes[16..24])),
    })
}

fn le_array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    bytes
        .try_into()
        .expect("callers slice exactly N bytes of a length-checked preamble")
}

/// xxh3-64, the checksum of the header and of every section.
pub fn checksum(bytes: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(bytes)
}

/// Rounds `offset` up to the next multiple of [`SECTION_ALIGN`].
pub fn align_up(offset: u64) -> u64 {
    offset.next_multiple_of(SECTION_ALIGN as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_header(offset: u64) -> Header {
        Header {
            rows: 3,
            columns: vec![ColumnMeta {
                name: ID_COLUMN.to_string(),
                kind: ColumnKind::U64,
                data: Section {
                    offset,
                    len: 24,
                    checksum: 7,
                },
                dictionary: None,
            }],
            id_index: Section {
                offset: offset + 64,
                len: 32,
                checksum: 9,
            },
        }
    }

    #[test]
    fn header_length_does_not_depend_on_offsets() {
        let small = encode_header(&sample_header(0)).unwrap();
        let large = encode_header(&sample_header(u64::MAX / 2)).unwrap();
        assert_eq!(small.len(), large.len());
        assert_eq!(decode_header(&large).unwrap(), sample_header(u64::MAX / 2));
    }

    #[test]
    fn preamble_round_trips_and_rejects_bad_magic_then_version() {
        let preamble = encode_preamble(FORMAT_VERSION, 100, 42).unwrap();
        let decoded = decode_preamble(&preamble).unwrap();
        assert_eq!(decoded.version, FORMAT_VERSION);
        assert_eq!(decoded.header_len, 100);
        assert_eq!(decoded.header_checksum, 42);

        let mut bad_magic = preamble;
        bad_magic[0] ^= 1;
        let message = decode_preamble(&bad_magic).unwrap_err().to_string();
        assert!(message.contains("bad magic"), "{message}");

        let mut bad_version = preamble;
        bad_version[8] = 3;
        let message = decode_preamble(&bad_version).unwrap_err().to_string();
        assert!(message.contains("format version 3"), "{message}");
        bad_version[8] = 0;
        assert!(decode_preamble(&bad_version).is_err());
    }

    #[test]
    fn header_with_trailing_bytes_is_rejected() {
        let mut bytes = encode_header(&sample_header(64)).unwrap();
        bytes.push(0);
        let message = decode_header(&bytes).unwrap_err().to_string();
        assert!(message.contains("decodes from"), "{message}");
    }
}
