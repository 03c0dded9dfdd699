//! The common shapes of a purchase log's fields on a fast path: a plain customer id of up to
//! 19 digits, a `yyyy-mm-dd` date or a `yyyy-mm-ddThh:mm:ss[Z]` timestamp, and an amount of
//! at most 15 digits with an optional decimal point.
//!
//! Each function answers `None` for anything else (quotes, spaces, signs, exponents, offsets,
//! fractions of a second, bad dates, longer numbers), and [`super::log::Layout::parse`] then
//! reads the field with the general parser (as the live events' plain reader does with an
//! event's `time`, through [`moment`], and its numbers' value, through [`decimal`]). When it answers, the value is the general
//! parser's, bit for bit: the dates go through the same validation (`date::civil_day`,
//! `date::seconds_of_day`), and an amount of `m` (at most 15 digits, so below 2^53)
//! with `k` decimals is `m / 10^k`, one correctly rounded division of two exactly represented
//! numbers, which is the correctly rounded value of the decimal (Clinger's fast path), as
//! `fast_float2` gives it. The tests check that property on random fields.
//!
//! Cost: one pass over the field's bytes, no table and no branch per digit beyond the check.

use super::date::{MICROS_PER_DAY, Moment, civil_day, seconds_of_day};

/// The most digits of an amount on the fast path: 10^15 < 2^53, so the digits are exact as an
/// `f64`.
pub const MOST_AMOUNT_DIGITS: u32 = 15;

/// Powers of ten exactly represented as `f64`, for the decimals of an amount.
const POWERS_OF_TEN: [f64; MOST_AMOUNT_DIGITS as usize + 1] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

/// The decimal of `mantissa` (of at most [`MOST_AMOUNT_DIGITS`] digits) with `decimals`
/// digits after the point (at most as many): one correctly rounded division of two exact
/// numbers, the decimal's correctly rounded value.
pub fn decimal(mantissa: u64, decimals: usize) -> f64 {
    mantissa as f64 / POWERS_OF_TEN[decimals]
}

/// The digit a byte stands for, if it is one.
fn digit(byte: u8) -> Option<u32> {
    let value = byte.wrapping_sub(b'0');
    (value < 10).then_some(u32::from(value))
}

/// Two digits at `at` as a number.
fn two_digits(bytes: &[u8], at: usize) -> Option<u32> {
    Some(digit(bytes[at])? * 10 + digit(bytes[at + 1])?)
}

/// A customer id of 1 to 19 digits (below 10^19, so it cannot overflow a `u64`).
pub(super) fn customer(field: &[u8]) -> Option<u64> {
    if field.is_empty() || field.len() > 19 {
        return None;
    }
    field.iter().try_fold(0u64, |value, &byte| {
        Some(value * 10 + u64::from(digit(byte)?))
    })
}

/// The last date read on the fast path and its day: a log's lines mostly come in date order,
/// so consecutive purchases mostly share it.
#[derive(Debug, Clone, Copy, Default)]
pub struct LastDate {
    /// `yyyy-mm-dd` (all zero bytes before the first date: no field matches them).
    text: [u8; 10],
    day: i64,
}

/// `yyyy-mm-dd`, `yyyy-mm-ddThh:mm:ss` (`T`, `t` or a space) and the latter with `Z` or `z`.
pub fn moment(field: &[u8], last: &mut LastDate) -> Option<Moment> {
    if !matches!(field.len(), 10 | 19 | 20) {
        return None;
    }
    let date = &field[..10];
    let day = if *date == last.text {
        last.day
    } else {
        if date[4] != b'-' || date[7] != b'-' {
            return None;
        }
        let year = two_digits(date, 0)? * 100 + two_digits(date, 2)?;
        let day = civil_day(year, two_digits(date, 5)?, two_digits(date, 8)?).ok()?;
        last.text.copy_from_slice(date);
        last.day = day;
        day
    };
    let micros = day * MICROS_PER_DAY;
    if field.len() == 10 {
        return Some(Moment {
            micros,
            date_only: true,
        });
    }
    if !matches!(field[10], b'T' | b't' | b' ')
        || field[13] != b':'
        || field[16] != b':'
        || (field.len() == 20 && !matches!(field[19], b'Z' | b'z'))
    {
        return None;
    }
    let seconds = seconds_of_day(
        two_digits(field, 11)?,
        two_digits(field, 14)?,
        two_digits(field, 17)?,
    )?;
    Some(Moment {
        micros: micros + seconds * 1_000_000,
        date_only: false,
    })
}

