//! The customer store: one immutable file of checksummed, 64-byte-aligned columns behind a
//! bincode header. [`Store::from_bytes`] validates every header number against the real byte
//! length before any column is handed out; [`Store::open`] is a memory map plus that.

pub mod builder;
pub mod column;
pub mod columnar;
pub mod csv;
pub mod format;
#[cfg(feature = "fuzzing")]
pub mod fuzz;
pub mod id_index;
pub mod import;
pub(crate) mod mmap;
pub mod schema;
pub mod writer;

use std::fmt;
use std::fs::File;
use std::ops::Deref;
use std::path::{Path, PathBuf};

use bytemuck::{Pod, Zeroable};

pub use self::column::{Column, Dictionary, TextColumn};
use self::format::{ColumnKind, ColumnMeta, Header, ID_COLUMN, PREAMBLE_BYTES, Section};
pub use self::import::{ImportOptions, ImportSummary, import, import_with};
use self::schema::Domain;
use crate::error::{Error, Result};
use crate::model::{CustomerId, ExternalId};

/// A block with the alignment every section needs, for stores copied into memory.
#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C, align(64))]
struct AlignedBlock([u8; format::SECTION_ALIGN]);

/// The bytes behind a store: a read-only mapping, or an aligned copy.
enum Backing {
    Mapped(memmap2::Mmap),
    Copied {
        blocks: Vec<AlignedBlock>,
        len: usize,
    },
}

impl Backing {
    /// `len` bytes in aligned blocks, written by `fill`.
    fn copied_with(
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> std::io::Result<()>,
    ) -> std::io::Result<Backing> {
        let mut blocks = vec![AlignedBlock([0; format::SECTION_ALIGN]); len.div_ceil(64)];
        fill(&mut bytemuck::cast_slice_mut::<AlignedBlock, u8>(&mut blocks)[..len])?;
        Ok(Backing::Copied { blocks, len })
    }
}

impl Deref for Backing {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Backing::Mapped(map) => map,
            Backing::Copied { blocks, len } => &bytemuck::cast_slice(blocks)[..*len],
        }
    }
}

/// An open, validated store. Cheap to share: columns are borrowed from the file's pages.
pub struct Store {
    bytes: Backing,
    header: Header,
    version: u32,
    path: Option<PathBuf>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("rows", &self.header.rows)
            .field("columns", &self.header.columns.len())
            .finish()
    }
}

