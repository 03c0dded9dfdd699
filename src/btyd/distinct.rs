//! Customers grouped by their distinct purchase histories: the one compression both the fit
//! (the likelihood is summed over distinct (frequency, recency, age) triples, weighted by their
//! counts) and the probabilistic CRV (the model is evaluated once per distinct triple) rest on.
//!
//! Method: fixed chunks of rows each find their own distinct histories in a hash map keyed by
//! the histories' bit patterns, on the rayon pool; the chunks' keys (far fewer than the rows)
//! are merged in chunk order, the distinct histories sorted by (frequency, age, recency), and
//! each chunk's rows mapped to their history's place in that order in parallel. The result is
//! a pure function of the rows, whatever the number of threads. Cost: one hash-map look-up per
//! row, one per distinct history of each chunk, a sort of the distinct histories.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use rayon::prelude::*;

use super::History;

/// Rows per chunk of the parallel first pass.
const CHUNK_ROWS: usize = 1 << 18;

/// A hasher for bit patterns of times and counts: FxHash's multiply-rotate per word, finished
/// by MurmurHash3's 64-bit mixer (times in sevenths of a week have periodic low mantissa bits,
/// which a multiply alone leaves in the low bits the table indexes by). Not DoS-resistant; the
/// keys are the user's own data.
#[derive(Default)]
pub struct MixHasher(u64);

impl Hasher for MixHasher {
    fn finish(&self) -> u64 {
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }

