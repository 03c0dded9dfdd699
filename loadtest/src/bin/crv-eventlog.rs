//! `crv-eventlog`: writes an event log (`--wal DIR`) of `--events N` events over the customers
//! of a store, as `crv serve --wal DIR` would have logged them: the input of the start-up
//! replay measurement. Events are purchases (85%), contacts (8%), responses (4%) and margin
//! changes (3%), customers uniform over the store; the log is one segment from sequence 1 and
//! refuses a directory that already holds one.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use crv::live::event::{CustomerEvent, Event, SetValue};
use crv::live::log;
use crv_loadtest::workload::{Popularity, Workload};
use crv_loadtest::{Error, Result};

/// Microseconds since 1970 of 2026-11-30T00:00:00Z: the first event's time.
const FIRST_TIME: i64 = 1_795_996_800_000_000;

/// Writes an event log over a store's customers, for replay measurements.
#[derive(Debug, Parser)]
#[command(version, about)]
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

/// The `sequence`-th event of the log, for a customer picked from `workload`.
fn event(workload: &Workload, rng: &mut fastrand::Rng, sequence: u64) -> CustomerEvent {
    let customer_id = workload.pick(rng).id;
    let time = FIRST_TIME + sequence as i64 * 1_000;
    let campaign = || format!("campaign-{}", sequence % 12);
    let event = match rng.u32(0..100) {
        0..85 => Event::Purchase {
            amount: f64::from(rng.u32(100..50_000)) / 100.0,
            time,
        },
        85..93 => Event::Contact {
            channel: ["email", "phone", "mail"][rng.usize(0..3)].to_string(),
            campaign: campaign(),
            offer: "coupon".to_string(),
            time,
        },
        93..97 => Event::Response {
            campaign: campaign(),
            offer: "coupon".to_string(),
            value: f64::from(rng.u32(0..10_000)) / 100.0,
            time,
        },
        _ => Event::Set {
            column: "margin".to_string(),
            value: SetValue::Number(f64::from(rng.u32(0..100_000)) / 100.0),
        },
    };
    CustomerEvent { customer_id, event }
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
        log::encode_record(sequence, &event(&workload, &mut rng, sequence), &mut record);
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
