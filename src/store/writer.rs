//! Lays out and writes a store file: preamble, header, then every section 64-byte aligned with
//! its checksum. Files are replaced atomically, so a failed import never leaves a partial store.

use std::borrow::Cow;
use std::io::{self, Write};
use std::path::Path;

use rayon::prelude::*;

use super::format::{
    self, ColumnKind, ColumnMeta, DictionaryMeta, Header, ID_COLUMN, PREAMBLE_BYTES, Section,
};
use crate::atomic_file::write_atomically;
use crate::error::{Error, Result};

/// Customers in memory on their way into a store file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    /// Row `i`'s customer id, unique: the id itself, or its position in `text_ids`.
    pub ids: Vec<u64>,
    /// Text customer ids, strictly increasing in byte order, one per row; `None` when the ids
    /// are whole numbers.
    pub text_ids: Option<Vec<String>>,
    /// Every other column, in header order; each has `ids.len()` values.
    pub columns: Vec<TableColumn>,
}

/// One named column of a [`Table`].
#[derive(Debug, Clone, PartialEq)]
pub struct TableColumn {
    /// The CSV header name.
    pub name: String,
    /// The values.
    pub values: ColumnValues,
}

/// A column's values by type.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnValues {
    /// Numbers, finite.
    F32(Vec<f32>),
    /// Text, as codes into `dictionary` (distinct strings in order of first appearance).
    Text {
        /// One code per row, each `< dictionary.len()`.
        codes: Vec<u32>,
        /// The distinct strings.
        dictionary: Vec<String>,
    },
}

impl ColumnValues {
    fn kind(&self) -> ColumnKind {
        match self {
            ColumnValues::F32(_) => ColumnKind::F32,
            ColumnValues::Text { .. } => ColumnKind::Text,
        }
    }

    fn data_bytes(&self) -> &[u8] {
        match self {
            ColumnValues::F32(values) => bytemuck::cast_slice(values),
            ColumnValues::Text { codes, .. } => bytemuck::cast_slice(codes),
        }
    }
}

/// A section's bytes before its place in the file is known.
struct Pending<'a> {
    bytes: Cow<'a, [u8]>,
}

/// The encoded header and, in file order, every section's bytes with its place in the file.
struct Layout<'a> {
    version: u32,
    header_bytes: Vec<u8>,
    sections: Vec<(Pending<'a>, Section)>,
}

/// Queues a dictionary's offsets and text, in that order, after `sections`; its sections are
/// placed later.
fn dictionary_sections<'a>(
    dictionary: &[String],
    sections: &mut Vec<Pending<'a>>,
) -> DictionaryMeta {
    let mut offsets = Vec::with_capacity(dictionary.len() + 1);
    let mut bytes = Vec::new();
    offsets.push(0u64);
    for entry in dictionary {
        bytes.extend_from_slice(entry.as_bytes());
        offsets.push(bytes.len() as u64);
    }
    sections.push(Pending {
        bytes: Cow::Owned(bytemuck::cast_slice(&offsets).to_vec()),
    });
    sections.push(Pending {
        bytes: Cow::Owned(bytes),
    });
    let placeholder = Section {
        offset: 0,
        len: 0,
        checksum: 0,
    };
    DictionaryMeta {
        entries: dictionary.len() as u64,
        offsets: placeholder,
        bytes: placeholder,
    }
}

