//! Reading a chunk of events' customers ahead of applying them.
//!
//! Applying events one after another waits on each customer's cache misses in turn: the
//! store's id index, the overlay's slot, the boxed state, the recent events, then on a
//! customer's first change one line per numeric column the event reads. Read for a chunk of
//! [`WARM_CHUNK`] events first, the misses of different customers overlap. Only what the chunk
//! will use is read: of the numeric columns of customers without a changed row, only those
//! their event reads (the value's inputs when it changes one of them and the value is
//! computed at once; nothing for a purchase under margins and retention, or for a contact).
//! The columns are only touched, a column at a time, so that the event's own reads then hit
//! the cache. What the read ahead found is a hint: [`ChunkReads`] answers for any event of the
//! chunk, probing what it skipped, so a state that changed in between (another event of the
//! chunk) is still right.

use super::customer::Row;
use super::event::Event;
use super::{Live, WARM_CHUNK};
use crate::CustomerId;
use crate::store::{Column, Store};

/// Fewest events worth reading ahead: below it the misses would only move here.
const MIN_WARM: usize = 4;

/// What the read-ahead of one chunk of events found, by the event's position in the chunk.
#[derive(Debug, Default)]
pub(super) struct ChunkReads {
    /// The store row of each position's customer (`None`: not in the store); positions past
    /// its end were not probed.
    rows: Vec<Option<usize>>,
    /// For each numeric column, the positions whose event reads it (bit `i`: position `i`;
    /// scratch of [`Live::read_ahead`]).
    readers: Vec<u64>,
}

impl ChunkReads {
    /// Finds the store rows of the chunk's customers `ids`, by one interleaved probe of
    /// `store`'s id index.
    pub(super) fn locate(&mut self, store: &Store, ids: &[u64]) {
        store.rows_of(ids, &mut self.rows);
    }

    /// Takes the store rows of the chunk's customers, found before.
    pub(super) fn set_rows(&mut self, rows: impl Iterator<Item = Option<usize>>) {
        self.rows.clear();
        self.rows.extend(rows);
    }

    /// The store row of the customer `id` of position `at`: the probe's answer, or a probe now.
    pub(super) fn stored_row(&self, live: &Live, at: usize, id: u64) -> Option<usize> {
        self.rows
            .get(at)
            .copied()
            .unwrap_or_else(|| live.base.row_of(CustomerId(id)))
    }
}

