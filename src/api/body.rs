//! The response body of every endpoint: whole bytes for nearly all answers, and for a target
//! list asked for as CSV a stream that formats about [`CSV_CHUNK_BYTES`] of rows each time the
//! connection wants more. An enum rather than a boxed trait object, so the lookups pay no extra
//! allocation for the streaming variant they never use.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Frame, SizeHint};

use super::wire::CSV_CHUNK_BYTES;
use crate::campaign::Targets;
use crate::campaign::report::{TARGETS_CSV_HEADER, TargetColumns};
use crate::table::Table;

/// A response body.
#[derive(Debug)]
pub enum Body {
    /// The whole answer at once (`None`: empty, or already sent).
    Full(Option<Bytes>),
    /// A target list as CSV, formatted chunk by chunk (boxed: it is large, and only this rare
    /// answer pays for the allocation).
    Csv(Box<TargetsCsv>),
}

impl Body {
    /// A body of `bytes`.
    pub fn full(bytes: impl Into<Bytes>) -> Body {
        let bytes = bytes.into();
        Body::Full((!bytes.is_empty()).then_some(bytes))
    }

    /// The bytes of a whole body; `Err(chunks)` for a streamed one, chunk by chunk
    /// ([`TargetsCsv::next_chunk`]).
    pub fn into_whole(self) -> Result<Bytes, Box<TargetsCsv>> {
        match self {
            Body::Full(bytes) => Ok(bytes.unwrap_or_default()),
            Body::Csv(csv) => Err(csv),
        }
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            Body::Full(full) => Poll::Ready(full.take().map(|bytes| Ok(Frame::data(bytes)))),
            Body::Csv(csv) => Poll::Ready(csv.next_chunk().map(|chunk| Ok(Frame::data(chunk)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Full(full) => full.is_none(),
            Body::Csv(csv) => csv.is_done(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Full(full) => SizeHint::with_exact(full.as_ref().map_or(0, |b| b.len() as u64)),
            Body::Csv(_) => SizeHint::default(),
        }
    }
}

/// The header line and one `customer_id,crv,cost,tier` line per chosen customer in store order
/// (the rows of `crv select -o`), formatted lazily: a chunk costs tens of microseconds, so it
/// is written on the connection's task rather than sent to the rayon pool.
#[derive(Debug)]
pub struct TargetsCsv {
    table: Arc<Table>,
    targets: Targets,
    /// Index into the chosen rows of the next line to write; `None` before the header.
    next: Option<usize>,
}

impl TargetsCsv {
    /// The CSV of `targets`, selected on `table`. Its tiers should be there already (a chunk
    /// would compute the cut points otherwise, a pass over every customer).
    ///
    /// # Panics
    /// When a chunk is written, if the targets' cost column is not a numeric column of the
    /// table (the selection that made them checked it).
    pub fn new(table: Arc<Table>, targets: Targets) -> TargetsCsv {
        TargetsCsv {
            table,
            targets,
            next: None,
        }
    }

    fn is_done(&self) -> bool {
        self.next
            .is_some_and(|next| next >= self.targets.selection.rows.len())
    }

    /// The next chunk of about [`CSV_CHUNK_BYTES`], `None` after the last row.
    pub fn next_chunk(&mut self) -> Option<Bytes> {
        if self.is_done() {
            return None;
        }
        let columns = TargetColumns::new(&self.table, &self.targets.cost_column)
            .expect("the selection checked its cost column");
        let rows = &self.targets.selection.rows;
        let mut chunk = Vec::with_capacity(CSV_CHUNK_BYTES + 128);
        let mut next = self.next.unwrap_or_else(|| {
            chunk.extend_from_slice(TARGETS_CSV_HEADER.as_bytes());
            0
        });
        while next < rows.len() && chunk.len() < CSV_CHUNK_BYTES {
            columns
                .write_row(&mut chunk, rows[next])
                .expect("writing to a Vec cannot fail");
            next += 1;
        }
        self.next = Some(next);
        Some(Bytes::from(chunk))
    }
}
