//! The overlay: the state of every customer events changed, found by the customer's row in
//! the base store (which never changes while a live state serves it), or by id for a
//! customer the store lacks.
//!
//! Method. A store customer's state is one slot of an array indexed by their store row, split
//! into [`STRIPES`] stripes (row `r` is slot `r / STRIPES` of stripe `r % STRIPES`), each
//! behind its own lock. Applying an event finds the customer's store row anyway (to read the
//! store's columns), so the state is then one load away; a map keyed by id cost a hash, a
//! probe of its control bytes and of its slot, and on a customer's first change an insert
//! into a slot line not yet loaded: a tenth of a 10^7-event replay (`loadtest/README.md`).
//! The array costs 8 bytes a store row, allocated zeroed, so that a page of it takes memory
//! only once a customer of it changed (all at once before a replay that will touch nearly
//! every page, [`Overlay::back_slots`]). Customers created by events (not in the store) are in
//! a map keyed by id (aHash, keyed at random per process: ids come from clients, so a fixed
//! hash could be flooded with colliding ids).
//! A replay's threads each own whole stripes and shards ([`Overlay::part`]), so that each
//! customer's events are applied by one thread in log order and no lock is contended.
//! Cost: a lookup of a state is one uncontended lock and one load; iterating every state
//! (checkpoints, compaction, contact histories) reads the whole array, O(store rows). The
//! writer pays the store's id index (two misses) for every event, also of a customer who
//! already changed, where the map's probe cost about one and a half: its part of a batch is
//! 11% slower, the 10^7 start-up 1.1-1.3x faster (benches/README.md).

use std::sync::{PoisonError, RwLock, RwLockReadGuard};

use dashmap::DashMap;

use super::{CustomerState, WARM_CHUNK};

/// Stripes of the store rows' slots: enough that the writer and the lookups rarely meet on
/// one lock and that a replay's threads split them evenly.
pub(super) const STRIPES: usize = 64;

/// The created customers' hasher: aHash, keyed at random per process like the standard
/// library's SipHash, and about 5x cheaper for a `u64` key.
type CreatedHasher = ahash::RandomState;

/// Where a customer's state is: their store row, or their id for one the store lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Place {
    /// The customer's row in the base store.
    Stored(usize),
    /// The id of a customer the base store lacks.
    Created(u64),
}

impl Place {
    /// The place of customer `id`, whose store row is `row` (`None`: not in the store).
    pub(super) fn of(id: u64, row: Option<usize>) -> Place {
        row.map_or(Place::Created(id), Place::Stored)
    }
}

/// The states of one stripe of store rows, on its own cache lines (a replay's threads lock
/// neighbouring stripes at once).
#[derive(Debug)]
#[repr(align(128))]
struct Stripe(RwLock<Box<[Option<Box<CustomerState>>]>>);

/// Changed customers: store customers by row, created ones by id. Each state boxed: a slot
/// is 8 bytes.
#[derive(Debug)]
pub(super) struct Overlay {
    stripes: Box<[Stripe]>,
    created: DashMap<u64, Box<CustomerState>, CreatedHasher>,
}

impl Overlay {
    /// An empty overlay over a store of `rows` customers.
    pub(super) fn new(rows: usize) -> Overlay {
        let stripes = (0..STRIPES)
            .map(|stripe| {
                let slots = rows.saturating_sub(stripe).div_ceil(STRIPES);
                // Zeroed memory (`None` is a null pointer): its pages are only backed once
                // written.
                Stripe(RwLock::new(vec![None; slots].into_boxed_slice()))
            })
            .collect();
        Overlay {
            stripes,
            created: DashMap::with_hasher(CreatedHasher::new()),
        }
    }

    /// Bytes of the store rows' slots.
    pub(super) fn slot_bytes(&self) -> usize {
        self.stripes
            .iter()
            .map(|stripe| std::mem::size_of_val::<[_]>(&read(stripe)))
            .sum()
    }

    /// Backs every page of the store rows' slots with memory now, writable, in parallel; the
    /// slots keep their states. For a replay that will touch nearly every page of them: the
    /// read-ahead reads a slot before its event writes it, so a page first read is mapped to
    /// the kernel's shared zero page, and the write that follows is a second fault, which
    /// replaces that mapping and so interrupts the other replay thread to flush its TLB (4% of
    /// a 10^7-event start-up's samples, `loadtest/README.md`).
    pub(super) fn back_slots(&self) {
        use rayon::prelude::*;
        self.stripes.par_iter().for_each(|stripe| {
            populate_for_writing(&mut write(stripe));
        });
    }

