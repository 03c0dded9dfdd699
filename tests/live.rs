//! Live events (src/live): events change lookups at once; a replay after a restart gives the
//! same state; compaction keeps every value and every event count; a damaged log is cut at a
//! torn tail and refused (or salvaged) when damaged in the middle; concurrent writers and
//! readers; and a real `crv serve --fsync always` killed with SIGKILL while clients send
//! numbered events keeps every acknowledged event exactly once.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crv::kernel::TierScheme;
use crv::live::event::{CustomerEvent, Event, SetValue};
use crv::live::{FsyncPolicy, Live, LiveOptions, compact};
use crv::{CustomerId, ScoreParams, Store, Table, Tier};
use serde_json::{Value, json};

mod common;
use common::purchase_valuation;

/// A store of `customers` generated customers (seed 11) in `dir`.
fn store_file(dir: &Path, customers: u64) -> PathBuf {
    let csv_path = dir.join("customers.csv");
    let store_path = dir.join("customers.crv");
    let csv = std::fs::File::create(&csv_path).unwrap();
    crv::synthetic::write_customers_csv(csv, customers, 11).unwrap();
    crv::store::import(&csv_path, &store_path, &mut |_| {}).unwrap();
    store_path
}

fn options(store: &Path, wal: &Path, salvage: bool) -> LiveOptions {
    LiveOptions {
        wal: wal.to_path_buf(),
        store_path: store.to_path_buf(),
        fsync: FsyncPolicy::Always,
        salvage,
        compact_bytes: None,
    }
}

fn table(store: &Path) -> Arc<Table> {
    let store = Arc::new(Store::open(store).unwrap());
    Arc::new(Table::score(store, ScoreParams::default(), TierScheme::default()).unwrap())
}

fn serve(store: &Path, wal: &Path) -> crv::Result<Arc<Live>> {
    Live::serve(table(store), options(store, wal, false)).map(|(live, _)| live)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap()
}

fn submit(runtime: &tokio::runtime::Runtime, live: &Arc<Live>, events: Vec<CustomerEvent>) -> u64 {
    runtime.block_on(live.submit(events)).unwrap()
}

fn set(customer_id: u64, column: &str, value: SetValue) -> CustomerEvent {
    CustomerEvent {
        customer_id,
        event: Event::Set {
            column: column.into(),
            value,
        },
    }
}

fn purchase(customer_id: u64, amount: f64) -> CustomerEvent {
    CustomerEvent {
        customer_id,
        event: Event::Purchase {
            amount,
            time: 1_700_000_000_000_000,
        },
    }
}

fn contact(customer_id: u64, campaign: &str) -> CustomerEvent {
    CustomerEvent {
        customer_id,
        event: Event::Contact {
            channel: "email".into(),
            campaign: campaign.into(),
            offer: "coupon".into(),
            time: 1_700_000_000_000_000,
        },
    }
}

const NEW_CUSTOMER: u64 = 9_000_000_001;