impl Live {
    /// Reads ahead what applying a chunk of events (at most [`WARM_CHUNK`]; `event(position)`
    /// the event; their customers' store rows in `reads`, by [`ChunkReads::locate`] or
    /// [`ChunkReads::set_rows`]) will use: the overlay states of the customers, under one read
    /// lock per stripe with plain loads (every lock's atomic orders all later loads after it);
    /// then, a column at a time, the numeric columns the events of customers without a changed
    /// row read ([`Live::columns_read`]; `values_now`: the value is computed as the event is
    /// applied).
    pub(super) fn read_ahead<'e>(
        &self,
        event: impl Fn(usize) -> &'e Event,
        values_now: bool,
        reads: &mut ChunkReads,
    ) {
        debug_assert!(reads.rows.len() <= WARM_CHUNK);
        let changed = self.warm(&reads.rows);
        reads.readers.clear();
        reads.readers.resize(self.schema.numbers.len(), 0);
        let mut any = false;
        for (at, row) in reads.rows.iter().enumerate() {
            if changed & (1 << at) == 0 && row.is_some() {
                self.columns_read(event(at), values_now, |column| {
                    reads.readers[column] |= 1 << at;
                    any = true;
                });
            }
        }
        if !any {
            return;
        }
        let mut touched = 0u32;
        for (column, &readers) in reads.readers.iter().enumerate() {
            if readers == 0 {
                continue;
            }
            let Column::F32(values) = self.base.column_at(self.schema.stored[column]) else {
                unreachable!("the schema's numeric columns are numeric");
            };
            for (at, row) in reads.rows.iter().enumerate() {
                if readers & (1 << at) != 0
                    && let Some(row) = *row
                {
                    touched ^= values[row].to_bits();
                }
            }
        }
        std::hint::black_box(touched);
    }

    /// Reads the overlay states of the store rows `rows` and the parts of them an event
    /// touches (the recent events' buffer, the row's numbers); returns the positions whose
    /// customer has a changed row, as a bit mask. The states of fewer than [`MIN_WARM`]
    /// customers are not read (none is known changed), nor those of customers the store
    /// lacks (their events read no column of it).
    ///
    /// Each customer's reads depend on one another (the overlay's slot, then the state it
    /// points to, then the buffers the state points to), so they are made in passes over the
    /// chunk, each pass's loads independent of one another: the processor keeps many of one
    /// pass's misses in flight, where one pass per customer waits on its chain of misses.
    fn warm(&self, rows: &[Option<usize>]) -> u64 {
        if rows.len() < MIN_WARM {
            return 0;
        }
        // The slots (one pass, inside `with_stored`), then the states: where their recent
        // events and rows are.
        self.overlay.with_stored(rows, |states| {
            let mut parts: [(&[u8], Option<&Row>); WARM_CHUNK] = [(&[], None); WARM_CHUNK];
            let mut changed = 0u64;
            for (at, state) in states.iter().enumerate() {
                if let Some(state) = state {
                    let row = state.row.as_ref().map(|(row, _)| row);
                    parts[at] = (state.history.recent.encoded(), row);
                    if row.is_some() {
                        changed |= 1 << at;
                    }
                }
            }
            // What they point to.
            let mut touched = 0u32;
            for (recent, row) in &parts[..states.len()] {
                touched ^= u32::from(recent.first().copied().unwrap_or(0));
                touched ^= row.map_or(0, Row::held_bits);
            }
            std::hint::black_box(touched);
            changed
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::event::{CustomerEvent, Event, SetValue};
    use super::super::{FsyncPolicy, Live, LiveOptions};
    use super::ChunkReads;
    use crate::store::{Store, csv, writer};

    /// A generated store of `customers` rows (`crv gen`'s columns: RFM, margins, texts).
    fn store(customers: u64) -> Arc<Store> {
        let mut text = Vec::new();
        crate::synthetic::write_customers_csv(&mut text, customers, 7).unwrap();
        let parsed = csv::read_csv(&text[..], "gen.csv", &mut |_| {}).unwrap();
        let mut bytes = Vec::new();
        writer::encode(&parsed.table, &parsed.id_slots, &mut bytes).unwrap();
        Arc::new(Store::from_bytes(&bytes).unwrap())
    }

    fn live(store: &Arc<Store>, dir: &std::path::Path) -> Arc<Live> {
        let options = LiveOptions {
            wal: dir.join("wal"),
            store_path: dir.join("customers.crv"),
            fsync: FsyncPolicy::No,
            salvage: false,
            compact_bytes: None,
        };
        Live::for_compaction(Arc::clone(store), options).unwrap().0
    }

    /// Events of every kind over a few store customers and a few new ones, so that chunks
    /// hold the same customer several times, contacts before a first purchase, `set`s of
    /// numeric and text columns, and customers the store lacks.
    fn events(ids: &[u64]) -> Vec<CustomerEvent> {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move |below: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % below
        };
        (0..500)
            .map(|i| {
                let customer_id = match next(5) {
                    0 => 9_000_000 + next(6),
                    _ => ids[next(40) as usize],
                };
                let time = 1_700_000_000_000_000 + i as i64 * 86_400_000_000;
                let event = match next(6) {
                    0 | 1 => Event::Purchase {
                        amount: next(10_000) as f64 / 100.0,
                        time,
                    },
                    2 => Event::Contact {
                        channel: "email".into(),
                        campaign: "spring".into(),
                        offer: "a".into(),
                        time,
                    },
                    3 => Event::Response {
                        campaign: "spring".into(),
                        offer: "a".into(),
                        value: 5.0,
                        time,
                    },
                    4 => Event::Set {
                        column: "margin".into(),
                        value: SetValue::Number(next(500) as f64),
                    },
                    _ => Event::Set {
                        column: "segment".into(),
                        value: SetValue::Text(format!("s{}", next(3))),
                    },
                };
                CustomerEvent { customer_id, event }
            })
            .collect()
    }

    #[test]
    fn events_read_ahead_in_chunks_change_what_one_at_a_time_changes() {
        let store = store(300);
        let ids = store.ids().to_vec();
        let events = events(&ids);
        let refs: Vec<&CustomerEvent> = events.iter().collect();
        let (chunked_dir, single_dir) =
            (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let chunked = live(&store, chunked_dir.path());
        // Groups of every length around the read-ahead's chunk and its minimum.
        let mut first = 0;
        for length in [1, 3, 4, 5, 63, 64, 65, 128, 200].into_iter().cycle() {
            if first == refs.len() {
                break;
            }
            let end = (first + length).min(refs.len());
            chunked.apply_group(first as u64 + 1, &refs[first..end]);
            first = end;
        }
        // The reference: each event applied alone, with nothing read ahead (every read made
        // when the event needs it).
        let single = live(&store, single_dir.path());
        for (at, event) in events.iter().enumerate() {
            let place = single.place_of(event.customer_id);
            single.overlay.update(place, |state| {
                let nothing = ChunkReads::default();
                if single.change(state, at as u64 + 1, event, &nothing, 0)
                    && let Some((row, value)) = &mut state.row
                {
                    *value = Some(single.value_of(row));
                }
            });
        }
        let rows = chunked.changed_rows();
        assert!(rows.len() > 40, "{} changed rows", rows.len());
        assert_eq!(rows, single.changed_rows());
        for event in &events {
            let id = event.customer_id;
            assert_eq!(chunked.history(id), single.history(id), "customer {id}");
            assert_eq!(chunked.score(id), single.score(id), "customer {id}");
        }
    }
}
