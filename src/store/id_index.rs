//! The persisted id index: an open-addressing hash table of row numbers, written at import and
//! read in place, so looking up a customer costs one or two cache misses and no start-up work.
//! A lookup always compares the id stored in the row, so a corrupt index can only fail to find
//! a customer, never return the wrong one.

/// A slot holding no row.
pub const EMPTY_SLOT: u32 = u32::MAX;

/// Slots for `rows` customers: a power of two at a load factor of at most 0.7, where linear
/// probing averages under two probes per hit.
pub fn slot_count(rows: usize) -> usize {
    (rows.saturating_mul(10) / 7 + 1).next_power_of_two().max(8)
}

/// The splitmix64 finaliser: ids are often sequential or share low bits, so they are mixed
/// before masking.
fn hash(id: u64) -> u64 {
    let mut z = id;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Two rows share a customer id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DuplicateId {
    /// The id both rows carry.
    pub id: u64,
    /// The earlier row.
    pub first_row: usize,
    /// The later row.
    pub second_row: usize,
}

/// Rows whose probes [`build`] starts together: enough independent loads in flight to hide most
/// of a cache miss each (the table of 10 million customers is 64 MB, far beyond the cache).
pub const BUILD_ROUND: usize = 64;

/// Builds the table for `ids` (row `i` holds `ids[i]`), or names the first duplicate id.
///
/// Rows are inserted in order (so the table is the same as one insertion after another gives,
/// byte for byte), a round of [`BUILD_ROUND`] at a time: the round first reads every row's home
/// slot and the id of the row already there, loads that do not depend on each other, so their
/// cache misses overlap; the insertions that follow find those lines in the cache.
///
/// # Panics
/// If `ids.len()` exceeds `store::format::MAX_ROWS`; callers check the row count first.
pub fn build(ids: &[u64]) -> Result<Vec<u32>, DuplicateId> {
    build_in_rounds::<BUILD_ROUND>(ids)
}

/// [`build`] with rounds of `ROUND` rows; a round of one is one probe after another (the
/// baseline of the store bench).
pub fn build_in_rounds<const ROUND: usize>(ids: &[u64]) -> Result<Vec<u32>, DuplicateId> {
    assert!(
        ids.len() < EMPTY_SLOT as usize,
        "row count checked against MAX_ROWS before indexing"
    );
    let mut slots = vec![EMPTY_SLOT; slot_count(ids.len())];
    let mask = slots.len() - 1;
    for (round, round_ids) in ids.chunks(ROUND).enumerate() {
        let mut homes = [0usize; ROUND];
        let mut touched = 0u64;
        for (home, &id) in homes.iter_mut().zip(round_ids) {
            *home = hash(id) as usize & mask;
            if let Some(&occupant) = ids.get(slots[*home] as usize) {
                touched ^= occupant;
            }
        }
        // The loads above only warm the cache; keep the compiler from dropping them.
        std::hint::black_box(touched);
        for (offset, (&home, &id)) in homes.iter().zip(round_ids).enumerate() {
            let row = round * ROUND + offset;
            let mut slot = home;
            loop {
                match slots[slot] {
                    EMPTY_SLOT => {
                        slots[slot] = row as u32;
                        break;
                    }
                    other if ids[other as usize] == id => {
                        return Err(DuplicateId {
                            id,
                            first_row: other as usize,
                            second_row: row,
                        });
                    }
                    _ => slot = (slot + 1) & mask,
                }
            }
        }
    }
    Ok(slots)
}

/// The structural check a store gets at open, from the index's little-endian bytes alone
/// (any alignment): every occupied slot holds a row below `rows`, exactly `rows` slots are
/// occupied, and the rows held sum (and sum squared, wrapping) to those of `0..rows`. One
/// branch-free sequential pass; a table that holds every row once passes, and any one changed
/// slot fails. It reads no id, so it cannot tell whether a row sits where its id's probe
/// sequence reaches it, nor catch changes that cancel out ([`crate::store::Store::verify`]
/// checks both). The error names the first wrong slot.
pub fn check_slots(slot_bytes: &[u8], rows: u64) -> Result<(), String> {
    let (mut occupied, mut largest, mut sum, mut squares) = (0u64, 0u32, 0u64, 0u64);
    for bytes in slot_bytes.chunks_exact(4) {
        let row = u32::from_le_bytes(bytes.try_into().expect("chunks of 4 bytes"));
        let taken = u32::from(row != EMPTY_SLOT);
        let row = u64::from(row & taken.wrapping_neg());
        occupied += u64::from(taken);
        largest = largest.max(row as u32);
        sum = sum.wrapping_add(row);
        squares = squares.wrapping_add(row * row);
    }
    let n = u128::from(rows);
    let expected_sum = (n * n.saturating_sub(1) / 2) as u64;
    let expected_squares = (n.saturating_sub(1) * n * (2 * n).saturating_sub(1) / 6) as u64;
    let in_range = occupied == 0 || u64::from(largest) < rows;
    if occupied == rows && in_range && sum == expected_sum && squares == expected_squares {
        return Ok(());
    }
    Err(first_damaged_slot(slot_bytes, rows)
        .unwrap_or_else(|| format!("{occupied} occupied slots for {rows} rows")))
}

/// Names the first slot that holds a row out of range or a row an earlier slot holds (the slow
/// path of [`check_slots`], once it knows the table is damaged); `None` if there is none.
fn first_damaged_slot(slot_bytes: &[u8], rows: u64) -> Option<String> {
    let mut seen = vec![0u64; (rows as usize).div_ceil(64)];
    for (slot, bytes) in slot_bytes.chunks_exact(4).enumerate() {
        let row = u32::from_le_bytes(bytes.try_into().expect("chunks of 4 bytes"));
        if row == EMPTY_SLOT {
            continue;
        }
        if u64::from(row) >= rows {
            return Some(format!(
                "slot {slot} holds row {row}, but the store has {rows} rows"
            ));
        }
        let (word, bit) = (row as usize / 64, 1u64 << (row % 64));
        if seen[word] & bit != 0 {
            return Some(format!(
                "slot {slot} holds row {row}, which an earlier slot holds too"
            ));
        }
        seen[word] |= bit;
    }
    None
}

/// The row holding `id`, if any. `slots.len()` must be a power of two (checked at open); the
/// probe is bounded by the table size even if a corrupt table has no empty slot.
pub fn lookup(slots: &[u32], ids: &[u64], id: u64) -> Option<usize> {
    debug_assert!(slots.len().is_power_of_two());
    let mask = slots.len() - 1;
    let mut slot = hash(id) as usize & mask;
    for _ in 0..slots.len() {
        match slots[slot] {
            EMPTY_SLOT => return None,
            row => {
                if ids.get(row as usize) == Some(&id) {
                    return Some(row as usize);
                }
            }
        }
        slot = (slot + 1) & mask;
    }
    None
}

/// Ids resolved per round of [`lookup_many`]: enough independent loads in flight to hide most
/// of a cache miss each, few enough to keep the round's state in registers and L1.
const LOOKUP_ROUND: usize = 64;

/// [`lookup`] of every id in `wanted`, written to `rows` (same length). The probes of a round
/// of ids are interleaved: first every home slot is read, then every candidate row's id, so the
/// cache and TLB misses of different ids overlap instead of queueing behind each other. Ids
/// whose home slot holds another customer continue with [`lookup`].
///
/// # Panics
/// If `rows.len() != wanted.len()`.
pub fn lookup_many(slots: &[u32], ids: &[u64], wanted: &[u64], rows: &mut [Option<usize>]) {
    assert_eq!(rows.len(), wanted.len(), "one row per wanted id");
    debug_assert!(slots.len().is_power_of_two());
    let mask = slots.len() - 1;
    for (wanted, rows) in wanted
        .chunks(LOOKUP_ROUND)
        .zip(rows.chunks_mut(LOOKUP_ROUND))
    {
        let mut home = [EMPTY_SLOT; LOOKUP_ROUND];
        for (home, &id) in home.iter_mut().zip(wanted) {
            *home = slots[hash(id) as usize & mask];
        }
        for ((row, &home), &id) in rows.iter_mut().zip(&home).zip(wanted) {
            *row = match home {
                EMPTY_SLOT => None,
                candidate if ids.get(candidate as usize) == Some(&id) => Some(candidate as usize),
                _ => lookup(slots, ids, id),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn lookup_many_agrees_with_lookup_on_hits_misses_and_collisions() {
        let ids: Vec<u64> = (0..5_000u64).map(|i| i * 13 + 1).collect();
        let slots = build(&ids).unwrap();
        let wanted: Vec<u64> = (0..70_000u64).collect();
        let mut rows = vec![None; wanted.len()];
        lookup_many(&slots, &ids, &wanted, &mut rows);
        for (&id, &row) in wanted.iter().zip(&rows) {
            assert_eq!(row, lookup(&slots, &ids, id), "id {id}");
        }
        assert_eq!(rows.iter().flatten().count(), ids.len());
    }

    #[test]
    fn every_id_finds_its_row_and_absent_ids_find_none() {
        let ids: Vec<u64> = (0..10_000u64).map(|i| i * 7 + 3).collect();
        let slots = build(&ids).unwrap();
        assert!(slots.len().is_power_of_two());
        for (row, &id) in ids.iter().enumerate() {
            assert_eq!(lookup(&slots, &ids, id), Some(row));
        }
        assert_eq!(lookup(&slots, &ids, 1), None);
        assert_eq!(lookup(&slots, &ids, u64::MAX), None);
    }

    fn slot_bytes(slots: &[u32]) -> Vec<u8> {
        slots.iter().flat_map(|slot| slot.to_le_bytes()).collect()
    }

    #[test]
    fn check_slots_accepts_built_tables_and_names_every_kind_of_damage() {
        let ids: Vec<u64> = (0..1_000u64).map(|i| i * 31 + 7).collect();
        let slots = build(&ids).unwrap();
        assert_eq!(check_slots(&slot_bytes(&slots), 1_000), Ok(()));
        assert_eq!(check_slots(&slot_bytes(&[EMPTY_SLOT; 8]), 0), Ok(()));
        let occupied: Vec<usize> = (0..slots.len())
            .filter(|&s| slots[s] != EMPTY_SLOT)
            .collect();
        let empty = (0..slots.len()).find(|&s| slots[s] == EMPTY_SLOT).unwrap();
        let damaged = |change: &dyn Fn(&mut Vec<u32>)| {
            let mut slots = slots.clone();
            change(&mut slots);
            check_slots(&slot_bytes(&slots), 1_000).unwrap_err()
        };
        let message = damaged(&|s| s[occupied[3]] = 1_000);
        assert!(
            message.contains(&format!("slot {} holds row 1000", occupied[3])),
            "{message}"
        );
        let row = slots[occupied[0]];
        let message = damaged(&|s| s[occupied[5]] = row);
        assert!(
            message.contains("which an earlier slot holds too"),
            "{message}"
        );
        let message = damaged(&|s| s[occupied[5]] = EMPTY_SLOT);
        assert_eq!(message, "999 occupied slots for 1000 rows");
        let message = damaged(&|s| s[empty] = row);
        assert!(message.contains(&format!("holds row {row}")), "{message}");
        // Every single flipped byte is caught: a row changed into another is a duplicate or
        // out of range, an empty slot changed into a row likewise.
        let bytes = slot_bytes(&slots);
        for position in 0..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[position] ^= 0x10;
            assert!(check_slots(&flipped, 1_000).is_err(), "byte {position}");
        }
    }

    #[test]
    fn duplicate_id_names_both_rows() {
        let ids = [5, 9, 11, 9, 5];
        let duplicate = build(&ids).unwrap_err();
        assert_eq!(
            duplicate,
            DuplicateId {
                id: 9,
                first_row: 1,
                second_row: 3
            }
        );
    }

    #[test]
    fn corrupt_full_table_terminates_without_a_wrong_answer() {
        let ids = [1u64, 2, 3];
        let slots = vec![0u32; 8];
        assert_eq!(lookup(&slots, &ids, 2), None);
        assert_eq!(lookup(&slots, &ids, 1), Some(0));
        let out_of_range = vec![1000u32; 8];
        assert_eq!(lookup(&out_of_range, &ids, 1), None);

        let mut rows = vec![Some(7); 4];
        lookup_many(&slots, &ids, &[2, 1, 4, 1], &mut rows);
        assert_eq!(rows, [None, Some(0), None, Some(0)]);
        lookup_many(&out_of_range, &ids, &[1, 2], &mut rows[..2]);
        assert_eq!(rows[..2], [None, None]);
    }

    /// The table inserting one row after another, each probe on its own: what [`build`] must
    /// equal, slot for slot, duplicates included.
    fn build_one_at_a_time(ids: &[u64]) -> Result<Vec<u32>, DuplicateId> {
        let mut slots = vec![EMPTY_SLOT; slot_count(ids.len())];
        let mask = slots.len() - 1;
        for (row, &id) in ids.iter().enumerate() {
            let mut slot = hash(id) as usize & mask;
            while slots[slot] != EMPTY_SLOT {
                let other = slots[slot] as usize;
                if ids[other] == id {
                    return Err(DuplicateId {
                        id,
                        first_row: other,
                        second_row: row,
                    });
                }
                slot = (slot + 1) & mask;
            }
            slots[slot] = row as u32;
        }
        Ok(slots)
    }

    proptest! {
        #[test]
        fn build_equals_one_insertion_at_a_time(
            ids in proptest::collection::vec(0..3_000u64, 0..700),
        ) {
            // Ids from a small range: collisions and (often) duplicates, across rounds.
            prop_assert_eq!(build(&ids), build_one_at_a_time(&ids));
            let mut distinct = ids.clone();
            distinct.sort_unstable();
            distinct.dedup();
            prop_assert_eq!(build(&distinct), build_one_at_a_time(&distinct));
        }

        #[test]
        fn lookup_agrees_with_a_linear_scan(ids in proptest::collection::hash_set(any::<u64>(), 0..500), probe in any::<u64>()) {
            let ids: Vec<u64> = ids.into_iter().collect();
            let slots = build(&ids).unwrap();
            prop_assert_eq!(lookup(&slots, &ids, probe), ids.iter().position(|&id| id == probe));
            for (row, &id) in ids.iter().enumerate() {
                prop_assert_eq!(lookup(&slots, &ids, id), Some(row));
            }
        }

        #[test]
        fn lookup_many_agrees_with_lookup(
            ids in proptest::collection::hash_set(0..2_000u64, 0..1_000),
            wanted in proptest::collection::vec(0..2_000u64, 0..300),
        ) {
            let ids: Vec<u64> = ids.into_iter().collect();
            let slots = build(&ids).unwrap();
            let mut rows = vec![Some(usize::MAX); wanted.len()];
            lookup_many(&slots, &ids, &wanted, &mut rows);
            for (&id, &row) in wanted.iter().zip(&rows) {
                prop_assert_eq!(row, lookup(&slots, &ids, id), "id {}", id);
            }
        }
    }
}