#[test]
fn events_change_lookups_replay_restores_them_and_compaction_keeps_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_file(dir.path(), 400);
    let wal = dir.path().join("wal");
    let runtime = runtime();
    let base = table(&store);
    let id = base.ids()[17];
    let before = base.crv()[17];
    // A customer whose text column a `set` changes (the others keep the store's texts).
    let renamed = base.ids()[18];
    let segment_of = |store: &Store, id: u64| -> String {
        let row = store.row_of(CustomerId(id)).unwrap();
        match store.column("segment") {
            Some(crv::store::Column::Text(text)) => text.value(row).unwrap().to_string(),
            _ => panic!("the generated store has a segment column"),
        }
    };
    let (segment, renamed_segment) = (
        segment_of(base.store(), id),
        segment_of(base.store(), renamed),
    );

    let live = serve(&store, &wal).unwrap();
    let events = vec![
        set(id, "margin", SetValue::Number(100_000.0)),
        contact(id, "spring"),
        CustomerEvent {
            customer_id: id,
            event: Event::Response {
                campaign: "spring".into(),
                offer: "coupon".into(),
                value: 30.0,
                time: 1_700_000_000_000_001,
            },
        },
        purchase(NEW_CUSTOMER, 12.5),
        set(NEW_CUSTOMER, "margin", SetValue::Number(50.0)),
        set(NEW_CUSTOMER, "retention", SetValue::Number(0.5)),
        set(renamed, "segment", SetValue::Text("Gold & co".into())),
        purchase(renamed, 3.0),
    ];
    live.check(&events).unwrap();
    assert_eq!(submit(&runtime, &live, events), 8);
    let score = live.score(id).expect("changed");
    assert!(score.crv > before && score.crv > 10_000.0, "{score:?}");
    assert_eq!(score.tier, Tier::A);
    let higher = base.crv().iter().filter(|&&crv| crv > score.crv).count();
    assert_eq!(score.rank as usize, 1 + higher);
    let created = live.score(NEW_CUSTOMER).expect("created");
    assert!(created.crv > 0.0, "{created:?}");
    let contacts = live.contacts(id);
    assert_eq!(contacts.len(), 2);
    assert!(
        contacts
            .iter()
            .all(|c| c.campaign == "spring" && c.offer == "coupon")
    );
    // A `set` the store cannot take is refused before it is logged.
    for (event, fragment) in [
        (set(id, "margin", SetValue::Text("abc".into())), "numeric"),
        (set(id, "retention", SetValue::Number(1.5)), "[0, 1]"),
        (
            set(id, "no_such_column", SetValue::Number(1.0)),
            "events[0].column: `no_such_column` is not a column",
        ),
        (
            set(id, "customer_id", SetValue::Number(1.0)),
            "events[0].column: `customer_id` is not a column",
        ),
    ] {
        let message = live.check(&[event]).unwrap_err().message;
        assert!(message.contains(fragment), "{message}");
    }
    let profile = live.profile(id).unwrap();
    let created_profile = live.profile(NEW_CUSTOMER).unwrap();
    assert_eq!(profile["events"]["count"], 3);
    assert_eq!(profile["columns"]["margin"], 100_000.0);
    assert_eq!(profile["columns"]["segment"], segment.as_str());
    assert_eq!(created_profile["events"]["count"], 3);
    assert_eq!(created_profile["columns"]["segment"], "");
    let renamed_profile = live.profile(renamed).unwrap();
    assert_eq!(renamed_profile["columns"]["segment"], "Gold & co");
    assert_ne!(renamed_segment, "Gold & co");
    live.close();
    drop(live);

    // A restart replays the log: the same state.
    let live = serve(&store, &wal).unwrap();
    assert_eq!(live.last_sequence(), 8);
    assert_eq!(live.score(id), Some(score));
    assert_eq!(live.score(NEW_CUSTOMER), Some(created));
    assert_eq!(live.profile(id).unwrap(), profile);
    assert_eq!(live.profile(NEW_CUSTOMER).unwrap(), created_profile);
    assert_eq!(live.profile(renamed).unwrap(), renamed_profile);
    live.close();
    drop(live);

    // Compaction: a new store holding the changes, the counts in the checkpoint.
    let report = compact_into(&store, &wal);
    assert_eq!((report.last_sequence, report.rows), (8, 401));
    let compacted = table(&store);
    compacted.store().verify().unwrap();
    // Columns are kept exactly; the table's CRV comes from the SIMD kernel, the live one from
    // the scalar specification: equal within the kernel's tolerance.
    let margin = compacted.store().numeric("margin").unwrap();
    let row = compacted.store().row_of(CustomerId(id)).unwrap();
    assert_eq!(margin[row], 100_000.0);
    assert!(close(compacted.crv()[row], score.crv));
    let row = compacted.store().row_of(CustomerId(NEW_CUSTOMER)).unwrap();
    assert_eq!(margin[row], 50.0);
    assert!(close(compacted.crv()[row], created.crv));
    assert_eq!(segment_of(compacted.store(), id), segment);
    assert_eq!(segment_of(compacted.store(), renamed), "Gold & co");
    assert_eq!(segment_of(compacted.store(), NEW_CUSTOMER), "");
    let live = serve(&store, &wal).unwrap();
    assert_eq!(live.last_sequence(), 8);
    assert_eq!(live.profile(id).unwrap(), profile);
    assert_eq!(live.profile(NEW_CUSTOMER).unwrap()["events"]["count"], 3);
    // Events after the compaction go on from its sequence.
    assert_eq!(submit(&runtime, &live, vec![purchase(id, 1.0)]), 9);
    live.close();
    drop(live);
    let live = serve(&store, &wal).unwrap();
    assert_eq!(live.profile(id).unwrap()["events"]["count"], 4);
    live.close();
}

/// Compacts the log `wal` into `store`, as `crv compact` does with the server stopped.
fn compact_into(store: &Path, wal: &Path) -> compact::CompactReport {
    let (live, _) = Live::for_compaction(
        Arc::new(Store::open(store).unwrap()),
        options(store, wal, false),
    )
    .unwrap();
    compact::compact(&live).unwrap()
}

/// Within the kernel's tolerance (the table's values come from the SIMD kernel, the live ones
/// from the scalar one over the same row).
fn close(a: f32, b: f32) -> bool {
    let (a, b) = (f64::from(a), f64::from(b));
    (a - b).abs()
        <= crv::kernel::crv::TOLERANCE_ABSOLUTE + crv::kernel::crv::TOLERANCE_RELATIVE * b.abs()
}

