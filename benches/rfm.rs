//! `crv rfm` bench: a generated purchase log (10M lines, 1M customers, in memory) summarised by
//! `rfm::summarize`, against bare tokenizing of the same bytes with the `csv` crate (the floor
//! any CSV reader pays, one core) and against counting its line breaks (memory bandwidth); the
//! ratios come from the same run.

mod common;

use std::hint::black_box;
use std::time::{Duration, SystemTime};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use crv::rfm::{Options, summarize};

fn rfm(c: &mut Criterion) {
    let mut log = Vec::new();
    crv::synthetic::purchases::write_purchases_csv(&mut log, 10_000_000, 1_000_000, common::SEED)
        .expect("the log is generated in memory");
    let bytes = log.len() as u64;
    let started = SystemTime::now();
    let mut group = c.benchmark_group("rfm");
    group.sample_size(10).throughput(Throughput::Bytes(bytes));
    group.measurement_time(Duration::from_secs(20));
    group.bench_function("count_lines/10m", |b| {
        b.iter(|| black_box(memchr::memchr_iter(b'\n', &log).count()))
    });
    group.bench_function("csv_tokenize/10m", |b| {
        b.iter(|| {
            let mut reader = csv::Reader::from_reader(&log[..]);
            let mut record = csv::ByteRecord::new();
            let mut fields = 0usize;
            while reader.read_byte_record(&mut record).expect("csv reads") {
                fields += record.len();
            }
            black_box(fields)
        })
    });
    let options = Options::default();
    group.bench_function("summarize/10m", |b| {
        b.iter(|| {
            summarize(&log[..], "<log>", Some(bytes), &options)
                .expect("the log summarises")
                .rows
                .len()
        })
    });
    let spilled = Options {
        memory_budget: 0,
        ..Options::default()
    };
    group.bench_function("summarize_spilled/10m", |b| {
        b.iter(|| {
            summarize(&log[..], "<log>", Some(bytes), &spilled)
                .expect("the log summarises")
                .rows
                .len()
        })
    });
    group.finish();
    common::print_ratio("rfm", "summarize/10m", "csv_tokenize/10m", started);
    common::print_ratio("rfm", "summarize_spilled/10m", "summarize/10m", started);
    common::print_ratio("rfm", "summarize/10m", "count_lines/10m", started);
}

criterion_group!(benches, rfm);
criterion_main!(benches);
