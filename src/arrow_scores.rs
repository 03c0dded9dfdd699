//! Scores of customers held in Arrow memory (`crv.score` of a pyarrow, polars or pandas table),
//! computed from the table's own buffers: no store is built and no column is copied whole.
//!
//! The answer is by definition that of `crv import` followed by `crv score` on the same rows:
//! the same values, ids, errors. The common case is read in place:
//! - the CRV kernel ([`kernel::score_chunks`]) reads each 16 Ki-row chunk of the table's
//!   number columns converted to `f32` by the import's rule (`append_numbers`) into per-thread
//!   scratch space that stays in cache, and checks each value against its column's domain
//!   there, fused into the scoring pass (the known columns scoring does not read, `cost` or
//!   `frequency`, are checked the same way, as the import checks them);
//! - duplicate ids are found without an id index (nothing here looks a customer up): ids that
//!   ascend are distinct, others are sorted (a copy of the ids, in parallel) and compared;
//! - the answer's `customer_id` is the table's own id buffer (an `Int64` column is handed back
//!   as `UInt64` over the same memory), and the computed columns are moved into it.
//!
//! Whatever that path does not take (text or decimal ids, nulls, a column outside
//! docs/model.md's, a value outside its domain, a duplicate id, a CRV that is not finite, a
//! missing required column) goes the general way: the table is read into a store by
//! [`store_from_batches`], scored as a store is, and any error is the import's or the
//! scorer's own message, naming the row and the column. So the fast path only ever decides
//! that a table is well-formed; it never words an error.

use std::ops::Range;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{Array, ArrayRef, RecordBatch, UInt64Array};
use arrow_buffer::ScalarBuffer;
use arrow_schema::{ArrowError, DataType, Schema};
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::kernel::partition;
use crate::kernel::{self, CrvChunks, CrvInputs, TierScheme};
use crate::model::ScoreParams;
use crate::score_file::{scores_batch, scores_batch_of};
use crate::store::columnar::{append_numbers, is_number, store_from_batches};
use crate::store::format::{ID_COLUMN, MAX_ROWS};
use crate::store::schema::{self, Domain};
use crate::table::Table;

/// How errors name a table handed over in memory.
const SOURCE: &str = "<table>";

/// Every customer of `batches` (each of `schema`) scored with `params`, tiered by `scheme`: the
/// score rows of `crv score -o` (`customer_id, crv, tier, rank, percentile`) as one batch, in
/// the table's row order. Only `customer_id` and docs/model.md's number columns are read (and
/// checked, as `crv import` checks them); other columns cost nothing.
pub fn score_batches(
    schema: &Schema,
    batches: &[RecordBatch],
    params: ScoreParams,
    scheme: TierScheme,
) -> Result<RecordBatch> {
    params.validate()?;
    scheme.validate()?;
    let (schema, batches) = scored_columns(schema, batches)?;
    if let Some(scored) =
        InPlace::new(&schema, &batches).and_then(|table| table.score(&params, &scheme))
    {
        return Ok(scored);
    }
    let store = store_from_batches(&schema, &batches, SOURCE)?;
    scores_batch(&Table::score(Arc::new(store), params, scheme)?)
}

/// The columns scoring reads: `customer_id` and docs/model.md's number columns.
fn scored_columns(schema: &Schema, batches: &[RecordBatch]) -> Result<(Schema, Vec<RecordBatch>)> {
    let read: Vec<usize> = (0..schema.fields().len())
        .filter(|&i| {
            let name = schema.field(i).name();
            name == ID_COLUMN || schema::known(name).is_some()
        })
        .collect();
    let projection_error = |e: ArrowError| Error::invalid(SOURCE, e.to_string());
    let batches = batches
        .iter()
        .map(|batch| batch.project(&read))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(projection_error)?;
    Ok((schema.project(&read).map_err(projection_error)?, batches))
}

/// A known number column to check: its position in the schema and its domain.
#[derive(Debug, Clone, Copy)]
struct Checked {
    position: usize,
    domain: Domain,
}

/// A table the in-place path takes: `customer_id` and docs/model.md's number columns only,
/// each of a number type, `margin` and `retention` among them.
struct InPlace<'a> {
    batches: &'a [RecordBatch],
    /// The first row of each batch, then the number of rows.
    starts: Vec<usize>,
    id_position: usize,
    /// Every column but `customer_id`.
    checked: Vec<Checked>,
    /// Where in `checked` each CRV input is, in [`CRV_COLUMNS`]'s order.
    crv: [Option<usize>; CRV_COLUMNS.len()],
}