/// An amount: digits, then optionally a decimal point and at least one digit; 15 digits at
/// most in all.
pub(super) fn amount(field: &[u8]) -> Option<f64> {
    if field.is_empty() || field.len() > 16 {
        return None;
    }
    let mut mantissa = 0u64;
    let mut point = None;
    for (at, &byte) in field.iter().enumerate() {
        match digit(byte) {
            Some(value) => mantissa = mantissa * 10 + u64::from(value),
            None if byte == b'.' && point.is_none() && at > 0 && at + 1 < field.len() => {
                point = Some(at);
            }
            None => return None,
        }
    }
    let decimals = point.map_or(0, |at| field.len() - at - 1);
    let digits = field.len() - usize::from(point.is_some());
    (digits <= MOST_AMOUNT_DIGITS as usize).then(|| decimal(mantissa, decimals))
}

#[cfg(test)]
mod tests {
    use super::super::date::parse_moment;
    use super::super::log::{parse_amount, parse_customer};
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn common_shapes_take_the_fast_path() {
        assert_eq!(customer(b"42"), Some(42));
        assert_eq!(
            customer(b"9999999999999999999"),
            Some(9_999_999_999_999_999_999)
        );
        assert_eq!(customer(b"18446744073709551615"), None);
        let last = &mut LastDate::default();
        assert_eq!(
            moment(b"1997-01-02", last),
            parse_moment(b"1997-01-02").ok()
        );
        assert_eq!(
            moment(b"1997-01-02T10:20:30Z", last),
            parse_moment(b"1997-01-02T10:20:30Z").ok()
        );
        assert_eq!(moment(b"1997-02-29", last), None);
        assert_eq!(moment(b"1997-01-02T24:00:00", last), None);
        assert_eq!(amount(b"12.34"), Some(12.34));
        assert_eq!(amount(b"0.1"), Some(0.1));
        assert_eq!(amount(b"123456789012345"), Some(123_456_789_012_345.0));
        for slow in [
            &b"1."[..],
            b".5",
            b"1e3",
            b"+1",
            b"1.2.3",
            b"1234567890123456",
            b" 1",
        ] {
            assert_eq!(amount(slow), None, "{slow:?}");
        }
    }

    /// Fields near the fast shapes: digits, points, dashes, colons, letters and spaces.
    fn near(alphabet: &'static str, length: std::ops::Range<usize>) -> BoxedStrategy<Vec<u8>> {
        let bytes: Vec<u8> = alphabet.bytes().collect();
        prop::collection::vec(prop::sample::select(bytes), length).boxed()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(5000))]

        #[test]
        fn fast_amounts_are_the_general_parsers_bits(
            field in prop_oneof![
                near("0123456789.", 1..18),
                (0u64..1 << 53, 0u32..17).prop_map(|(m, k)| {
                    let text = m.to_string();
                    let k = (k as usize).min(text.len().saturating_sub(1));
                    let (whole, fraction) = text.split_at(text.len() - k);
                    let text = if k == 0 { text.clone() } else { format!("{whole}.{fraction}") };
                    text.into_bytes()
                }),
            ],
        ) {
            if let Some(fast) = amount(&field) {
                let general = parse_amount(&field).expect("the general parser accepts it");
                prop_assert_eq!(fast.to_bits(), general.to_bits(), "{:?}", field);
            }
        }

        #[test]
        fn fast_moments_are_the_general_parsers(
            field in prop_oneof![
                near("0123456789-", 10..11),
                near("0123456789-: TtZz", 19..21),
                (1u32..10_000, 0u32..14, 0u32..33, 0u32..25, 0u32..61, 0u32..61, 0usize..4)
                    .prop_map(|(y, m, d, h, mi, s, form)| {
                        let date = format!("{y:04}-{m:02}-{d:02}");
                        match form {
                            0 => date,
                            1 => format!("{date}T{h:02}:{mi:02}:{s:02}"),
                            2 => format!("{date} {h:02}:{mi:02}:{s:02}Z"),
                            _ => format!("{date}t{h:02}:{mi:02}:{s:02}z"),
                        }
                        .into_bytes()
                    }),
            ],
            previous in prop_oneof![Just(b"1997-01-02".to_vec()), near("0123456789-", 10..11)],
        ) {
            let general = parse_moment(&field).ok();
            // Read after another date, or after the same date (from the last date's cache).
            let last = &mut LastDate::default();
            moment(&previous, last);
            let first = moment(&field, last);
            prop_assert_eq!(moment(&field, last), first);
            match first {
                Some(fast) => prop_assert_eq!(Some(fast), general, "{:?}", field),
                // A valid date or timestamp of these shapes takes the fast path.
                None => {
                    let shaped = match field.len() {
                        10 => true,
                        19 | 20 => field[13] == b':' && field[16] == b':'
                            && (field.len() == 19 || matches!(field[19], b'Z' | b'z')),
                        _ => false,
                    };
                    prop_assert!(general.is_none() || !shaped, "{:?}", field);
                }
            }
        }

        #[test]
        fn fast_customers_are_the_general_parsers(field in near("0123456789x", 1..22)) {
            if let Some(fast) = customer(&field) {
                prop_assert_eq!(Ok(fast), parse_customer(&field));
            } else if field.len() <= 19 {
                prop_assert!(parse_customer(&field).is_err());
            }
        }
    }
}