/// Places every section: the header's size depends only on names, so it is encoded once with
/// placeholder offsets to learn where the first section starts.
fn lay_out<'a>(table: &'a Table, id_slots: &'a [u32]) -> Result<Layout<'a>> {
    let placeholder = Section {
        offset: 0,
        len: 0,
        checksum: 0,
    };
    let mut sections = vec![
        Pending {
            bytes: Cow::Borrowed(bytemuck::cast_slice(&table.ids)),
        },
        Pending {
            bytes: Cow::Borrowed(bytemuck::cast_slice(id_slots)),
        },
    ];
    let mut columns = vec![ColumnMeta {
        name: ID_COLUMN.to_string(),
        kind: ColumnKind::U64,
        data: placeholder,
        dictionary: table
            .text_ids
            .as_ref()
            .map(|text| dictionary_sections(text, &mut sections)),
    }];
    for column in &table.columns {
        sections.push(Pending {
            bytes: Cow::Borrowed(column.values.data_bytes()),
        });
        let dictionary = match &column.values {
            ColumnValues::F32(_) => None,
            ColumnValues::Text { dictionary, .. } => {
                Some(dictionary_sections(dictionary, &mut sections))
            }
        };
        columns.push(ColumnMeta {
            name: column.name.clone(),
            kind: column.values.kind(),
            data: placeholder,
            dictionary,
        });
    }
    let mut header = Header {
        rows: table.ids.len() as u64,
        columns,
        id_index: placeholder,
    };
    let header_len = format::encode_header(&header)?.len();

    let mut offset = format::align_up((PREAMBLE_BYTES + header_len) as u64);
    // Every byte of the store is hashed here: the sections in parallel.
    let checksums: Vec<u64> = sections
        .par_iter()
        .map(|pending| format::checksum(&pending.bytes))
        .collect();
    let sections: Vec<(Pending<'a>, Section)> = sections
        .into_iter()
        .zip(checksums)
        .map(|(pending, checksum)| {
            let section = Section {
                offset,
                len: pending.bytes.len() as u64,
                checksum,
            };
            offset = format::align_up(offset + section.len);
            (pending, section)
        })
        .collect();
    let mut placed = sections.iter().map(|(_, section)| *section);
    let mut next = || placed.next().expect("one pending section per header slot");
    for (position, column) in header.columns.iter_mut().enumerate() {
        column.data = next();
        if position == 0 {
            header.id_index = next();
        }
        if let Some(dictionary) = &mut column.dictionary {
            dictionary.offsets = next();
            dictionary.bytes = next();
        }
    }
    let header_bytes = format::encode_header(&header)?;
    assert_eq!(
        header_bytes.len(),
        header_len,
        "fixed-int encoding makes the header length independent of offsets"
    );
    Ok(Layout {
        // Whole-number ids are exactly the version-1 layout: older builds read such stores.
        version: if table.text_ids.is_some() {
            format::FORMAT_VERSION
        } else {
            format::MIN_FORMAT_VERSION
        },
        header_bytes,
        sections,
    })
}

/// Writes the whole store for `table` with its id index `id_slots` to `out`; returns the bytes
/// written.
pub fn encode(table: &Table, id_slots: &[u32], out: &mut impl Write) -> Result<u64> {
    let layout = lay_out(table, id_slots)?;
    let io_error = |e| Error::io("<store output>", e);
    write_layout(&layout, out).map_err(io_error)
}

fn write_layout(layout: &Layout<'_>, out: &mut impl Write) -> io::Result<u64> {
    let preamble = format::encode_preamble(
        layout.version,
        layout.header_bytes.len(),
        format::checksum(&layout.header_bytes),
    )
    .map_err(io::Error::other)?;
    out.write_all(&preamble)?;
    out.write_all(&layout.header_bytes)?;
    let mut written = (PREAMBLE_BYTES + layout.header_bytes.len()) as u64;
    let padding = [0u8; format::SECTION_ALIGN];
    for (pending, section) in &layout.sections {
        let gap = (section.offset - written) as usize;
        out.write_all(&padding[..gap])?;
        out.write_all(&pending.bytes)?;
        written = section.offset + section.len;
    }
    Ok(written)
}

/// The store for `table` with its id index `id_slots`, written straight into the buffer `make`
/// builds from the store's length and a function that fills such a buffer (an in-memory store's
/// aligned blocks: no growing buffer, no second copy).
pub fn encode_into<T>(
    table: &Table,
    id_slots: &[u32],
    make: impl FnOnce(usize, &mut dyn FnMut(&mut [u8]) -> io::Result<()>) -> io::Result<T>,
) -> Result<T> {
    let layout = lay_out(table, id_slots)?;
    let len = layout.sections.last().map_or(
        (PREAMBLE_BYTES + layout.header_bytes.len()) as u64,
        |(_, section)| section.offset + section.len,
    );
    let len = usize::try_from(len).map_err(|_| Error::invalid("store", "larger than memory"))?;
    let mut fill = |buffer: &mut [u8]| {
        let mut out = buffer;
        write_layout(&layout, &mut out).map(|_| ())
    };
    make(len, &mut fill).map_err(|e| Error::io("<store in memory>", e))
}

/// Writes the store to `path` atomically (see [`crate::atomic_file`]).
pub fn write_file(table: &Table, id_slots: &[u32], path: &Path) -> Result<u64> {
    let layout = lay_out(table, id_slots)?;
    write_atomically(path, |out| {
        write_layout(&layout, out).map_err(|e| Error::io(path, e))
    })
}