/// The columns the CRV formula reads, in the order of [`InPlace::crv`].
const CRV_COLUMNS: [&str; 7] = [
    schema::MARGIN,
    schema::RETENTION,
    schema::RETENTION_COST,
    schema::REFERRAL_VALUE,
    schema::COMPETENCE_VALUE,
    schema::DEVELOPMENT_COST,
    schema::ACQUISITION_COST,
];

impl<'a> InPlace<'a> {
    /// The table, when every column and every batch is of a kind the in-place path reads.
    fn new(schema: &Schema, batches: &'a [RecordBatch]) -> Option<InPlace<'a>> {
        let fields = schema.fields();
        let mut id_position = None;
        let mut checked = Vec::with_capacity(fields.len());
        let mut crv = [None; CRV_COLUMNS.len()];
        for (position, field) in fields.iter().enumerate() {
            let name = field.name().as_str();
            if fields[..position]
                .iter()
                .any(|before| before.name() == name)
            {
                return None;
            }
            if name == ID_COLUMN {
                field.data_type().is_integer().then_some(())?;
                id_position = Some(position);
                continue;
            }
            let known = schema::known(name)?;
            is_number(field.data_type()).then_some(())?;
            if let Some(input) = CRV_COLUMNS.iter().position(|&column| column == name) {
                crv[input] = Some(checked.len());
            }
            checked.push(Checked {
                position,
                domain: known.domain,
            });
        }
        let mut starts = Vec::with_capacity(batches.len() + 1);
        let mut rows = 0usize;
        for batch in batches {
            let same_columns = batch.num_columns() == fields.len()
                && batch
                    .columns()
                    .iter()
                    .zip(fields.iter())
                    .all(|(column, field)| column.data_type() == field.data_type());
            let no_nulls = batch
                .columns()
                .iter()
                .all(|column| column.null_count() == 0);
            (same_columns && no_nulls).then_some(())?;
            starts.push(rows);
            rows += batch.num_rows();
        }
        starts.push(rows);
        let required_present = crv[0].is_some() && crv[1].is_some();
        (required_present && rows > 0 && rows as u64 <= MAX_ROWS).then_some(())?;
        Some(InPlace {
            batches,
            starts,
            id_position: id_position?,
            checked,
            crv,
        })
    }

    fn rows(&self) -> usize {
        self.starts[self.batches.len()]
    }

    /// Scores, tiers and the score rows; `None` when some value needs the general path.
    fn score(&self, params: &ScoreParams, scheme: &TierScheme) -> Option<RecordBatch> {
        let ids = self.ids()?;
        if !all_distinct(ids.values()) {
            return None;
        }
        let mut crv = vec![0.0f32; self.rows()];
        let totals = kernel::score_chunks(self, params, &mut crv).ok()?;
        if totals.non_finite > 0 {
            return None;
        }
        let tiers = kernel::tiers(&crv, ids.values(), scheme);
        scores_batch_of(Arc::new(ids), crv, tiers).ok()
    }

    /// The customer ids as `UInt64`: the table's own buffer when one batch holds them as
    /// `UInt64`, or as `Int64` none of which is negative; otherwise gathered into a new array.
    /// `None` when some id is negative.
    fn ids(&self) -> Option<UInt64Array> {
        let columns: Vec<&ArrayRef> = self
            .batches
            .iter()
            .map(|batch| batch.column(self.id_position))
            .collect();
        match columns.as_slice() {
            [column] if *column.data_type() == DataType::UInt64 => {
                return Some(column.as_primitive::<UInt64Type>().clone());
            }
            [column] if *column.data_type() == DataType::Int64 => {
                let values = column.as_primitive::<Int64Type>().values();
                values.par_iter().all(|&id| id >= 0).then_some(())?;
                let same_bytes = ScalarBuffer::new(values.inner().clone(), 0, values.len());
                return Some(UInt64Array::new(same_bytes, None));
            }
            _ => {}
        }
        let mut ids = Vec::with_capacity(self.rows());
        for column in columns {
            let mut whole = Vec::with_capacity(column.len());
            append_ids(column.as_ref(), &mut whole)?;
            ids.extend_from_slice(&whole);
        }
        Some(UInt64Array::from(ids))
    }

    /// The batches holding `rows`, each with its rows within the batch.
    fn pieces(&self, rows: Range<usize>) -> impl Iterator<Item = (&'a RecordBatch, Range<usize>)> {
        let first = self.starts.partition_point(|&start| start <= rows.start) - 1;
        let starts = &self.starts;
        (first..self.batches.len())
            .take_while(move |&index| starts[index] < rows.end)
            .map(move |index| {
                let (start, end) = (starts[index], starts[index + 1]);
                let range = rows.start.max(start) - start..rows.end.min(end) - start;
                (&self.batches[index], range)
            })
            .filter(|(_, range)| !range.is_empty())
    }
}

impl CrvChunks for InPlace<'_> {
    /// One `f32` column per checked column, of one chunk's rows.
    type Scratch = Vec<Vec<f32>>;
    /// A value outside its column's domain: the general path words the error.
    type Error = ();

