//! `crv import`: finds the input (a CSV file, a Parquet or Arrow IPC file, a directory of part
//! files, or a glob), reads it with the CSV or the columnar reader, and writes the store
//! atomically. Nothing is written unless the whole input is good.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::columnar::{self, ColumnarFormat};
use super::csv::read_csv;
use super::writer;
use crate::error::{Error, Result};
use crate::limits::MAX_IMPORT_FILES;

/// What `crv import` produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportSummary {
    /// Customers imported.
    pub rows: u64,
    /// Columns stored, `customer_id` included.
    pub columns: usize,
    /// Size of the input files read.
    pub input_bytes: u64,
    /// Input files read.
    pub files: usize,
    /// Whether the customer ids are text.
    pub text_ids: bool,
    /// Size of the store written.
    pub store_bytes: u64,
}

/// What `crv import` reads besides the input.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// Store only these columns of a Parquet or Arrow input (`customer_id` among them);
    /// `None` stores every column.
    pub columns: Option<Vec<String>>,
}

/// Imports the input at `input` into a new store at `store_path`, every column of it. `progress`
/// is called now and then with the number of input bytes consumed so far.
pub fn import(
    input: &Path,
    store_path: &Path,
    progress: &mut dyn FnMut(u64),
) -> Result<ImportSummary> {
    import_with(input, store_path, &ImportOptions::default(), progress)
}

/// [`import`] with options.
pub fn import_with(
    input: &Path,
    store_path: &Path,
    options: &ImportOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<ImportSummary> {
    let files = input_files(input)?;
    let mut input_bytes = 0;
    for (path, _) in &files {
        input_bytes += std::fs::metadata(path)
            .map_err(|e| Error::io(path, e))?
            .len();
        if let (Ok(input), Ok(output)) = (path.canonicalize(), store_path.canonicalize())
            && input == output
        {
            return Err(Error::invalid(
                "output",
                format!(
                    "{} would replace an input being imported",
                    store_path.display()
                ),
            ));
        }
    }
    let (table, id_slots) = match files.as_slice() {
        [(path, None)] => {
            if options.columns.is_some() {
                return Err(Error::invalid(
                    "columns",
                    format!(
                        "{} is read as CSV; --columns chooses columns of Parquet and Arrow files",
                        path.display()
                    ),
                ));
            }
            let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
            let parsed = read_csv(file, &path.display().to_string(), progress)?;
            (parsed.table, parsed.id_slots)
        }
        _ => {
            let columnar: Vec<(PathBuf, ColumnarFormat)> = files
                .iter()
                .map(|(path, format)| match format {
                    Some(format) => Ok((path.clone(), *format)),
                    None => Err(Error::CsvFile {
                        file: path.display().to_string(),
                        message: "not a Parquet or Arrow IPC file, among the files of one import"
                            .to_string(),
                    }),
                })
                .collect::<Result<_>>()?;
            columnar::read_columnar(&columnar, options.columns.as_deref(), progress)?
        }
    };
    let store_bytes = writer::write_file(&table, &id_slots, store_path)?;
    Ok(ImportSummary {
        rows: table.ids.len() as u64,
        columns: table.columns.len() + 1,
        input_bytes,
        files: files.len(),
        text_ids: table.text_ids.is_some(),
        store_bytes,
    })
}

/// The files behind `input`, each with its columnar format (`None`: CSV): the file itself; the
/// files of a directory (not its subdirectories; names starting with `_` or `.`, such as
/// `_SUCCESS`, left out), sorted by name; or the files a glob pattern matches, sorted, when no
/// file has that name.
pub fn input_files(input: &Path) -> Result<Vec<(PathBuf, Option<ColumnarFormat>)>> {
    let paths = if input.is_dir() {
        let entries = std::fs::read_dir(input).map_err(|e| Error::io(input, e))?;
        let mut paths = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(input, e))?;
            let hidden = entry
                .file_name()
                .to_str()
                .is_some_and(|name| name.starts_with('_') || name.starts_with('.'));
            if !hidden
                && entry
                    .file_type()
                    .map_err(|e| Error::io(entry.path(), e))?
                    .is_file()
            {
                paths.push(entry.path());
            }
            if paths.len() > MAX_IMPORT_FILES {
                break;
            }
        }
        paths.sort();
        if paths.is_empty() {
            return Err(Error::io(
                input,
                std::io::Error::other("directory holds no part files"),
            ));
        }
        paths
    } else if !input.exists()
        && input
            .to_str()
            .is_some_and(|text| text.contains(['*', '?', '[']))
    {
        let pattern = input.to_str().expect("checked above");
        let matches =
            glob::glob(pattern).map_err(|e| Error::invalid("input", format!("{pattern}: {e}")))?;
        let mut paths = Vec::new();
        for path in matches {
            let path = path.map_err(|e| {
                Error::io(e.path().to_path_buf(), std::io::Error::other(e.to_string()))
            })?;
            if path.is_file() {
                paths.push(path);
            }
            if paths.len() > MAX_IMPORT_FILES {
                break;
            }
        }
        paths.sort();
        if paths.is_empty() {
            return Err(Error::io(
                input,
                std::io::Error::other("no file matches this pattern"),
            ));
        }
        paths
    } else {
        vec![input.to_path_buf()]
    };
    if paths.len() > MAX_IMPORT_FILES {
        return Err(Error::invalid(
            "input",
            format!("{}: more than {MAX_IMPORT_FILES} files", input.display()),
        ));
    }
    paths
        .into_iter()
        .map(|path| {
            let mut head = [0u8; 8];
            let mut file = std::fs::File::open(&path).map_err(|e| Error::io(&path, e))?;
            let read = file.read(&mut head).map_err(|e| Error::io(&path, e))?;
            let format = ColumnarFormat::sniff(&head[..read]);
            Ok((path, format))
        })
        .collect()
}