    /// Which of `parts` replay threads owns `place`: whole stripes and shards, so that one
    /// thread applies each customer's events.
    pub(super) fn part(&self, place: Place, parts: usize) -> usize {
        match place {
            Place::Stored(row) => row % STRIPES % parts,
            Place::Created(id) => self.created.determine_map(&id) % parts,
        }
    }

    /// Calls `f` with the state at `place`, created empty if there is none yet.
    pub(super) fn update<R>(&self, place: Place, f: impl FnOnce(&mut CustomerState) -> R) -> R {
        match place {
            Place::Stored(row) => {
                let mut stripe = write(&self.stripes[row % STRIPES]);
                f(stripe[row / STRIPES].get_or_insert_default())
            }
            Place::Created(id) => f(&mut self.created.entry(id).or_default()),
        }
    }

    /// `f` of the state at `place`, `None` when there is none.
    pub(super) fn read<R>(&self, place: Place, f: impl FnOnce(&CustomerState) -> R) -> Option<R> {
        match place {
            Place::Stored(row) => read(&self.stripes[row % STRIPES])[row / STRIPES]
                .as_deref()
                .map(f),
            Place::Created(id) => self.created.get(&id).map(|state| f(&state)),
        }
    }

    /// Sets the state at `place`.
    pub(super) fn insert(&self, place: Place, state: Box<CustomerState>) {
        match place {
            Place::Stored(row) => write(&self.stripes[row % STRIPES])[row / STRIPES] = Some(state),
            Place::Created(id) => {
                self.created.insert(id, state);
            }
        }
    }

    /// Calls `f` with the states of the store rows `rows` (at most [`WARM_CHUNK`]; `None`
    /// for a row without a state or a position without a row), read under one read lock per
    /// stripe.
    pub(super) fn with_stored<R>(
        &self,
        rows: &[Option<usize>],
        f: impl FnOnce(&[Option<&CustomerState>]) -> R,
    ) -> R {
        let mut guards: [Option<Guard<'_>>; STRIPES] = [const { None }; STRIPES];
        for &row in rows.iter().flatten() {
            guards[row % STRIPES].get_or_insert_with(|| read(&self.stripes[row % STRIPES]));
        }
        let mut states = [None; WARM_CHUNK];
        for (state, &row) in states.iter_mut().zip(rows) {
            if let Some(row) = row {
                let stripe = guards[row % STRIPES].as_ref().expect("locked above");
                *state = stripe[row / STRIPES].as_deref();
            }
        }
        f(&states[..rows.len()])
    }

    /// Calls `f` with each customer's id and state: the store's customers (whose ids are
    /// `ids`, by row) by stripe, then the created ones. A stripe (shard) is read-locked while
    /// its states are visited.
    pub(super) fn for_each(&self, ids: &[u64], mut f: impl FnMut(u64, &CustomerState)) {
        for (index, stripe) in self.stripes.iter().enumerate() {
            for (slot, state) in read(stripe).iter().enumerate() {
                if let Some(state) = state {
                    f(ids[slot * STRIPES + index], state);
                }
            }
        }
        for entry in &self.created {
            f(*entry.key(), entry.value());
        }
    }

    /// Calls `f` with every state, in parallel.
    pub(super) fn par_for_each_mut(&self, f: impl Fn(&mut CustomerState) + Sync + Send) {
        use rayon::prelude::*;
        self.stripes.par_iter().for_each(|stripe| {
            write(stripe)
                .iter_mut()
                .flatten()
                .for_each(|state| f(state));
        });
        self.created
            .par_iter_mut()
            .for_each(|mut entry| f(entry.value_mut()));
    }

    /// How many customers have a state.
    pub(super) fn len(&self) -> usize {
        let stored: usize = self
            .stripes
            .iter()
            .map(|stripe| read(stripe).iter().flatten().count())
            .sum();
        stored + self.created.len()
    }
}

/// Maps the whole pages of `slots` writable at once (`madvise(MADV_POPULATE_WRITE)`, one call
/// instead of a fault a page), without changing a byte of them. Best effort: a kernel without
/// it (before Linux 5.14) leaves the pages to be faulted in as they are written.
#[allow(unsafe_code)]
fn populate_for_writing(slots: &mut [Option<Box<CustomerState>>]) {
    const PAGE: usize = 4096;
    let range = slots.as_mut_ptr_range();
    let start = (range.start as usize).next_multiple_of(PAGE);
    let end = range.end as usize / PAGE * PAGE;
    if start < end {
        // SAFETY: `start..end` lies inside `slots`, memory this thread holds exclusively (a
        // `&mut`), and page-aligned as madvise requires; MADV_POPULATE_WRITE only maps its
        // pages (faulting them in as a write would) and writes none of its bytes, so every
        // slot keeps its value.
        unsafe {
            libc::madvise(
                start as *mut libc::c_void,
                end - start,
                libc::MADV_POPULATE_WRITE,
            );
        }
    }
}

/// A read-locked stripe.
type Guard<'a> = RwLockReadGuard<'a, Box<[Option<Box<CustomerState>>]>>;

/// `stripe` read-locked. A lock poisoned by a panic inside an update is taken as it is, as
/// the map keyed by id that this replaced took its shards (it has no poisoning): lookups keep
/// answering from the states as they are.
fn read(stripe: &Stripe) -> Guard<'_> {
    stripe.0.read().unwrap_or_else(PoisonError::into_inner)
}

