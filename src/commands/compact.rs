//! `crv compact`: replays the event log of `--wal DIR` over the store, writes the compacted
//! store in its place and restarts the log after the last event (`crv::live::compact`).

use std::sync::Arc;
use std::time::Instant;

use crv::error::Result;
use crv::live::{FsyncPolicy, Live, LiveOptions, compact};
use serde_json::json;

use super::millis;
use crate::cli::CompactCommand;

/// Runs `crv compact`.
pub fn compact(args: &CompactCommand) -> Result<()> {
    let started = Instant::now();
    let store = Arc::new(crv::Store::open(&args.store)?);
    let options = LiveOptions {
        wal: args.wal.clone(),
        store_path: args.store.clone(),
        fsync: FsyncPolicy::Always,
        salvage: args.salvage,
        compact_bytes: None,
    };
    let (live, replay) = Live::for_compaction(store, options)?;
    for warning in &replay.warnings {
        eprintln!("warning: {warning}");
    }
    let report = compact::compact(&live)?;
    println!(
        "compacted {} events ({} replayed from the log) into {}: {} customers, {} changed or new; \
         the log restarts at event {}",
        report.last_sequence,
        replay.replayed,
        args.store.display(),
        report.rows,
        report.customers,
        report.last_sequence + 1
    );
    if args.json {
        println!(
            "{}",
            json!({
                "last_sequence": report.last_sequence,
                "replayed": replay.replayed,
                "customers": report.rows,
                "changed_customers": report.customers,
                "warnings": replay.warnings,
                "time_ms": millis(started.elapsed()),
            })
        );
    }
    Ok(())
}