    fn chunk<'s>(
        &'s self,
        rows: Range<usize>,
        scratch: &'s mut Vec<Vec<f32>>,
    ) -> std::result::Result<CrvInputs<'s>, ()> {
        scratch.resize_with(self.checked.len(), Vec::new);
        for (column, values) in self.checked.iter().zip(scratch.iter_mut()) {
            values.clear();
            for (batch, range) in self.pieces(rows.clone()) {
                let part = batch
                    .column(column.position)
                    .slice(range.start, range.len());
                append_numbers(part.as_ref(), values);
            }
            if !column.domain.contains_all(values) {
                return Err(());
            }
        }
        let scratch: &'s Vec<Vec<f32>> = scratch;
        let column = |input: usize| self.crv[input].map(|at| scratch[at].as_slice());
        let required = |input: usize| column(input).expect("InPlace::new requires it");
        Ok(CrvInputs {
            retention_cost: column(2),
            referral_value: column(3),
            competence_value: column(4),
            development_cost: column(5),
            acquisition_cost: column(6),
            ..CrvInputs::new(required(0), required(1))
        })
    }
}

/// Appends the ids of an integer array as `u64`; `None` at the first negative one.
fn append_ids(array: &dyn Array, out: &mut Vec<u64>) -> Option<()> {
    macro_rules! each {
        ($type:ty) => {{
            for &id in array.as_primitive::<$type>().values().iter() {
                out.push(u64::try_from(id).ok()?);
            }
        }};
    }
    match array.data_type() {
        DataType::Int8 => each!(Int8Type),
        DataType::Int16 => each!(Int16Type),
        DataType::Int32 => each!(Int32Type),
        DataType::Int64 => each!(Int64Type),
        DataType::UInt8 => each!(UInt8Type),
        DataType::UInt16 => each!(UInt16Type),
        DataType::UInt32 => each!(UInt32Type),
        DataType::UInt64 => each!(UInt64Type),
        _ => return None,
    }
    Some(())
}

/// Ids per bucket of [`all_distinct`]'s hash partition: 32 KiB of ids, sorted in L1/L2.
const BUCKET_IDS: usize = 4096;

/// Parts of the ids that [`all_distinct`] scatters in parallel.
const SCATTER_PARTS: usize = 8;

/// Whether no two of `ids` are equal: at once when they ascend (as a store's own ids, or a
/// table sorted by id, do); otherwise every id goes to one of about `ids.len() / 4096`
/// buckets by the top bits of its Fibonacci hash (the id times 2^64 / golden ratio, which
/// spreads any set of distinct ids evenly: sequences, clusters, random values), equal ids to
/// the same bucket, and each bucket is sorted in cache and compared. The buckets are filled by
/// parallel parts, each owning its own slice of every bucket.
fn all_distinct(ids: &[u64]) -> bool {
    if ids.par_windows(2).all(|pair| pair[0] < pair[1]) {
        return true;
    }
    let bits = (ids.len() / BUCKET_IDS).max(1).ilog2();
    let buckets = 1usize << bits;
    let bucket_of = |&id: &u64| {
        let hash = id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        hash.checked_shr(64 - bits).unwrap_or(0) as usize
    };
    let rows = partition::part_rows(ids.len(), SCATTER_PARTS);
    let counts = partition::count_parts(ids, rows, buckets, bucket_of);
    let mut scattered = vec![0u64; ids.len()];
    partition::scatter_parts(ids, rows, &counts, bucket_of, |_, &id| id, &mut scattered);
    partition::split_lengths(&mut scattered, &partition::digit_totals(&counts))
        .into_par_iter()
        .all(|bucket| {
            bucket.sort_unstable();
            bucket.windows(2).all(|pair| pair[0] != pair[1])
        })
}