#[test]
fn a_purchase_changes_the_value_only_where_the_valuation_reads_purchase_histories() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_file(dir.path(), 300);
    let runtime = runtime();
    let base = table(&store);
    let (bought, set_too, contacted) = (base.ids()[5], base.ids()[6], base.ids()[7]);
    let number = |name: &str, id: u64| -> f32 {
        let row = base.store().row_of(CustomerId(id)).unwrap();
        base.store().numeric(name).unwrap()[row]
    };
    let events = || {
        vec![
            purchase(bought, 40.0),
            purchase(set_too, 10.0),
            set(set_too, "margin", SetValue::Number(100_000.0)),
            purchase(bought, 20.0),
            contact(contacted, "spring"),
        ]
    };

    // Margins and retention: a purchase changes the purchase history, not the value (the
    // served table's stands); a margin does.
    let wal = dir.path().join("wal-retention");
    let live = serve(&store, &wal).unwrap();
    assert_eq!(submit(&runtime, &live, events()), 5);
    assert_eq!(live.score(bought), None);
    assert_eq!(live.score(contacted), None);
    let changed = live
        .score(set_too)
        .expect("a margin is an input of the value");
    assert!(changed.crv > table_crv(&base, set_too), "{changed:?}");
    let profile = live.profile(bought).unwrap();
    let (frequency, mean) = (
        number("frequency", bought),
        number("monetary_value", bought),
    );
    let columns = &profile["columns"];
    let json = crv::campaign::report::f32_json;
    assert_eq!(columns["frequency"], json(frequency + 2.0));
    assert_eq!(columns["recency"], json(number("age", bought)));
    // The running mean of the repeat purchases, rounded once.
    let after_two = ((f64::from(mean) * f64::from(frequency) + 40.0 + 20.0)
        / (f64::from(frequency) + 2.0)) as f32;
    assert_eq!(columns["monetary_value"], json(after_two));
    assert_eq!(columns["margin"], json(number("margin", bought)));
    live.close();
    drop(live);
    let live = serve(&store, &wal).unwrap();
    assert_eq!(live.score(bought), None);
    assert_eq!(live.score(set_too), Some(changed));
    assert_eq!(live.profile(bought).unwrap(), profile);
    live.close();
    drop(live);

    // A purchase model: every purchase changes the value and the outlook, at once and after
    // a replay (valued once, at its end) alike.
    let modelled = || {
        let store = Arc::new(Store::open(&store).unwrap());
        let params = ScoreParams::default();
        let table = Table::valued(store, params, TierScheme::default(), purchase_valuation());
        Arc::new(table.unwrap())
    };
    let wal = dir.path().join("wal-model");
    let (live, _) = Live::serve(modelled(), options(&store, &wal, false)).unwrap();
    assert_eq!(submit(&runtime, &live, events()), 5);
    let scores: Vec<_> = [bought, set_too]
        .iter()
        .map(|&id| live.score(id).expect("a purchase changes the value"))
        .collect();
    assert!(
        scores.iter().all(|score| score.outlook.is_some()),
        "{scores:?}"
    );
    assert_eq!(live.score(contacted), None);
    live.close();
    drop(live);
    let (live, _) = Live::serve(modelled(), options(&store, &wal, false)).unwrap();
    for (&id, score) in [bought, set_too].iter().zip(&scores) {
        assert_eq!(live.score(id).as_ref(), Some(score), "customer {id}");
    }
    live.close();
    drop(live);
    // The store these events make, valued afresh by the model: the same values.
    compact_into(&store, &wal);
    let compacted = modelled();
    for (&id, score) in [bought, set_too].iter().zip(&scores) {
        let row = compacted.store().row_of(CustomerId(id)).unwrap();
        assert!(
            close(compacted.crv()[row], score.crv),
            "customer {id}: {score:?}"
        );
        let outlook = compacted.outlook().unwrap();
        let (p_alive, expected) = score.outlook.unwrap();
        assert!(
            close(outlook.p_alive[row], p_alive),
            "customer {id}: {score:?}"
        );
        assert!(
            close(outlook.expected_purchases[row], expected),
            "{score:?}"
        );
    }
}

/// Ten events, one per request, then closed: the log of `wal`.
fn ten_events(store: &Path, wal: &Path) -> Vec<u8> {
    let runtime = runtime();
    let live = serve(store, wal).unwrap();
    for amount in 1..=10 {
        submit(
            &runtime,
            &live,
            vec![purchase(NEW_CUSTOMER, f64::from(amount))],
        );
    }
    live.close();
    drop(live);
    let segment = crv::live::log::segments(wal).unwrap().remove(0).path;
    std::fs::read(segment).unwrap()
}

#[test]
fn a_log_left_with_its_zeros_ahead_replays_whole_and_a_clean_close_cuts_them() {
    // The segment as a crash leaves it (copied while the server runs): the records, then the
    // zeros the writer keeps written ahead. It replays every event without a warning; the
    // clean close of the server it was copied from leaves the records alone.
    let dir = tempfile::tempdir().unwrap();
    let store = store_file(dir.path(), 50);
    let (wal, crashed) = (dir.path().join("wal"), dir.path().join("crashed"));
    let runtime = runtime();
    let live = serve(&store, &wal).unwrap();
    for amount in 1..=10 {
        submit(
            &runtime,
            &live,
            vec![purchase(NEW_CUSTOMER, f64::from(amount))],
        );
    }
    let segment = crv::live::log::segments(&wal).unwrap().remove(0).path;
    let running = std::fs::read(&segment).unwrap();
    live.close();
    drop(live);
    let closed = std::fs::read(&segment).unwrap();
    assert!(
        running.len() as u64 >= closed.len() as u64 + crv::live::log::ROOM_BYTES / 2,
        "zeros written ahead while it ran: {} bytes, {} of records",
        running.len(),
        closed.len()
    );
    assert_eq!(&running[..closed.len()], &closed[..]);
    assert!(running[closed.len()..].iter().all(|&byte| byte == 0));

    std::fs::create_dir_all(&crashed).unwrap();
    std::fs::write(crashed.join(segment.file_name().unwrap()), &running).unwrap();
    let (live, report) = Live::serve(table(&store), options(&store, &crashed, false)).unwrap();
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    assert_eq!((report.replayed, live.last_sequence()), (10, 10));
    submit(&runtime, &live, vec![purchase(NEW_CUSTOMER, 11.0)]);
    live.close();
    drop(live);
    let (live, report) = Live::serve(table(&store), options(&store, &crashed, false)).unwrap();
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    assert_eq!(live.last_sequence(), 11);
    live.close();
}

