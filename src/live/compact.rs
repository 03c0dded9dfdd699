//! Compaction: the store and the overlay folded into a new store file, and the log restarted
//! after the last event folded in.
//!
//! Steps, each durable before the next: (1) the new store is written beside the old one
//! (`<store>.compacting`: temporary file, fsync, rename); (2) a checkpoint names the last
//! sequence folded in, the new store's identity and every customer's history; (3) the new
//! store is renamed over the old one; (4) a new, empty log segment starts after that sequence,
//! then older segments and checkpoints are deleted. A crash before (3) leaves the old store,
//! which the new checkpoint does not match, with the whole log: nothing is lost. A crash after
//! (3) leaves the new store and its checkpoint, and the log's events up to its sequence are
//! skipped at replay: nothing is applied twice. Cost: one pass over the store's columns, and
//! writing the new file.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use super::Live;
use super::checkpoint::{self, Checkpoint};
use super::log::{self, Appender};
use crate::error::{Error, Result};
use crate::store::format::ColumnKind;
use crate::store::writer::{self, ColumnValues, TableColumn};
use crate::store::{Column, Store, id_index};

/// What a compaction did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompactReport {
    /// The last event folded into the store.
    pub last_sequence: u64,
    /// Customers in the new store.
    pub rows: usize,
    /// Customers whose row events changed or created.
    pub customers: usize,
}

/// The store as events left it: every column of the base store, changed rows patched, new
/// customers appended in id order; with its id index.
pub fn materialize(live: &Live) -> Result<(writer::Table, Vec<u32>)> {
    let store = &live.base;
    let changed = live.changed_rows();
    let mut ids = store.ids().to_vec();
    let mut patches = Vec::new();
    let mut created = Vec::new();
    for (id, row) in &changed {
        match store.row_of(crate::CustomerId(*id)) {
            Some(at) => patches.push((at, row)),
            None => {
                ids.push(*id);
                created.push(row);
            }
        }
    }
    let text_ids: Option<Vec<String>> = store
        .text_ids()
        .map(|text| text.iter().map(str::to_string).collect());
    if text_ids.is_some() && !created.is_empty() {
        return Err(Error::invalid(
            "compact",
            "events created customers in a store with text ids, which takes events only for \
             its own customers",
        ));
    }
    let (mut number, mut text) = (0, 0);
    let mut columns = Vec::new();
    for meta in store.columns().iter().skip(1) {
        let values = match (meta.kind, store.column(&meta.name)) {
            (ColumnKind::F32, Some(Column::F32(base))) => {
                let mut values = base.to_vec();
                for (at, row) in &patches {
                    values[*at] = live.number(row, number);
                }
                values.extend(created.iter().map(|row| live.number(row, number)));
                number += 1;
                ColumnValues::F32(values)
            }
            (ColumnKind::Text, Some(Column::Text(base))) => {
                let mut dictionary: Vec<String> =
                    base.dictionary.iter().map(str::to_string).collect();
                let mut codes_of: HashMap<String, u32> = HashMap::new();
                let mut code = |value: &str, dictionary: &mut Vec<String>| -> u32 {
                    if let Some(&code) = codes_of.get(value) {
                        return code;
                    }
                    let code = base.dictionary.code_of(value).unwrap_or_else(|| {
                        dictionary.push(value.to_string());
                        (dictionary.len() - 1) as u32
                    });
                    codes_of.insert(value.to_string(), code);
                    code
                };
                let mut codes = base.codes.to_vec();
                // A row whose texts no event set keeps the store's (a new customer's are empty).
                for (at, row) in &patches {
                    if let Some(texts) = row.texts() {
                        codes[*at] = code(&texts[text], &mut dictionary);
                    }
                }
                for row in &created {
                    let value = row.texts().map_or("", |texts| &texts[text]);
                    codes.push(code(value, &mut dictionary));
                }
                text += 1;
                ColumnValues::Text { codes, dictionary }
            }
            _ => unreachable!(
                "column {} is numeric or text (validated at open)",
                meta.name
            ),
        };
        columns.push(TableColumn {
            name: meta.name.clone(),
            values,
        });
    }
    let slots = id_index::build(&ids).map_err(|duplicate| {
        Error::invalid(
            "compact",
            format!(
                "customer {} appears twice (rows {} and {})",
                duplicate.id, duplicate.first_row, duplicate.second_row
            ),
        )
    })?;
    Ok((
        writer::Table {
            ids,
            text_ids,
            columns,
        },
        slots,
    ))
}