impl Store {
    /// Maps the file at `path` and validates it (see [`Store::from_bytes`]).
    pub fn open(path: impl AsRef<Path>) -> Result<Store> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let map = mmap::map(&file).map_err(|e| Error::io(path, e))?;
        Store::validated_at(path, Backing::Mapped(map))
    }

    /// Reads the file at `path` into aligned memory and validates it (see
    /// [`Store::from_bytes`]): unlike [`Store::open`], the store then no longer depends on the
    /// file, so truncating or rewriting it cannot fault a reader (`crv serve --copy-to-memory`).
    pub fn open_in_memory(path: impl AsRef<Path>) -> Result<Store> {
        use std::io::Read;
        let path = path.as_ref();
        let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        let len = usize::try_from(len).map_err(|_| {
            Error::CorruptStore(format!(
                "{}: {len} bytes do not fit in memory",
                path.display()
            ))
        })?;
        // Straight into the aligned blocks: one copy of the file in memory, never two.
        let copy = Backing::copied_with(len, |bytes| file.read_exact(bytes))
            .map_err(|e| Error::io(path, e))?;
        Store::validated_at(path, copy)
    }

    /// A store over `bytes` read from `path`, once validated; a corruption names the file.
    fn validated_at(path: &Path, bytes: Backing) -> Result<Store> {
        let (version, header) = validate(&bytes).map_err(|e| match e {
            Error::CorruptStore(message) => {
                Error::CorruptStore(format!("{}: {message}", path.display()))
            }
            other => other,
        })?;
        Ok(Store {
            bytes,
            header,
            version,
            path: Some(path.to_path_buf()),
        })
    }

    /// Validates `bytes` as a store and copies them into aligned memory: magic, version, header
    /// length and checksum, the header (decoded with a byte limit), then every section's
    /// offset and length by checked arithmetic inside the file, alignment, lengths equal to
    /// rows times element size, no overlaps, dictionaries. Column values are checked by
    /// [`Store::verify`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Store> {
        let (version, header) = validate(bytes)?;
        Ok(Store {
            version,
            bytes: Backing::copied_with(bytes.len(), |copy| {
                copy.copy_from_slice(bytes);
                Ok(())
            })
            .expect("copying between slices cannot fail"),
            header,
            path: None,
        })
    }

    /// A store of `table`'s customers held in memory, `id_slots` its id index
    /// ([`id_index::build`]): the same bytes `crv import` would write, validated as a file is.
    pub fn in_memory(table: &writer::Table, id_slots: &[u32]) -> Result<Store> {
        let bytes =
            writer::encode_into(table, id_slots, |len, fill| Backing::copied_with(len, fill))?;
        let (version, header) = validate(&bytes)?;
        Ok(Store {
            version,
            bytes,
            header,
            path: None,
        })
    }

    /// Number of customers.
    pub fn rows(&self) -> usize {
        self.header.rows as usize
    }

    /// The file's format version.
    pub fn format_version(&self) -> u32 {
        self.version
    }

    /// The store's size in bytes.
    pub fn file_bytes(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// The store's identity: its header checksum, which covers every section's checksum, so
    /// two stores with the same identity hold the same bytes (the event log's checkpoints
    /// name the store they were folded into by it).
    pub fn identity(&self) -> u64 {
        format::decode_preamble(&self.bytes)
            .expect("the preamble was validated at open")
            .header_checksum
    }

    /// The path it was opened from, if any.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The columns as the header describes them, `customer_id` first.
    pub fn columns(&self) -> &[ColumnMeta] {
        &self.header.columns
    }

    /// The persisted id index section.
    pub fn id_index_section(&self) -> Section {
        self.header.id_index
    }

    fn section(&self, section: Section) -> &[u8] {
        // In range: `validate` checked offset + len <= file length for every section.
        &self.bytes[section.offset as usize..(section.offset + section.len) as usize]
    }

    fn view(&self, meta: &ColumnMeta) -> Column<'_> {
        let bytes = self.section(meta.data);
        let aligned = "sections are 64-byte aligned and sized rows * element (validated at open)";
        match meta.kind {
            ColumnKind::U64 => Column::U64(bytemuck::try_cast_slice(bytes).expect(aligned)),
            ColumnKind::F32 => Column::F32(bytemuck::try_cast_slice(bytes).expect(aligned)),
            ColumnKind::Text => {
                let dictionary = meta
                    .dictionary
                    .as_ref()
                    .expect("text columns have a dictionary (validated at open)");
                Column::Text(TextColumn {
                    codes: bytemuck::try_cast_slice(bytes).expect(aligned),
                    dictionary: self.dictionary(dictionary),
                })
            }
        }
    }

    fn dictionary(&self, dictionary: &format::DictionaryMeta) -> Dictionary<'_> {
        Dictionary {
            offsets: bytemuck::try_cast_slice(self.section(dictionary.offsets))
                .expect("sections are 64-byte aligned (validated at open)"),
            text: std::str::from_utf8(self.section(dictionary.bytes))
                .expect("dictionary bytes are UTF-8 (validated at open)"),
        }
    }

    /// The column called `name`, if the store has it.
    pub fn column(&self, name: &str) -> Option<Column<'_>> {
        self.header
            .columns
            .iter()
            .find(|meta| meta.name == name)
            .map(|meta| self.view(meta))
    }

    /// The column at `index` of [`Store::columns`]; panics past the last column.
    pub fn column_at(&self, index: usize) -> Column<'_> {
        self.view(&self.header.columns[index])
    }

    /// The customer ids, row by row: the ids themselves, or, when they are text, their
    /// positions in [`Store::text_ids`] (so their order is the text ids' byte order).
    pub fn ids(&self) -> &[u64] {
        let ids = self.section(self.header.columns[0].data);
        bytemuck::try_cast_slice(ids)
            .expect("column 0 is the aligned u64 customer_id (validated at open)")
    }

    /// The text customer ids in byte order, `None` when the ids are whole numbers.
    pub fn text_ids(&self) -> Option<Dictionary<'_>> {
        self.header.columns[0]
            .dictionary
            .as_ref()
            .map(|dictionary| self.dictionary(dictionary))
    }

    /// Row `row`'s customer id as imported.
    ///
    /// # Panics
    /// If `row >= self.rows()`, or if the text ids were not verified and the row's position
    /// lies outside them.
    pub fn customer_id(&self, row: usize) -> ExternalId<'_> {
        let id = self.ids()[row];
        match self.text_ids() {
            None => ExternalId::Number(id),
            Some(text) => ExternalId::Text(
                u32::try_from(id)
                    .ok()
                    .and_then(|code| text.get(code))
                    .expect("text id positions lie inside their dictionary (verified)"),
            ),
        }
    }

    /// The internal id of the customer written `id` (a whole number, or a text id of a store
    /// that has them), `None` when the store has no such customer. Text ids are found by a
    /// binary search of the sorted ids; whole numbers need no search.
    pub fn internal_id(&self, id: &str) -> Option<CustomerId> {
        match self.text_ids() {
            None => id.parse().ok().map(CustomerId),
            Some(text) => text.sorted_position(id).map(|code| CustomerId(code.into())),
        }
    }

    /// The row of the customer written `id` ([`Store::internal_id`], then the index).
    pub fn row_of_external(&self, id: &str) -> Option<usize> {
        self.row_of(self.internal_id(id)?)
    }

    /// The numeric column `name`, or an error naming what is wrong with it.
    pub fn numeric(&self, name: &str) -> Result<&[f32]> {
        self.optional_numeric(name)?.ok_or_else(|| Error::Column {
            name: name.to_string(),
            message: "not in the store".to_string(),
        })
    }

    /// The numeric column `name`, `None` when absent, an error when it holds text.
    pub fn optional_numeric(&self, name: &str) -> Result<Option<&[f32]>> {
        match self.column(name) {
            None => Ok(None),
            Some(Column::F32(values)) => Ok(Some(values)),
            Some(_) => Err(Error::Column {
                name: name.to_string(),
                message: "is not a numeric column".to_string(),
            }),
        }
    }

    /// The row holding `id`, through the persisted index.
    pub fn row_of(&self, id: CustomerId) -> Option<usize> {
        id_index::lookup(self.id_slots(), self.ids(), id.0)
    }

    /// [`Store::row_of`] of every id in `ids`, into `rows` (cleared first): the probes of
    /// neighbouring ids overlap, several times faster than one `row_of` after another on a
    /// store larger than the cache (`cargo bench --bench store -- lookup`).
    pub fn rows_of(&self, ids: &[u64], rows: &mut Vec<Option<usize>>) {
        rows.clear();
        rows.resize(ids.len(), None);
        id_index::lookup_many(self.id_slots(), self.ids(), ids, rows);
    }

    fn id_slots(&self) -> &[u32] {
        bytemuck::try_cast_slice(self.section(self.header.id_index))
            .expect("id index is aligned and a whole number of u32 slots (validated at open)")
    }

    /// Checks every section's checksum, then every value's domain: numbers finite, retention
    /// in [0, 1], costs and counts >= 0, text codes inside their dictionary, ids unique and
    /// found through the index.
    pub fn verify(&self) -> Result<VerifyReport> {
        let sections = self.header.sections();
        for (label, section) in &sections {
            let found = format::checksum(self.section(*section));
            if found != section.checksum {
                return Err(self.corrupt(format!(
                    "{label}: checksum {found:016x} does not match the header's {:016x}",
                    section.checksum
                )));
            }
        }
        for meta in &self.header.columns {
            self.verify_values(meta)?;
        }
        if let Some(text) = self.text_ids() {
            let mut entries = text.iter();
            let mut previous = entries.next();
            for (position, entry) in entries.enumerate() {
                if previous >= Some(entry) {
                    return Err(self.corrupt(format!(
                        "text customer ids: entry {} is not above the one before it",
                        position + 1
                    )));
                }
                previous = Some(entry);
            }
        }
        let ids = self.ids();
        for (row, &id) in ids.iter().enumerate() {
            if self.row_of(CustomerId(id)) != Some(row) {
                return Err(self.corrupt(format!(
                    "row {row}: customer_id {id} is duplicated or missing from the id index"
                )));
            }
        }
        Ok(VerifyReport {
            sections: sections.len(),
            bytes_checked: sections.iter().map(|(_, s)| s.len).sum(),
        })
    }

    fn verify_values(&self, meta: &ColumnMeta) -> Result<()> {
        match self.view(meta) {
            Column::U64(ids) => match (
                self.text_ids(),
                ids.iter().position(|&id| id >= self.header.rows),
            ) {
                (Some(_), Some(row)) => Err(self.corrupt(format!(
                    "column `{}`, row {row}: position {} outside the {} text ids",
                    meta.name, ids[row], self.header.rows
                ))),
                _ => Ok(()),
            },
            Column::F32(values) => {
                let domain = Domain::of(&meta.name);
                match values
                    .iter()
                    .enumerate()
                    .find_map(|(row, &v)| domain.violation(v).map(|why| (row, v, why)))
                {
                    None => Ok(()),
                    Some((row, value, why)) => Err(self.corrupt(format!(
                        "column `{}`, row {row} (customer {}): {value} {why}",
                        meta.name,
                        self.describe_customer(row)
                    ))),
                }
            }
            Column::Text(text) => {
                let entries = text.dictionary.len() as u32;
                match text.codes.iter().position(|&code| code >= entries) {
                    None => Ok(()),
                    Some(row) => Err(self.corrupt(format!(
                        "column `{}`, row {row}: code {} outside its {entries}-entry dictionary",
                        meta.name, text.codes[row]
                    ))),
                }
            }
        }
    }

    /// Row `row`'s id for a message, even before the text ids were verified.
    fn describe_customer(&self, row: usize) -> String {
        let id = self.ids()[row];
        match self.text_ids() {
            None => id.to_string(),
            Some(text) => u32::try_from(id)
                .ok()
                .and_then(|code| text.get(code))
                .map_or_else(|| format!("#{id}"), str::to_string),
        }
    }

    fn corrupt(&self, message: String) -> Error {
        match &self.path {
            Some(path) => Error::CorruptStore(format!("{}: {message}", path.display())),
            None => Error::CorruptStore(message),
        }
    }
}