    fn write(&mut self, bytes: &[u8]) {
        // Arrays of words (the histories' keys) arrive as their bytes: one word at a time.
        for chunk in bytes.chunks(8) {
            let mut word = [0; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

/// A hash map keyed by bit patterns, with [`MixHasher`].
pub type BitsMap<K, V> = HashMap<K, V, BuildHasherDefault<MixHasher>>;

/// A history's key: its bit patterns in sort order (frequency, age, recency). Non-negative
/// floats order as their bits do, so sorting the keys sorts the histories; `+ 0.0` turns -0.0
/// into 0.0.
fn key(h: &History) -> [u64; 3] {
    [
        (h.frequency + 0.0).to_bits(),
        (h.age + 0.0).to_bits(),
        (h.recency + 0.0).to_bits(),
    ]
}

fn history_of([frequency, age, recency]: [u64; 3]) -> History {
    History {
        frequency: f64::from_bits(frequency),
        recency: f64::from_bits(recency),
        age: f64::from_bits(age),
    }
}

/// The distinct keys of one chunk of rows, in order of first appearance, how many rows have
/// each, and each row's index among them.
struct ChunkKeys {
    keys: Vec<[u64; 3]>,
    counts: Vec<u64>,
    row_key: Vec<u32>,
}

/// The customers' distinct histories, sorted by (frequency, age, recency), with how many
/// customers have each and each customer's history.
#[derive(Debug, Clone, PartialEq)]
pub struct DistinctHistories {
    /// The distinct histories, ascending by (frequency, age, recency).
    pub histories: Vec<History>,
    /// How many customers have each.
    pub counts: Vec<u64>,
    /// For each row, its history's index in `histories`.
    pub row_history: Vec<u32>,
}

impl DistinctHistories {
    /// The distinct histories of rows `0..rows`, `history(row)` giving each row's (already
    /// checked: finite, non-negative) history.
    ///
    /// # Panics
    ///
    /// If there are 2^32 rows or more.
    pub fn of(rows: usize, history: impl Fn(usize) -> History + Sync) -> DistinctHistories {
        assert!(u32::try_from(rows).is_ok(), "fewer than 2^32 rows");
        let chunks: Vec<ChunkKeys> = (0..rows.div_ceil(CHUNK_ROWS))
            .into_par_iter()
            .map(|chunk| {
                let start = chunk * CHUNK_ROWS;
                let end = (start + CHUNK_ROWS).min(rows);
                let mut index: BitsMap<[u64; 3], u32> = BitsMap::default();
                let mut keys = Vec::new();
                let mut counts = Vec::new();
                let row_key = (start..end)
                    .map(|row| {
                        let key = key(&history(row));
                        let local = *index.entry(key).or_insert_with(|| {
                            keys.push(key);
                            counts.push(0);
                            (keys.len() - 1) as u32 // at most CHUNK_ROWS
                        });
                        counts[local as usize] += 1;
                        local
                    })
                    .collect();
                ChunkKeys {
                    keys,
                    counts,
                    row_key,
                }
            })
            .collect();
        // Merge the chunks' keys in chunk order: each key's index in `keys` (first
        // appearance), and each chunk's local index to that.
        let mut index: BitsMap<[u64; 3], u32> = BitsMap::default();
        let mut keys: Vec<[u64; 3]> = Vec::new();
        let mut counts: Vec<u64> = Vec::new();
        let mut renumbering: Vec<Vec<u32>> = chunks
            .iter()
            .map(|chunk| {
                chunk
                    .keys
                    .iter()
                    .zip(&chunk.counts)
                    .map(|(&key, &count)| {
                        let global = *index.entry(key).or_insert_with(|| {
                            keys.push(key);
                            counts.push(0);
                            (keys.len() - 1) as u32 // at most `rows`
                        });
                        counts[global as usize] += count;
                        global
                    })
                    .collect()
            })
            .collect();
        // Sort: `order` lists the keys' indexes in key order, `rank` is its inverse.
        let mut order: Vec<u32> = (0..keys.len() as u32).collect();
        order.par_sort_unstable_by_key(|&i| keys[i as usize]);
        let mut rank = vec![0u32; keys.len()];
        for (place, &i) in order.iter().enumerate() {
            rank[i as usize] = place as u32;
        }
        for renumber in &mut renumbering {
            for global in renumber.iter_mut() {
                *global = rank[*global as usize];
            }
        }
        let mut row_history = vec![0u32; rows];
        row_history
            .par_chunks_mut(CHUNK_ROWS)
            .zip(&chunks)
            .zip(&renumbering)
            .for_each(|((out, chunk), renumber)| {
                for (slot, &local) in out.iter_mut().zip(&chunk.row_key) {
                    *slot = renumber[local as usize];
                }
            });
        DistinctHistories {
            histories: order
                .iter()
                .map(|&i| history_of(keys[i as usize]))
                .collect(),
            counts: order.iter().map(|&i| counts[i as usize]).collect(),
            row_history,
        }
    }
}

/// The distinct values of `values` (non-negative, finite), ascending, and each value's index
/// among them: a hash map from bit patterns, then a sort of the distinct values alone.
pub fn distinct_values(values: &[f64]) -> (Vec<f64>, Vec<u32>) {
    let mut index: BitsMap<u64, u32> = BitsMap::default();
    let mut distinct: Vec<f64> = Vec::new();
    let first: Vec<u32> = values
        .iter()
        .map(|&v| {
            let v = v + 0.0;
            *index.entry(v.to_bits()).or_insert_with(|| {
                distinct.push(v);
                u32::try_from(distinct.len() - 1).expect("fewer than 2^32 values")
            })
        })
        .collect();
    let mut order: Vec<u32> = (0..distinct.len() as u32).collect();
    order.sort_unstable_by(|&i, &j| distinct[i as usize].total_cmp(&distinct[j as usize]));
    let mut rank = vec![0u32; distinct.len()];
    for (place, &i) in order.iter().enumerate() {
        rank[i as usize] = place as u32;
    }
    let sorted = order.iter().map(|&i| distinct[i as usize]).collect();
    (sorted, first.iter().map(|&i| rank[i as usize]).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(frequency: f64, recency: f64, age: f64) -> History {
        History {
            frequency,
            recency,
            age,
        }
    }

    /// The specification: sort the rows' keys and count runs.
    fn by_sorting(rows: &[History]) -> DistinctHistories {
        let mut keys: Vec<[u64; 3]> = rows.iter().map(key).collect();
        keys.sort_unstable();
        let mut distinct: Vec<[u64; 3]> = keys.clone();
        distinct.dedup();
        let counts = distinct
            .iter()
            .map(|k| keys.iter().filter(|&x| x == k).count() as u64)
            .collect();
        let row_history = rows
            .iter()
            .map(|r| distinct.binary_search(&key(r)).unwrap() as u32)
            .collect();
        DistinctHistories {
            histories: distinct.into_iter().map(history_of).collect(),
            counts,
            row_history,
        }
    }

    #[test]
    fn sorted_counted_and_indexed_as_by_sorting() {
        let rows = [
            h(2.0, 3.0, 10.0),
            h(0.0, 0.0, 10.0),
            h(2.0, 3.0, 10.0),
            h(0.0, -0.0, 10.0),
            h(1.0, 5.0, 9.0),
        ];
        let distinct = DistinctHistories::of(rows.len(), |i| rows[i]);
        assert_eq!(
            distinct.histories,
            vec![h(0.0, 0.0, 10.0), h(1.0, 5.0, 9.0), h(2.0, 3.0, 10.0)]
        );
        assert_eq!(distinct.counts, vec![2, 1, 2]);
        assert_eq!(distinct.row_history, vec![2, 0, 2, 0, 1]);
        assert_eq!(distinct, by_sorting(&rows));
    }

    #[test]
    fn many_chunks_give_what_one_sort_gives() {
        // More rows than a chunk, histories repeating across chunks.
        let rows: Vec<History> = (0..(CHUNK_ROWS * 2 + 1234))
            .map(|i| {
                let x = (i * 7919 % 13) as f64;
                let age = 20.0 + (i % 5) as f64 / 7.0;
                h(
                    x,
                    if x == 0.0 {
                        0.0
                    } else {
                        age * (i % 11) as f64 / 11.0
                    },
                    age,
                )
            })
            .collect();
        let distinct = DistinctHistories::of(rows.len(), |i| rows[i]);
        let expected = by_sorting(&rows[..2000]);
        let head = DistinctHistories::of(2000, |i| rows[i]);
        assert_eq!(head, expected);
        assert_eq!(distinct.counts.iter().sum::<u64>(), rows.len() as u64);
        for (row, &i) in distinct.row_history.iter().enumerate() {
            assert_eq!(key(&distinct.histories[i as usize]), key(&rows[row]));
        }
        assert!(
            distinct
                .histories
                .windows(2)
                .all(|w| key(&w[0]) < key(&w[1]))
        );
    }

    #[test]
    fn distinct_values_are_sorted_and_indexed() {
        let (values, index) = distinct_values(&[3.0, 1.0, 3.0, 0.0, -0.0, 2.5]);
        assert_eq!(values, vec![0.0, 1.0, 2.5, 3.0]);
        assert_eq!(index, vec![3, 1, 3, 0, 0, 2]);
    }
}
