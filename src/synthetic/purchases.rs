//! Synthetic purchase logs for `crv gen --purchases`, the `crv rfm` bench and tests: lines
//! `customer_id,date,amount` in date order over three years from 1997-01-01, customers drawn
//! with a skew (the most active buy far more often than the rest), amounts lognormal in cents.
//! Line `i` is drawn from `(seed, i)` alone.

use std::io::{self, Write};

use super::rng::RowRng;
use crate::rfm::date::{civil_from_days, days_from_civil};

/// Days the log spans.
const SPAN_DAYS: u64 = 3 * 365;
/// Bytes formatted before each write.
const CHUNK_BYTES: usize = 1 << 20;

/// Writes `purchases` lines among `customers` customers (ids 1 to `customers`) with a header;
/// returns the bytes written.
pub fn write_purchases_csv<W: Write>(
    mut out: W,
    purchases: u64,
    customers: u64,
    seed: u64,
) -> io::Result<u64> {
    if customers == 0 && purchases > 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a purchase log needs at least one customer",
        ));
    }
    let first_day = days_from_civil(1997, 1, 1);
    let dates: Vec<[u8; 10]> = (0..SPAN_DAYS as i64)
        .map(|offset| {
            let (year, month, day) = civil_from_days(first_day + offset);
            let mut text = [0u8; 10];
            text.copy_from_slice(format!("{year:04}-{month:02}-{day:02}").as_bytes());
            text
        })
        .collect();
    let mut chunk = Vec::with_capacity(CHUNK_BYTES + 64);
    chunk.extend_from_slice(b"customer_id,date,amount\n");
    let mut written = 0u64;
    let mut number = itoa::Buffer::new();
    for line in 0..purchases {
        let mut rng = RowRng::new(seed, line);
        // u^3 skews draws towards the low indices: the first customers buy most often.
        let u = rng.uniform();
        let customer = 1 + ((u * u * u) * customers as f64) as u64 % customers;
        let day = (u128::from(line) * u128::from(SPAN_DAYS) / u128::from(purchases)) as usize;
        let cents = (100.0 * (3.0 + 0.8 * rng.normal_pair().0).exp()).round() as u64;
        chunk.extend_from_slice(number.format(customer).as_bytes());
        chunk.push(b',');
        chunk.extend_from_slice(&dates[day]);
        chunk.push(b',');
        chunk.extend_from_slice(number.format(cents / 100).as_bytes());
        chunk.extend_from_slice(&[
            b'.',
            b'0' + (cents / 10 % 10) as u8,
            b'0' + (cents % 10) as u8,
            b'\n',
        ]);
        if chunk.len() >= CHUNK_BYTES {
            out.write_all(&chunk)?;
            written += chunk.len() as u64;
            chunk.clear();
        }
    }
    out.write_all(&chunk)?;
    written += chunk.len() as u64;
    out.flush()?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_are_reproducible_dated_and_parse_as_purchases() {
        let mut a = Vec::new();
        write_purchases_csv(&mut a, 1000, 50, 7).unwrap();
        let mut b = Vec::new();
        write_purchases_csv(&mut b, 1000, 50, 7).unwrap();
        assert_eq!(a, b);
        let text = String::from_utf8(a).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1001);
        assert_eq!(lines[0], "customer_id,date,amount");
        assert!(lines[1].contains(",1997-01-01,"), "{}", lines[1]);
        assert!(lines[1000].contains(",1999-12-3"), "{}", lines[1000]);
        let summary = crate::rfm::summarize(
            text.as_bytes(),
            "<log>",
            None,
            &crate::rfm::Options::default(),
        )
        .unwrap();
        assert!(summary.rows.len() > 25 && summary.rows.len() <= 50);
        assert!(
            summary
                .rows
                .iter()
                .all(|row| row.customer_id >= 1 && row.customer_id <= 50)
        );
    }
}