/// What [`Store::verify`] checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifyReport {
    /// Sections whose checksum matched.
    pub sections: usize,
    /// Bytes hashed.
    pub bytes_checked: u64,
}

/// Validates everything but column values and section checksums; returns the format version
/// and the header.
fn validate(bytes: &[u8]) -> Result<(u32, Header)> {
    let corrupt = |message: String| Error::CorruptStore(message);
    let preamble = format::decode_preamble(bytes)?;
    let header_end = PREAMBLE_BYTES + preamble.header_len;
    let header_bytes = bytes.get(PREAMBLE_BYTES..header_end).ok_or_else(|| {
        corrupt(format!(
            "file is {} bytes, too short for its {}-byte header",
            bytes.len(),
            preamble.header_len
        ))
    })?;
    let found = format::checksum(header_bytes);
    if found != preamble.header_checksum {
        return Err(corrupt(format!(
            "header checksum {found:016x} does not match the preamble's {:016x}",
            preamble.header_checksum
        )));
    }
    let header = format::decode_header(header_bytes)?;

    if header.rows > format::MAX_ROWS {
        return Err(corrupt(format!(
            "{} rows exceed the limit of {}",
            header.rows,
            format::MAX_ROWS
        )));
    }
    validate_columns(&header, preamble.version)?;

    let data_start = format::align_up(header_end as u64);
    let file_len = bytes.len() as u64;
    let mut extents = Vec::new();
    for (label, section) in header.sections() {
        if section.offset % format::SECTION_ALIGN as u64 != 0 {
            return Err(corrupt(format!(
                "{label}: offset {} is not {}-byte aligned",
                section.offset,
                format::SECTION_ALIGN
            )));
        }
        let end = section.offset.checked_add(section.len).ok_or_else(|| {
            corrupt(format!(
                "{label}: offset {} + length {} overflows",
                section.offset, section.len
            ))
        })?;
        if section.offset < data_start || end > file_len {
            return Err(corrupt(format!(
                "{label}: bytes {}..{end} lie outside the data region {data_start}..{file_len}",
                section.offset
            )));
        }
        extents.push((section.offset, end, label));
    }
    extents.sort_unstable();
    for pair in extents.windows(2) {
        let ((_, end, first), (start, _, second)) = (&pair[0], &pair[1]);
        if end > start {
            return Err(corrupt(format!("{first} overlaps {second}")));
        }
    }

    for meta in &header.columns {
        let expected = header
            .rows
            .checked_mul(meta.kind.element_bytes())
            .expect("rows <= MAX_ROWS, so rows * 8 fits in u64");
        if meta.data.len != expected {
            return Err(corrupt(format!(
                "column `{}`: {} bytes, expected {} rows x {} bytes = {expected}",
                meta.name,
                meta.data.len,
                header.rows,
                meta.kind.element_bytes()
            )));
        }
        if let Some(dictionary) = &meta.dictionary {
            validate_dictionary(bytes, &meta.name, dictionary)?;
        }
    }

    let slots = header.id_index.len / 4;
    if header.id_index.len % 4 != 0 || !slots.is_power_of_two() || slots <= header.rows {
        return Err(corrupt(format!(
            "id index of {} bytes is not a power-of-two number of u32 slots above {} rows",
            header.id_index.len, header.rows
        )));
    }
    let index = &bytes[header.id_index.offset as usize..][..header.id_index.len as usize];
    id_index::check_slots(index, header.rows).map_err(|why| corrupt(format!("id index: {why}")))?;
    Ok((preamble.version, header))
}