#[cfg(test)]
mod tests {
    use arrow_array::{Float32Array, Float64Array, Int32Array, Int64Array, StringArray};
    use arrow_schema::Field;
    use proptest::prelude::*;

    use super::*;
    use crate::model::Horizon;

    /// A table of `margin`, `retention` (and more known columns) over `ids`, in batches that
    /// end at `cuts`; numbers as `Float64` or `Float32`, ids as `id_type`.
    #[derive(Debug)]
    struct Case {
        ids: Vec<i64>,
        margin: Vec<f64>,
        retention: Vec<f64>,
        cost: Vec<f64>,
        acquisition_cost: Option<Vec<f64>>,
        /// A text attribute, which scoring does not read.
        segment: bool,
        floats32: bool,
        id_type: DataType,
        cuts: Vec<usize>,
    }

    impl Case {
        fn schema_and_batches(&self) -> (Schema, Vec<RecordBatch>) {
            let number = |values: &[f64]| -> ArrayRef {
                if self.floats32 {
                    Arc::new(values.iter().map(|&v| v as f32).collect::<Float32Array>())
                } else {
                    Arc::new(Float64Array::from(values.to_vec()))
                }
            };
            let ids: ArrayRef = match self.id_type {
                DataType::UInt64 => Arc::new(UInt64Array::from_iter_values(
                    self.ids.iter().map(|&id| id as u64),
                )),
                DataType::Int32 => Arc::new(Int32Array::from_iter_values(
                    self.ids.iter().map(|&id| id as i32),
                )),
                DataType::Utf8 => Arc::new(StringArray::from_iter_values(
                    self.ids.iter().map(|id| format!("C-{id}")),
                )),
                _ => Arc::new(Int64Array::from(self.ids.clone())),
            };
            let mut columns = vec![
                ("customer_id", ids),
                (schema::MARGIN, number(&self.margin)),
                (schema::RETENTION, number(&self.retention)),
                (schema::COST, number(&self.cost)),
            ];
            if let Some(values) = &self.acquisition_cost {
                columns.push((schema::ACQUISITION_COST, number(values)));
            }
            if self.segment {
                let names = (0..self.ids.len()).map(|row| ["gold", "silver"][row % 2]);
                columns.push(("segment", Arc::new(StringArray::from_iter_values(names))));
            }
            let fields: Vec<Field> = columns
                .iter()
                .map(|(name, array)| Field::new(*name, array.data_type().clone(), true))
                .collect();
            let schema = Schema::new(fields);
            let whole = RecordBatch::try_new(
                Arc::new(schema.clone()),
                columns.into_iter().map(|(_, array)| array).collect(),
            )
            .unwrap();
            let mut batches = Vec::new();
            let mut start = 0;
            for &end in self.cuts.iter().chain([&self.ids.len()]) {
                batches.push(whole.slice(start, end - start));
                start = end;
            }
            (schema, batches)
        }
    }

    /// The answer of the store path: `crv import` then `crv score`.
    fn through_a_store(
        schema: &Schema,
        batches: &[RecordBatch],
        params: ScoreParams,
    ) -> Result<RecordBatch> {
        let store = store_from_batches(schema, batches, SOURCE)?;
        scores_batch(&Table::score(
            Arc::new(store),
            params,
            TierScheme::default(),
        )?)
    }