/// `stripe` write-locked (see [`read`] on poisoning).
fn write(stripe: &Stripe) -> std::sync::RwLockWriteGuard<'_, Box<[Option<Box<CustomerState>>]>> {
    stripe.0.write().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(events: u64) -> Box<CustomerState> {
        let mut state = CustomerState::default();
        state.history.events = events;
        Box::new(state)
    }

    #[test]
    fn backing_the_slots_keeps_every_state_and_empty_slot() {
        // Stripes of several pages each (a page holds 512 slots), so that whole pages lie
        // inside them; states on both sides of page boundaries.
        let rows = STRIPES * 2_000 + 17;
        let overlay = Overlay::new(rows);
        assert_eq!(overlay.slot_bytes(), rows * 8);
        let stored: Vec<usize> = (0..rows).step_by(97).chain([rows - 1]).collect();
        for &row in &stored {
            overlay.insert(Place::Stored(row), state(row as u64 + 1));
        }
        overlay.back_slots();
        for row in 0..rows {
            let found = overlay.read(Place::Stored(row), |state| state.history.events);
            let expected = stored.binary_search(&row).is_ok().then_some(row as u64 + 1);
            assert_eq!(found, expected, "row {row}");
        }
        overlay.update(Place::Stored(1), |state| state.history.events = 7);
        assert_eq!(
            overlay.read(Place::Stored(1), |s| s.history.events),
            Some(7)
        );
        assert_eq!(overlay.len(), stored.len() + 1);
    }

    #[test]
    fn states_are_found_where_they_were_put_and_visited_once_with_their_ids() {
        // Rows across every stripe and both ends of a short last stripe, and created ids.
        let rows = STRIPES * 3 + 5;
        let ids: Vec<u64> = (0..rows as u64).map(|row| 1_000 + row * 7).collect();
        let overlay = Overlay::new(rows);
        let stored: Vec<usize> = (0..rows).filter(|row| row % 3 != 1).collect();
        for &row in &stored {
            overlay.update(Place::Stored(row), |state| {
                state.history.events = row as u64
            });
        }
        overlay.insert(Place::Created(5), state(500));
        overlay.update(Place::Created(6), |state| state.history.events = 600);
        for row in 0..rows {
            let found = overlay.read(Place::Stored(row), |state| state.history.events);
            assert_eq!(found, (row % 3 != 1).then_some(row as u64), "row {row}");
        }
        assert_eq!(
            overlay.read(Place::Created(5), |s| s.history.events),
            Some(500)
        );
        assert_eq!(overlay.read(Place::Created(7), |s| s.history.events), None);
        assert_eq!(overlay.len(), stored.len() + 2);
        let mut visited = Vec::new();
        overlay.for_each(&ids, |id, state| visited.push((id, state.history.events)));
        visited.sort_unstable();
        let mut expected: Vec<(u64, u64)> =
            stored.iter().map(|&row| (ids[row], row as u64)).collect();
        expected.extend([(5, 500), (6, 600)]);
        expected.sort_unstable();
        assert_eq!(visited, expected);
        overlay.par_for_each_mut(|state| state.history.events += 1);
        let last = *stored.last().unwrap();
        assert_eq!(
            overlay.read(Place::Stored(last), |s| s.history.events),
            Some(last as u64 + 1)
        );
        let seen = overlay.with_stored(&[Some(0), None, Some(1), Some(last)], |states| {
            states
                .iter()
                .map(|state| state.map(|s| s.history.events))
                .collect::<Vec<_>>()
        });
        assert_eq!(seen, [Some(1), None, None, Some(last as u64 + 1)]);
    }

    #[test]
    fn each_place_has_one_owner_among_the_replay_threads() {
        let overlay = Overlay::new(1_000);
        for parts in 1..=5 {
            for row in 0..1_000 {
                let part = overlay.part(Place::Stored(row), parts);
                assert!(part < parts);
                // A whole stripe has one owner.
                assert_eq!(part, overlay.part(Place::Stored(row % STRIPES), parts));
            }
            for id in 0..100 {
                assert!(overlay.part(Place::Created(id), parts) < parts);
            }
        }
    }
}