/// Where the new store is written before it replaces `store`.
fn compacting_path(store: &Path) -> PathBuf {
    let mut name = store.file_name().unwrap_or_default().to_os_string();
    name.push(".compacting");
    store.with_file_name(name)
}

/// Steps (1) to (3): the new store in place of `live`'s store file, with its checkpoint.
fn fold(live: &Live) -> Result<CompactReport> {
    let store_path = &live.options.store_path;
    let last_sequence = live.last_sequence();
    let (table, slots) = materialize(live)?;
    let report = CompactReport {
        last_sequence,
        rows: table.ids.len(),
        customers: live.changed_rows().len(),
    };
    let temp = compacting_path(store_path);
    writer::write_file(&table, &slots, &temp)?;
    drop(table);
    let identity = Store::open(&temp)?.identity();
    checkpoint::write(
        &live.options.wal,
        &Checkpoint {
            last_sequence,
            store_identity: identity,
            customers: live.histories(),
        },
    )?;
    fs::rename(&temp, store_path).map_err(|e| Error::io(store_path, e))?;
    let parent = match store_path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    log::sync_dir(parent).map_err(|e| Error::io(parent, e))?;
    Ok(report)
}

/// Step (4): the segment after `last` (opened), then older segments and checkpoints deleted.
fn restart_log(dir: &Path, last: u64) -> Result<Appender> {
    let next = log::segment_path(dir, last + 1);
    let appender = Appender::open(&next, 0).map_err(|e| Error::io(&next, e))?;
    for segment in log::segments(dir).map_err(|e| Error::io(dir, e))? {
        if segment.first <= last && segment.path != next {
            fs::remove_file(&segment.path).map_err(|e| Error::io(&segment.path, e))?;
        }
    }
    for (sequence, path) in checkpoint::list(dir).map_err(|e| Error::io(dir, e))? {
        if sequence < last {
            fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
        }
    }
    log::sync_dir(dir).map_err(|e| Error::io(dir, e))?;
    Ok(appender)
}

/// `crv compact`: folds the replayed log of `live` (opened without a writer) into its store.
pub fn compact(live: &Live) -> Result<CompactReport> {
    let report = fold(live)?;
    restart_log(&live.options.wal, report.last_sequence)?;
    live.stats.record_compaction(0);
    Ok(report)
}

/// Compaction inside the server, holding the writer's segment once every logged event is
/// applied (writes wait meanwhile): `appender` moves to the new segment.
/// The new store is then handed to the server's hook ([`Live::on_compaction`]), which
/// publishes it as the next table version: tier cut points and ranks recomputed.
pub(super) fn compact_serving(live: &Live, appender: &mut Appender) -> Result<CompactReport> {
    let report = fold(live)?;
    *appender = restart_log(&live.options.wal, report.last_sequence)?;
    live.stats.record_compaction(0);
    if let Some(hook) = live.on_compaction.get() {
        let published = Store::open(&live.options.store_path)
            .and_then(|store| hook(std::sync::Arc::new(store)));
        if let Err(error) = published {
            tracing::warn!(%error, "the compacted store was not published; the served version stays");
        }
    }
    Ok(report)
}

/// The store as events left it, in memory: what `POST /v1/admin/retier` publishes.
pub fn snapshot(live: &Live) -> Result<Store> {
    let (table, slots) = materialize(live)?;
    let mut bytes = Vec::new();
    writer::encode(&table, &slots, &mut bytes)?;
    drop(table);
    Store::from_bytes(&bytes)
}