#[test]
fn a_damaged_tail_is_cut_and_a_damaged_middle_is_refused_or_salvaged() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_file(dir.path(), 50);
    let wal = dir.path().join("wal");
    let bytes = ten_events(&store, &wal);
    let segment = crv::live::log::segments(&wal).unwrap().remove(0).path;
    let record = bytes.len() / 10;

    // Garbage appended, a record cut short, a flipped bit in the last record: the tail goes.
    for (damaged, kept) in [
        ([&bytes[..], b"\x13\x37\x00\x00garbage"].concat(), 10),
        (bytes[..bytes.len() - 5].to_vec(), 9),
        (
            {
                let mut flipped = bytes.clone();
                flipped[bytes.len() - 2] ^= 4;
                flipped
            },
            9,
        ),
    ] {
        std::fs::write(&segment, &damaged).unwrap();
        let (live, report) = Live::serve(table(&store), options(&store, &wal, false)).unwrap();
        assert_eq!(live.last_sequence(), kept);
        assert!(
            report.warnings[0].contains("torn or corrupt tail"),
            "{report:?}"
        );
        live.close();
        drop(live);
        assert_eq!(
            std::fs::metadata(&segment).unwrap().len(),
            (record * kept as usize) as u64
        );
        std::fs::write(&segment, &bytes).unwrap();
    }

    // A flipped bit in the fourth record: refused, or with --salvage the first three are kept.
    let mut flipped = bytes.clone();
    flipped[3 * record + 25] ^= 1;
    std::fs::write(&segment, &flipped).unwrap();
    let error = Live::serve(table(&store), options(&store, &wal, false)).unwrap_err();
    assert!(
        error.to_string().contains("corrupt in the middle"),
        "{error}"
    );
    assert!(error.to_string().contains("--salvage"), "{error}");
    let (live, report) = Live::serve(table(&store), options(&store, &wal, true)).unwrap();
    assert_eq!(live.last_sequence(), 3);
    assert!(report.warnings[0].contains("--salvage"), "{report:?}");
    assert_eq!(live.profile(NEW_CUSTOMER).unwrap()["events"]["count"], 3);
}