fn validate_columns(header: &Header, version: u32) -> Result<()> {
    let corrupt = |message: String| Error::CorruptStore(message);
    match header.columns.first() {
        Some(first) if first.name == ID_COLUMN && first.kind == ColumnKind::U64 => {}
        _ => {
            return Err(corrupt(format!(
                "the first column must be the u64 `{ID_COLUMN}`"
            )));
        }
    }
    for (position, meta) in header.columns.iter().enumerate() {
        if position > 0 && meta.kind == ColumnKind::U64 {
            return Err(corrupt(format!(
                "column `{}`: only `{ID_COLUMN}` is u64",
                meta.name
            )));
        }
        let text_ids = position == 0 && version >= 2;
        if !text_ids && (meta.kind == ColumnKind::Text) != meta.dictionary.is_some() {
            return Err(corrupt(format!(
                "column `{}`: a dictionary must accompany exactly the text columns",
                meta.name
            )));
        }
        if text_ids
            && let Some(dictionary) = &meta.dictionary
            && dictionary.entries != header.rows
        {
            return Err(corrupt(format!(
                "{} text customer ids for {} rows",
                dictionary.entries, header.rows
            )));
        }
        if header.columns[..position]
            .iter()
            .any(|earlier| earlier.name == meta.name)
        {
            return Err(corrupt(format!("column `{}` appears twice", meta.name)));
        }
    }
    Ok(())
}