    fn case(rows: usize) -> impl Strategy<Value = Case> {
        let numbers = |range: std::ops::Range<f64>| proptest::collection::vec(range, rows);
        (
            Just((0..rows as i64).collect::<Vec<_>>()).prop_shuffle(),
            numbers(-50.0..400.0),
            numbers(0.0..1.0),
            numbers(0.0..20.0),
            proptest::option::of(numbers(0.0..30.0)),
            any::<bool>(),
            any::<bool>(),
            prop_oneof![
                Just(DataType::Int64),
                Just(DataType::UInt64),
                Just(DataType::Int32)
            ],
            proptest::collection::vec(0..=rows, 0..4),
            any::<bool>(),
        )
            .prop_map(
                move |(
                    ids,
                    margin,
                    retention,
                    cost,
                    acquisition_cost,
                    segment,
                    floats32,
                    id_type,
                    mut cuts,
                    sorted,
                )| {
                    cuts.sort_unstable();
                    let ids = if sorted {
                        (0..rows as i64).map(|id| id * 7 + 3).collect()
                    } else {
                        ids
                    };
                    Case {
                        ids,
                        margin,
                        retention,
                        cost,
                        acquisition_cost,
                        segment,
                        floats32,
                        id_type,
                        cuts,
                    }
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Tables of every kind the in-place path takes (batches cut anywhere, a chunk across
        /// batches, ids sorted or not, as `Int64`, `UInt64` or `Int32`, numbers as `Float64` or
        /// `Float32`, optional columns or not, a text attribute or not) are scored in place,
        /// exactly as through a store of every column.
        #[test]
        fn in_place_scores_equal_the_store_path(case in (1usize..40_000).prop_flat_map(case)) {
            let (schema, batches) = case.schema_and_batches();
            let params = ScoreParams { discount: 0.1, horizon: Horizon::Periods(5) };
            let (read_schema, read_batches) = scored_columns(&schema, &batches).unwrap();
            let in_place = InPlace::new(&read_schema, &read_batches)
                .expect("a table the in-place path takes")
                .score(&params, &TierScheme::default())
                .expect("well-formed values");
            let stored = through_a_store(&schema, &batches, params).unwrap();
            prop_assert_eq!(&in_place, &stored);
            prop_assert_eq!(score_batches(&schema, &batches, params, TierScheme::default()).unwrap(), stored);
        }
    }

    proptest! {
        /// The hash partition finds a duplicate wherever it is, among ids of any spread.
        #[test]
        fn all_distinct_agrees_with_a_set(
            ids in proptest::collection::vec(any::<u64>(), 0..40_000),
            small in any::<bool>(),
            twin in proptest::option::of((any::<prop::sample::Index>(), any::<prop::sample::Index>())),
        ) {
            let mut ids: Vec<u64> = if small { ids.iter().map(|id| id % 50_000).collect() } else { ids };
            if let Some((from, to)) = twin && !ids.is_empty() {
                let value = ids[from.index(ids.len())];
                let at = to.index(ids.len());
                ids[at] = value;
            }
            let distinct = ids.iter().collect::<std::collections::HashSet<_>>().len() == ids.len();
            prop_assert_eq!(all_distinct(&ids), distinct);
        }
    }

    /// Tables the in-place path declines get the store path's answer: its result, or its error
    /// word for word.
    #[test]
    fn declined_tables_get_the_store_paths_answer() {
        let base = || Case {
            ids: (0..50_000).collect(),
            margin: (0..50_000).map(|i| f64::from(i % 97) - 10.0).collect(),
            retention: (0..50_000).map(|i| f64::from(i % 10) / 10.0).collect(),
            cost: vec![1.0; 50_000],
            acquisition_cost: None,
            segment: false,
            floats32: false,
            id_type: DataType::Int64,
            cuts: vec![20_000],
        };
        let params = ScoreParams {
            discount: 0.0,
            horizon: Horizon::Infinite,
        };
        let mut cases = Vec::new();
        let mut outside = base();
        outside.retention[33_000] = 1.5;
        cases.push(("retention outside [0, 1]", outside, false));
        let mut negative_cost = base();
        negative_cost.cost[49_999] = -1.0;
        cases.push(("a negative cost (not read to score)", negative_cost, false));
        let mut duplicate = base();
        duplicate.ids[40_000] = 17;
        cases.push(("a duplicate id", duplicate, false));
        let mut negative_id = base();
        negative_id.ids[3] = -3;
        cases.push(("a negative id", negative_id, false));
        let mut text = base();
        text.id_type = DataType::Utf8;
        cases.push(("text ids", text, true));
        let mut perpetual = base();
        perpetual.retention[1] = 1.0;
        perpetual.margin[1] = 5.0;
        cases.push(("an infinite CRV", perpetual, false));
        for (what, case, succeeds) in cases {
            let (schema, batches) = case.schema_and_batches();
            assert!(
                InPlace::new(&schema, &batches)
                    .and_then(|table| table.score(&params, &TierScheme::default()))
                    .is_none(),
                "{what}: declined"
            );
            let answer = score_batches(&schema, &batches, params, TierScheme::default());
            let stored = through_a_store(&schema, &batches, params);
            assert_eq!(answer.is_ok(), succeeds, "{what}: {answer:?}");
            match (answer, stored) {
                (Ok(answer), Ok(stored)) => assert_eq!(answer, stored, "{what}"),
                (Err(answer), Err(stored)) => {
                    assert_eq!(answer.to_string(), stored.to_string(), "{what}")
                }
                (answer, stored) => panic!("{what}: {answer:?} against {stored:?}"),
            }
        }
    }
}