#[test]
fn concurrent_writers_and_readers_see_whole_events_and_replay_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_file(dir.path(), 200);
    let wal = dir.path().join("wal");
    let runtime = runtime();
    let base = table(&store);
    let ids: Vec<u64> = base.ids()[..5].to_vec();
    let live = serve(&store, &wal).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    const WRITERS: u64 = 4;
    const PER_WRITER: u64 = 150;
    std::thread::scope(|scope| {
        for _ in 0..2 {
            let (live, done, reads, ids, base) = (&live, &done, &reads, &ids, &base);
            scope.spawn(move || {
                let mut last = vec![0u64; ids.len()];
                while !done.load(Ordering::Relaxed) {
                    for (slot, &id) in ids.iter().enumerate() {
                        // Event counts only grow; the table a reader holds never changes.
                        let count = live.history(id).map_or(0, |h| h.events);
                        assert!(count >= last[slot]);
                        last[slot] = count;
                        assert_eq!(base.crv()[slot], table_crv(base, id));
                        reads.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
        let writers: Vec<_> = (0..WRITERS)
            .map(|writer| {
                let live = Arc::clone(&live);
                let ids = ids.clone();
                runtime.spawn(async move {
                    for n in 0..PER_WRITER {
                        let id = ids[((writer + n) % ids.len() as u64) as usize];
                        let event = if n % 3 == 0 {
                            set(id, "margin", SetValue::Number((writer * 1000 + n) as f64))
                        } else {
                            purchase(id, n as f64)
                        };
                        live.submit(vec![event]).await.unwrap();
                    }
                })
            })
            .collect();
        for writer in writers {
            runtime.block_on(writer).unwrap();
        }
        done.store(true, Ordering::Relaxed);
    });
    assert!(reads.load(Ordering::Relaxed) > 0);
    let total: u64 = ids.iter().map(|&id| live.history(id).unwrap().events).sum();
    assert_eq!(total, WRITERS * PER_WRITER);
    assert_eq!(live.last_sequence(), WRITERS * PER_WRITER);
    let scores: Vec<_> = ids.iter().map(|&id| live.score(id)).collect();
    let profiles: Vec<Value> = ids.iter().map(|&id| live.profile(id).unwrap()).collect();
    live.close();
    drop(live);
    let live = serve(&store, &wal).unwrap();
    assert_eq!(
        ids.iter().map(|&id| live.score(id)).collect::<Vec<_>>(),
        scores
    );
    assert_eq!(
        ids.iter()
            .map(|&id| live.profile(id).unwrap())
            .collect::<Vec<_>>(),
        profiles
    );
}

#[test]
fn a_changed_value_is_the_one_the_next_version_computes_bit_for_bit() {
    // Margins and retentions set on forty customers: each live value equals, to the bit, the
    // CRV of that customer in the version a retier publishes from the same state (the live
    // value is the served kernel over one row, not the scalar reference an ulp away).
    let dir = tempfile::tempdir().unwrap();
    let store = store_file(dir.path(), 300);
    let wal = dir.path().join("wal");
    let runtime = runtime();
    let base = table(&store);
    let live = serve(&store, &wal).unwrap();
    let ids: Vec<u64> = base.ids()[..40].to_vec();
    for (n, &id) in ids.iter().enumerate() {
        let event = if n % 2 == 0 {
            set(id, "margin", SetValue::Number(1000.0 + 137.3 * n as f64))
        } else {
            set(id, "retention", SetValue::Number(0.05 + 0.023 * n as f64))
        };
        submit(&runtime, &live, vec![event]);
    }
    let next = base
        .successor(Arc::new(compact::snapshot(&live).unwrap()))
        .unwrap();
    for &id in &ids {
        let live_crv = live.score(id).expect("a set changes the value").crv;
        let next_crv = table_crv(&next, id);
        assert_eq!(
            live_crv.to_bits(),
            next_crv.to_bits(),
            "customer {id}: {live_crv} vs {next_crv}"
        );
    }
    live.close();
}

#[test]
fn retier_publishes_the_store_as_events_left_it_and_answers_follow_it() {
    // A `set` that raises one customer's value and a purchase that leaves another's as it was
    // (margins and retention): before `POST /v1/admin/retier` the purchased customer is
    // answered from the served table at their row of the base store, after it from the
    // published snapshot, where the raised customer now ranks first and above them.
    let dir = tempfile::tempdir().unwrap();
    let store = store_file(dir.path(), 300);
    let wal = dir.path().join("wal");
    let token = "t0ken-for-retier";
    let base = table(&store);
    let (crv, rank) = (base.crv(), &base.tiers().rank);
    let at_rank = |wanted: u32| rank.iter().position(|&r| r == wanted).unwrap();
    let (bought_row, raised_row) = (at_rank(100), at_rank(250));
    assert_eq!(
        crv.iter().filter(|&&c| c == crv[bought_row]).count(),
        1,
        "a CRV no other customer has"
    );
    let (bought, raised) = (base.ids()[bought_row], base.ids()[raised_row]);
    let addr = free_addr();
    let _server = Server::start(&store, &wal, addr, token);
    let mut stream = TcpStream::connect(addr).unwrap();
    let mut send = |method: &str, path: &str, token: Option<&str>, body: &str| {
        let (status, answer) = exchange(&mut stream, method, path, token, body).unwrap();
        assert_eq!(status, 200, "{method} {path}: {answer}");
        answer
    };
    let f32_of = |value: &Value| value.as_f64().unwrap() as f32;

    let set = r#"{"events":[{"type":"set","column":"margin","value":100000}]}"#;
    let raised_crv = f32_of(
        &send(
            "POST",
            &format!("/v1/customers/{raised}/events"),
            Some(token),
            set,
        )["crv"],
    );
    assert!(raised_crv > crv.iter().copied().fold(f32::MIN, f32::max));
    let purchase = r#"{"events":[{"type":"purchase","amount":5.0,"time":"2026-11-30T10:00:00Z"}]}"#;
    let bought_path = format!("/v1/customers/{bought}/events");
    let answer = send("POST", &bought_path, Some(token), purchase);
    assert_eq!(f32_of(&answer["crv"]), crv[bought_row], "{answer}");
    let lookup = send("GET", &format!("/v1/customers/{bought}"), None, "");
    assert_eq!(
        (f32_of(&lookup["crv"]), &lookup["rank"]),
        (crv[bought_row], &json!(100))
    );

    let mut refused = TcpStream::connect(addr).unwrap();
    let (status, _) = exchange(&mut refused, "POST", "/v1/admin/retier", None, "").unwrap();
    assert_eq!(status, 401);
    let retiered = send("POST", "/v1/admin/retier", Some(token), "");
    assert_eq!(
        (&retiered["version"], &retiered["customers"]),
        (&json!(2), &json!(300))
    );

    let lookup = send("GET", &format!("/v1/customers/{raised}"), None, "");
    assert_eq!(
        (f32_of(&lookup["crv"]), &lookup["rank"]),
        (raised_crv, &json!(1))
    );
    assert_eq!(lookup["tier"], "A");
    let lookup = send("GET", &format!("/v1/customers/{bought}"), None, "");
    assert_eq!(
        (f32_of(&lookup["crv"]), &lookup["rank"]),
        (crv[bought_row], &json!(101))
    );
    let answer = send("POST", &bought_path, Some(token), purchase);
    assert_eq!(f32_of(&answer["crv"]), crv[bought_row], "{answer}");
    assert_eq!(answer["tier"], lookup["tier"]);
}

fn table_crv(table: &Table, id: u64) -> f32 {
    table.crv()[table.store().row_of(CustomerId(id)).unwrap()]
}

/// A `crv serve` child process.
struct Server {
    child: Child,
}

impl Server {
    fn start(store: &Path, wal: &Path, addr: SocketAddr, token: &str) -> Server {
        Server::start_with(store, wal, addr, token, &[])
    }

    /// The server with `extra` flags.
    fn start_with(
        store: &Path,
        wal: &Path,
        addr: SocketAddr,
        token: &str,
        extra: &[&str],
    ) -> Server {
        let child = Command::new(env!("CARGO_BIN_EXE_crv"))
            .args([
                "serve",
                store.to_str().unwrap(),
                "--addr",
                &addr.to_string(),
            ])
            .args(["--wal", wal.to_str().unwrap(), "--fsync", "always"])
            .args(extra)
            .env("CRV_TOKEN", token)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = Server { child };
        let started = Instant::now();
        while TcpStream::connect(addr).is_err() {
            assert!(started.elapsed() < Duration::from_secs(30), "no server");
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request on `stream` (keep-alive): status and body.
fn exchange(
    stream: &mut TcpStream,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> std::io::Result<(u16, Value)> {
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    // One write: a request whose body comes in a later segment than its head, answered
    // before its body is read (a 401), has its connection closed by hyper.
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: crv\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes())?;
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let status = head[9..12].parse().unwrap();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .map_or(0, |n| n.trim().parse().unwrap());
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body)?;
    Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
}

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn event_count(addr: SocketAddr, id: u64, token: &str) -> u64 {
    let mut stream = TcpStream::connect(addr).unwrap();
    let (status, body) = exchange(
        &mut stream,
        "GET",
        &format!("/v1/customers/{id}/profile"),
        Some(token),
        "",
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    body["events"]["count"].as_u64().unwrap()
}

#[test]
fn kill_9_loses_no_acknowledged_event_and_applies_none_twice() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_file(dir.path(), 300);
    let wal = dir.path().join("wal");
    let token = "t0ken-for-the-crash-test";
    let id = table(&store).ids()[42];
    let addr = free_addr();
    let purchase = r#"{"events":[{"type":"purchase","amount":1.0,"time":"2026-11-30T10:00:00Z"}]}"#;
    let path = format!("/v1/customers/{id}/events");

    let server = Server::start(&store, &wal, addr, token);
    let set = r#"{"events":[{"type":"set","column":"margin","value":100000}]}"#;
    // A 401 comes before the body is read, and closes its connection: one each.
    for wrong in [None, Some("wrong")] {
        let mut stream = TcpStream::connect(addr).unwrap();
        assert_eq!(
            exchange(&mut stream, "POST", &path, wrong, set).unwrap().0,
            401
        );
    }
    let mut stream = TcpStream::connect(addr).unwrap();
    let (status, body) = exchange(&mut stream, "POST", &path, Some(token), set).unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["tier"], "A");
    assert_eq!(body["sequence"], 1);
    let bad = r#"{"events":[{"type":"set","column":"margin","value":"abc"}]}"#;
    let (status, body) = exchange(&mut stream, "POST", &path, Some(token), bad).unwrap();
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_event")),
        "{body}"
    );
    let (status, body) =
        exchange(&mut stream, "GET", &format!("/v1/customers/{id}"), None, "").unwrap();
    assert_eq!((status, body["tier"].as_str()), (200, Some("A")), "{body}");
    drop(server);

    let base = 1;
    let (mut acked, mut sent) = (0u64, 0u64);
    for cycle in 0..3u64 {
        let mut server = Server::start(&store, &wal, addr, token);
        assert!(event_count(addr, id, token) >= base + acked);
        let mut stream = TcpStream::connect(addr).unwrap();
        let kill_at = Instant::now() + Duration::from_millis(150 + 120 * cycle);
        while Instant::now() < kill_at {
            sent += 1;
            match exchange(&mut stream, "POST", &path, Some(token), purchase) {
                Ok((200, _)) => acked += 1,
                other => panic!("event answered {other:?}"),
            }
        }
        // Killed between requests and with one in flight.
        sent += 1;
        let _ = write!(
            stream,
            "POST {path} HTTP/1.1\r\nHost: crv\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{purchase}",
            purchase.len()
        );
        server.child.kill().unwrap();
        server.child.wait().unwrap();
        drop(server);
        let server = Server::start(&store, &wal, addr, token);
        let count = event_count(addr, id, token);
        assert!(
            count >= base + acked,
            "cycle {cycle}: {acked} acknowledged, {} present",
            count - base
        );
        assert!(
            count <= base + sent,
            "cycle {cycle}: {} present, {sent} sent",
            count - base
        );
        drop(server);
    }
    assert!(acked > 0);
}

/// `crv serve` turns transparent huge pages off (a fresh 2 MiB page stalls the reactor for its
/// whole first touch), unless `--huge-pages` keeps them: the process's `THP_enabled` in /proc
/// says which.
#[test]
fn serving_turns_huge_pages_off_unless_asked_to_keep_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_file(dir.path(), 100);
    for (extra, expected) in [(&[][..], "0"), (&["--huge-pages"][..], "1")] {
        let wal = dir.path().join(format!("wal{}", extra.len()));
        let server = Server::start_with(&store, &wal, free_addr(), "token", extra);
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", server.child.id())).unwrap();
        let enabled = status
            .lines()
            .find_map(|line| line.strip_prefix("THP_enabled:"))
            .expect("Linux reports THP_enabled")
            .trim();
        assert_eq!(enabled, expected, "{extra:?}");
    }
}

/// Kill cycles of [`kill_9_during_compaction_and_rotation_keeps_every_event_once`]:
/// `CRV_CRASH_CYCLES` (3 by default; 100 or more by hand).
fn crash_cycles() -> u64 {
    std::env::var("CRV_CRASH_CYCLES")
        .ok()
        .and_then(|cycles| cycles.parse().ok())
        .unwrap_or(3)
}

#[test]
fn kill_9_during_compaction_and_rotation_keeps_every_event_once() {
    // `--compact-bytes 1`: the server compacts (new store file, checkpoint, new log segment,
    // old segment dropped) after every group of events, so most moments a kill can hit are
    // inside a compaction or a rotation. Four clients, one customer each, count what was
    // acknowledged and what was sent; after each restart every customer's event count must
    // lie between them.
    const CLIENTS: usize = 4;
    let dir = tempfile::tempdir().unwrap();
    let store = store_file(dir.path(), 200);
    let wal = dir.path().join("wal");
    let token = "t0ken-for-the-compaction-crash-test";
    let ids: Vec<u64> = table(&store).ids()[10..10 + CLIENTS].to_vec();
    let addr = free_addr();
    let extra = ["--compact-bytes", "1"];
    let purchase = r#"{"events":[{"type":"purchase","amount":2.5,"time":"2026-11-30T10:00:00Z"}]}"#;
    let acked: Arc<Vec<AtomicU64>> = Arc::new((0..CLIENTS).map(|_| AtomicU64::new(0)).collect());
    let sent: Arc<Vec<AtomicU64>> = Arc::new((0..CLIENTS).map(|_| AtomicU64::new(0)).collect());
    let mut rng_state = 0x2545_F491_4F6C_DD1Du64;
    let mut compactions_seen = 0;
    for cycle in 0..crash_cycles() {
        let mut server = Server::start_with(&store, &wal, addr, token, &extra);
        for (client, &id) in ids.iter().enumerate() {
            let count = event_count(addr, id, token);
            let (acked, sent) = (
                acked[client].load(Ordering::SeqCst),
                sent[client].load(Ordering::SeqCst),
            );
            assert!(
                (acked..=sent).contains(&count),
                "cycle {cycle}, customer {id}: {acked} acknowledged, {sent} sent, {count} present"
            );
        }
        let stop = Arc::new(AtomicBool::new(false));
        let clients: Vec<_> = ids
            .iter()
            .enumerate()
            .map(|(client, &id)| {
                let (acked, sent, stop) =
                    (Arc::clone(&acked), Arc::clone(&sent), Arc::clone(&stop));
                std::thread::spawn(move || {
                    let mut stream = TcpStream::connect(addr).unwrap();
                    let path = format!("/v1/customers/{id}/events");
                    while !stop.load(Ordering::SeqCst) {
                        sent[client].fetch_add(1, Ordering::SeqCst);
                        match exchange(&mut stream, "POST", &path, Some(token), purchase) {
                            Ok((200, _)) => {
                                acked[client].fetch_add(1, Ordering::SeqCst);
                            }
                            Ok(other) => panic!("event answered {other:?}"),
                            Err(_) => break,
                        }
                    }
                })
            })
            .collect();
        // xorshift: a kill 50-250 ms into the cycle.
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        std::thread::sleep(Duration::from_millis(50 + rng_state % 200));
        server.child.kill().unwrap();
        server.child.wait().unwrap();
        stop.store(true, Ordering::SeqCst);
        for client in clients {
            client.join().unwrap();
        }
        compactions_seen += std::fs::read_dir(&wal)
            .unwrap()
            .filter(|entry| {
                entry
                    .as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("checkpoint-")
            })
            .count();
    }
    let server = Server::start_with(&store, &wal, addr, token, &extra);
    for (client, &id) in ids.iter().enumerate() {
        let count = event_count(addr, id, token);
        let (acked, sent) = (
            acked[client].load(Ordering::SeqCst),
            sent[client].load(Ordering::SeqCst),
        );
        assert!(acked > 0, "customer {id}: nothing acknowledged");
        assert!(
            (acked..=sent).contains(&count),
            "customer {id}: {acked} acknowledged, {sent} sent, {count} present"
        );
    }
    drop(server);
    assert!(
        compactions_seen > 0,
        "no compaction ran: the test did not test it"
    );
    eprintln!(
        "{} kill -9 cycles under compaction: {} events acknowledged, {} sent, none lost or doubled",
        crash_cycles(),
        acked.iter().map(|n| n.load(Ordering::SeqCst)).sum::<u64>(),
        sent.iter().map(|n| n.load(Ordering::SeqCst)).sum::<u64>()
    );
}

#[test]
fn a_full_disk_answers_503_and_leaves_the_log_whole() {
    // The log on a 64 KiB tmpfs, mounted in a user and mount namespace of the server's own
    // (`unshare`, no root needed where unprivileged user namespaces are allowed): a real
    // ENOSPC from the kernel. Batches of purchases until the disk is full, then more; every
    // answer is 200 or 503, and after a clean stop the log, copied out of the namespace,
    // replays without damage to exactly the acknowledged events.
    let probe = Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount", "true"])
        .status();
    assert!(
        probe.is_ok_and(|status| status.success()),
        "this test needs `unshare --user --map-root-user --mount` (util-linux, unprivileged \
         user namespaces) to mount a small tmpfs for the log"
    );
    let dir = tempfile::tempdir().unwrap();
    let store = store_file(dir.path(), 100);
    let (wal, copy) = (dir.path().join("wal"), dir.path().join("copy"));
    std::fs::create_dir_all(&wal).unwrap();
    std::fs::create_dir_all(&copy).unwrap();
    let (pid_file, addr, token) = (dir.path().join("pid"), free_addr(), "t0ken-disk-full");
    let script = r#"set -e
mount -t tmpfs -o size=64k tmpfs "$1"
"$2" serve "$3" --addr "$4" --wal "$1" --fsync always &
echo $! > "$5"
wait $! || true
cp -a "$1"/. "$6"/"#;
    let mut namespace = Command::new("unshare")
        .args([
            "--user",
            "--map-root-user",
            "--mount",
            "sh",
            "-c",
            script,
            "sh",
        ])
        .arg(&wal)
        .arg(env!("CARGO_BIN_EXE_crv"))
        .arg(&store)
        .arg(addr.to_string())
        .arg(&pid_file)
        .arg(&copy)
        .env("CRV_TOKEN", token)
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while TcpStream::connect(addr).is_err() {
        assert!(started.elapsed() < Duration::from_secs(30), "no server");
        std::thread::sleep(Duration::from_millis(20));
    }
    let ids = table(&store).ids().to_vec();
    let batch = |first: usize, count: usize| {
        let events: Vec<String> = (first..first + count)
            .map(|i| {
                format!(
                    r#"{{"type":"purchase","customer_id":{},"amount":1.5,"time":"2026-11-30T10:00:00Z"}}"#,
                    ids[i % ids.len()]
                )
            })
            .collect();
        format!(r#"{{"events":[{}]}}"#, events.join(","))
    };
    let mut stream = TcpStream::connect(addr).unwrap();
    let (mut acked, mut refused, mut after_full_ok) = (0u64, 0u64, 0u64);
    for round in 0..60 {
        // Batches of 50 (about 2.4 KB of log), then single events once refused.
        let count = if refused == 0 { 50 } else { 1 };
        let (status, body) = exchange(
            &mut stream,
            "POST",
            "/v1/events",
            Some(token),
            &batch(round * 50, count),
        )
        .unwrap();
        match status {
            200 => {
                acked += count as u64;
                if refused > 0 {
                    after_full_ok += 1;
                }
            }
            503 => {
                assert_eq!(body["error"]["code"], "log_unavailable", "{body}");
                refused += 1;
            }
            other => panic!("an event on a full disk answered {other}: {body}"),
        }
    }
    assert!(
        refused > 0,
        "the 64 KiB log never filled ({acked} events acknowledged)"
    );
    assert!(acked > 0);
    // Lookups still answer.
    let (status, _) = exchange(
        &mut stream,
        "GET",
        &format!("/v1/customers/{}", ids[0]),
        None,
        "",
    )
    .unwrap();
    assert_eq!(status, 200);
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let killed = Command::new("kill")
        .args(["-TERM", pid.trim()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert!(namespace.wait().unwrap().success());
    let (live, report) =
        Live::serve(table(&store), options(&store, &copy, false)).expect("the log replays");
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    assert_eq!(
        report.replayed, acked,
        "{after_full_ok} accepted after the first 503"
    );
    assert_eq!(live.last_sequence(), acked);
    live.close();
}

#[test]
fn everysec_and_no_write_groups_on_the_caller_and_replay_them_all() {
    // Under `everysec` and `no` the groups are written by flush tasks on the runtime and
    // applied a slice at a time: many concurrent submitters of single events and of batches
    // (which straddle the slices), every event acknowledged once, numbered without gaps, a
    // request answered only once its own events are applied, and all of them there after a
    // restart.
    const TASKS: usize = 16;
    for fsync in [FsyncPolicy::EverySec, FsyncPolicy::No] {
        let dir = tempfile::tempdir().unwrap();
        let store = store_file(dir.path(), 160);
        let wal = dir.path().join("wal");
        let open = || {
            let options = LiveOptions {
                fsync,
                ..options(&store, &wal, false)
            };
            Live::serve(table(&store), options).unwrap()
        };
        let (live, _) = open();
        let ids = table(&store).ids().to_vec();
        let runtime = runtime();
        let tasks: Vec<_> = (0..TASKS)
            .map(|task| {
                let live = Arc::clone(&live);
                // Each task owns its customers, so it knows how many events each has.
                let own: Vec<u64> = ids.iter().copied().skip(task).step_by(TASKS).collect();
                runtime.spawn(async move {
                    let mut ranges = Vec::new();
                    let mut submitted = vec![0u64; own.len()];
                    for n in 0..20usize {
                        let size = if task % 2 == 0 { 1 } else { 37 };
                        let events: Vec<_> = (0..size)
                            .map(|k| {
                                let at = (n * size + k) % own.len();
                                submitted[at] += 1;
                                purchase(own[at], 1.0)
                            })
                            .collect();
                        let last = live.submit(events).await.unwrap();
                        ranges.push((last + 1 - size as u64, last));
                        for (at, &id) in own.iter().enumerate() {
                            let applied = live.history(id).map_or(0, |h| h.events);
                            assert_eq!(applied, submitted[at], "customer {id} when answered");
                        }
                    }
                    ranges
                })
            })
            .collect();
        let mut ranges: Vec<(u64, u64)> = tasks
            .into_iter()
            .flat_map(|task| runtime.block_on(task).unwrap())
            .collect();
        ranges.sort_unstable();
        let total = (TASKS as u64 / 2) * 20 * (1 + 37);
        let mut next = 1;
        for &(first, last) in &ranges {
            assert_eq!(
                first, next,
                "{fsync:?}: each request's events in one run, no gap"
            );
            next = last + 1;
        }
        assert_eq!(next, total + 1, "{fsync:?}");
        let counts: Vec<u64> = ids
            .iter()
            .map(|&id| live.history(id).map_or(0, |h| h.events))
            .collect();
        let scores: Vec<_> = ids.iter().map(|&id| live.score(id)).collect();
        live.close();
        drop(live);
        let (live, report) = open();
        assert_eq!(report.replayed, total, "{fsync:?}");
        let replayed: Vec<u64> = ids
            .iter()
            .map(|&id| live.history(id).map_or(0, |h| h.events))
            .collect();
        assert_eq!(replayed, counts);
        assert_eq!(
            ids.iter().map(|&id| live.score(id)).collect::<Vec<_>>(),
            scores
        );
        live.close();
    }
}