/// Offsets start at 0, never decrease, end at the text's length, and cut it only at char
/// boundaries; the text is UTF-8. Runs over the dictionary once, not over the rows.
fn validate_dictionary(
    bytes: &[u8],
    name: &str,
    dictionary: &format::DictionaryMeta,
) -> Result<()> {
    let corrupt =
        |what: &str| Error::CorruptStore(format!("dictionary of column `{name}`: {what}"));
    let entries_plus_one = dictionary
        .entries
        .checked_add(1)
        .filter(|&n| dictionary.entries <= u64::from(u32::MAX) && n * 8 == dictionary.offsets.len)
        .ok_or_else(|| corrupt("offset section length does not match its entry count"))?;
    let section = |s: Section| &bytes[s.offset as usize..(s.offset + s.len) as usize];
    let offsets: &[u64] = bytemuck::try_cast_slice(section(dictionary.offsets))
        .map_err(|_| corrupt("offset section is not whole aligned u64s"))?;
    debug_assert_eq!(offsets.len() as u64, entries_plus_one);
    let text = std::str::from_utf8(section(dictionary.bytes))
        .map_err(|_| corrupt("text is not valid UTF-8"))?;
    if offsets.first() != Some(&0) || offsets.last() != Some(&(text.len() as u64)) {
        return Err(corrupt("offsets do not span the text"));
    }
    if offsets
        .windows(2)
        .any(|pair| pair[0] > pair[1] || !text.is_char_boundary(pair[1] as usize))
    {
        return Err(corrupt("offsets decrease or split a character"));
    }
    Ok(())
}
