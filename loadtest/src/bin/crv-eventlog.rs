//! `crv-eventlog`: writes an event log (`--wal DIR`) of `--events N` events over the customers
//! of a store, as `crv serve --wal DIR` would have logged them: the input of the start-up
//! replay measurement. Events are `crv::synthetic::events` (purchases 85%, contacts 8%,
//! responses 4%, margin changes 3%), customers uniform over the store; the log is one segment
//! from sequence 1 and refuses a directory that already holds one.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use crv::live::log;
use crv_loadtest::workload::{Popularity, Workload};
use crv_loadtest::{Error, Result};

/// Writes an event log over a store's customers, for replay measurements.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The store whose customers the events are for.
    #[arg(long)]
    store: PathBuf,
    /// The log directory to write (created; must hold no log yet).
    #[arg(long)]
    wal: PathBuf,
    /// Events to write.
    #[arg(long, default_value_t = 10_000_000)]
    events: u64,
    /// Seed of the customers and amounts.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match write_log(&args) {
        Ok(bytes) => {
            eprintln!(
                "crv-eventlog: {} events, {bytes} bytes in {}",
                args.events,
                args.wal.display()
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("crv-eventlog: {error}");
            ExitCode::from(2)
        }
    }
}

/// Writes the log; returns its size in bytes.
fn write_log(args: &Args) -> Result<u64> {
    let io = |what: String| move |source: std::io::Error| Error::Io { what, source };
    let workload = Workload::from_store(&args.store, Popularity::Uniform, 0.0, args.seed)?;
    std::fs::create_dir_all(&args.wal).map_err(io(format!("creating {}", args.wal.display())))?;
    if !log::segments(&args.wal)
        .map_err(io(format!("reading {}", args.wal.display())))?
        .is_empty()
    {
        return Err(Error::Usage(format!(
            "{} already holds an event log",
            args.wal.display()
        )));
    }
    let path = log::segment_path(&args.wal, 1);
    let file = std::fs::File::create(&path).map_err(io(format!("creating {}", path.display())))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut rng = fastrand::Rng::with_seed(args.seed);
    let mut record = Vec::with_capacity(256);
    let mut bytes = 0u64;
    for sequence in 1..=args.events {
        record.clear();
        let customer_id = workload.pick(&mut rng).id;
        let event = crv::synthetic::events::event(args.seed, sequence, customer_id);
        log::encode_record(sequence, &event, &mut record);
        out.write_all(&record)
            .map_err(io(format!("writing {}", path.display())))?;
        bytes += record.len() as u64;
    }
    let file = out
        .into_inner()
        .map_err(|error| io(format!("writing {}", path.display()))(error.into_error()))?;
    file.sync_all()
        .map_err(io(format!("syncing {}", path.display())))?;
    Ok(bytes)
}
