//! ISO 8601 dates and timestamps as microseconds since 1970-01-01T00:00:00Z, and the periods
//! (day, week, month) purchases are merged into and time is measured in.
//!
//! Accepted forms (years 0001 to 9999): `1997-01-01`, `19970101`, `1997-01-01T10:20`,
//! `1997-01-01T10:20:30`, `1997-01-01T10:20:30.250`, with a space instead of `T`, and with `Z`
//! or an offset `+hh:mm`, `+hhmm`, `+hh` (or `-`) after the time. A timestamp with an offset is
//! converted to UTC; one without is taken as UTC. Fractions of a second beyond the microsecond
//! are ignored.

use std::fmt;
use std::str::FromStr;

/// Microseconds in a day.
pub const MICROS_PER_DAY: i64 = 86_400_000_000;

/// Now, in microseconds since 1970 UTC (0 on a clock set before 1970).
pub fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_micros() as i64)
}

/// The times a parsed moment can have: the accepted years 0001 to 9999, a day wider each way
/// for an offset (`0001-01-01T00:00+14:00` is before the first day's start).
pub const MOMENT_MICROS: std::ops::RangeInclusive<i64> = (days_from_civil(1, 1, 1) - 1)
    * MICROS_PER_DAY
    ..=(days_from_civil(10_000, 1, 1) + 1) * MICROS_PER_DAY;

/// The mean Gregorian month in days (365.2425 / 12): the `month` time unit when purchases are
/// merged by day or week.
pub const DAYS_PER_MONTH: f64 = 30.436875;

/// A point in time read from a log or a flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Moment {
    /// Microseconds since 1970-01-01T00:00:00Z.
    pub micros: i64,
    /// Whether it was written as a date alone (no time of day).
    pub date_only: bool,
}

impl Moment {
    /// Days since 1970-01-01 of the moment's UTC date.
    pub fn day(self) -> i64 {
        self.micros.div_euclid(MICROS_PER_DAY)
    }

    /// The last microsecond the moment covers as an inclusive end: a date alone covers its
    /// whole day, a timestamp only itself.
    pub fn inclusive_end(self) -> i64 {
        if self.date_only {
            self.micros + (MICROS_PER_DAY - 1)
        } else {
            self.micros
        }
    }
}

impl FromStr for Moment {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        parse_moment(text.trim().as_bytes()).map_err(|why| format!("`{text}`: {why}"))
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's `days_from_civil`).
pub const fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = month as i64;
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + day as i64 - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The proleptic Gregorian date (year, month, day) of a day number (Hinnant's
/// `civil_from_days`).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a date read as numbers (year 1 to 9999), or why there is no such
/// date.
pub(super) fn civil_day(year: u32, month: u32, day: u32) -> Result<i64, &'static str> {
    let year = i64::from(year);
    if year == 0 || !(1..=12).contains(&month) {
        return Err("no such date (years 0001 to 9999, months 01 to 12)");
    }
    if day == 0 || day > days_in_month(year, month) {
        return Err("no such day in that month");
    }
    Ok(days_from_civil(year, month, day))
}

/// Seconds from midnight of a time of day read as numbers, if it is one.
pub(super) fn seconds_of_day(hour: u32, minute: u32, second: u32) -> Option<i64> {
    (hour <= 23 && minute <= 59 && second <= 59)
        .then(|| i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second))
}

/// `n` ASCII digits at the start of `bytes` as a number.
fn digits(bytes: &[u8], n: usize) -> Option<u32> {
    let field = bytes.get(..n)?;
    field.iter().try_fold(0u32, |value, &b| {
        b.is_ascii_digit().then(|| value * 10 + u32::from(b - b'0'))
    })
}

/// Parses a date or timestamp (the module's forms); the error says what is wrong.
pub fn parse_moment(text: &[u8]) -> Result<Moment, &'static str> {
    const EXPECTED: &str = "not an ISO 8601 date or timestamp (1997-01-01, 19970101, \
                            1997-01-01T10:20:30, with Z or +hh:mm)";
    let (year, month, day, rest) = match text {
        [_, _, _, _, b'-', _, _, b'-', _, _, rest @ ..] => (
            digits(text, 4),
            digits(&text[5..], 2),
            digits(&text[8..], 2),
            rest,
        ),
        [_, _, _, _, _, _, _, _] => (
            digits(text, 4),
            digits(&text[4..], 2),
            digits(&text[6..], 2),
            &[][..],
        ),
        _ => return Err(EXPECTED),
    };
    let (Some(year), Some(month), Some(day)) = (year, month, day) else {
        return Err(EXPECTED);
    };
    let micros = civil_day(year, month, day)? * MICROS_PER_DAY;
    match rest {
        [] => Ok(Moment {
            micros,
            date_only: true,
        }),
        [b'T' | b't' | b' ', time @ ..] => {
            let of_day = parse_time(time).ok_or(EXPECTED)?;
            Ok(Moment {
                micros: micros + of_day,
                date_only: false,
            })
        }
        _ => Err(EXPECTED),
    }
}

/// `hh:mm[:ss[.fraction]][Z|±hh[:mm]]` as microseconds from midnight UTC (may fall outside
/// the day once the offset is applied).
fn parse_time(time: &[u8]) -> Option<i64> {
    let hour = digits(time, 2)?;
    if time.get(2) != Some(&b':') {
        return None;
    }
    let minute = digits(&time[3..], 2)?;
    let mut rest = &time[5..];
    let mut second = 0;
    let mut micros = 0i64;
    if let [b':', tail @ ..] = rest {
        second = digits(tail, 2)?;
        rest = &tail[2..];
        if let [b'.' | b',', tail @ ..] = rest {
            let count = tail.iter().take_while(|b| b.is_ascii_digit()).count();
            if count == 0 {
                return None;
            }
            for (i, &b) in tail[..count].iter().enumerate().take(6) {
                micros += i64::from(b - b'0') * 10i64.pow(5 - i as u32);
            }
            rest = &tail[count..];
        }
    }
    let seconds = seconds_of_day(hour, minute, second)?;
    let offset_minutes = match rest {
        [] | [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), offset @ ..] => {
            let hours = digits(offset, 2)?;
            let minutes = match &offset[2..] {
                [] => 0,
                [b':', m @ ..] | m if m.len() == 2 => digits(m, 2)?,
                _ => return None,
            };
            if hours > 23 || minutes > 59 {
                return None;
            }
            let minutes = i64::from(hours * 60 + minutes);
            if *sign == b'+' { minutes } else { -minutes }
        }
        _ => return None,
    };
    Some((seconds - offset_minutes * 60) * 1_000_000 + micros)
}

/// The unit purchases are merged into (`--period`) or time is measured in (`--time-unit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Period {
    /// A calendar day (UTC).
    #[default]
    Day,
    /// A week from Monday to Sunday (as pandas' `W`).
    Week,
    /// A calendar month.
    Month,
}

impl FromStr for Period {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "day" => Ok(Period::Day),
            "week" => Ok(Period::Week),
            "month" => Ok(Period::Month),
            _ => Err(format!("`{text}` is not day, week or month")),
        }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Period::Day => "day",
            Period::Week => "week",
            Period::Month => "month",
        })
    }
}

impl Period {
    /// The index of the period holding day `day` (days since 1970-01-01): the day itself,
    /// weeks since the Monday 1969-12-29, or months since January of year 0.
    pub fn of_day(self, day: i64) -> i64 {
        match self {
            Period::Day => day,
            Period::Week => (day + 3).div_euclid(7),
            Period::Month => {
                let (year, month, _) = civil_from_days(day);
                year * 12 + i64::from(month) - 1
            }
        }
    }

    /// The first day of period `index`.
    pub fn start_day(self, index: i64) -> i64 {
        match self {
            Period::Day => index,
            Period::Week => index * 7 - 3,
            Period::Month => {
                days_from_civil(index.div_euclid(12), index.rem_euclid(12) as u32 + 1, 1)
            }
        }
    }

    /// The time from the start of period `from` to the start of period `to` (periods of
    /// `self`) in units of `unit`: calendar months when both are months, else days divided by
    /// the unit's length (1, 7 or [`DAYS_PER_MONTH`]).
    pub fn elapsed(self, unit: Period, from: i64, to: i64) -> f64 {
        if self == unit {
            return (to - from) as f64;
        }
        let days = (self.start_day(to) - self.start_day(from)) as f64;
        match unit {
            Period::Day => days,
            Period::Week => days / 7.0,
            Period::Month => days / DAYS_PER_MONTH,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn micros(text: &str) -> i64 {
        parse_moment(text.as_bytes()).unwrap().micros
    }

    #[test]
    fn dates_and_timestamps_parse_to_utc_microseconds() {
        assert_eq!(micros("1970-01-01"), 0);
        assert_eq!(micros("19700102"), MICROS_PER_DAY);
        assert_eq!(micros("1997-01-01"), 9862 * MICROS_PER_DAY);
        assert_eq!(micros("1970-01-01T00:00:01"), 1_000_000);
        assert_eq!(micros("1970-01-01 00:01"), 60_000_000);
        assert_eq!(micros("1970-01-01T00:00:01.5Z"), 1_500_000);
        assert_eq!(micros("1970-01-01T00:00:00.1234567"), 123_456);
        assert_eq!(micros("1970-01-01T02:00:00+02:00"), 0);
        assert_eq!(micros("1970-01-01T02:00:00+0200"), 0);
        assert_eq!(micros("1970-01-01T02:00:00+02"), 0);
        assert_eq!(micros("1969-12-31T22:00:00-02:00"), 0);
        assert!(parse_moment(b"1997-01-01").unwrap().date_only);
        assert!(!parse_moment(b"1997-01-01T00:00").unwrap().date_only);
    }

    #[test]
    fn malformed_dates_are_refused() {
        for bad in [
            "",
            "1997",
            "1997-1-1",
            "1997/01/01",
            "1997-02-29",
            "1996-02-30",
            "0000-01-01",
            "1997-13-01",
            "1997-00-10",
            "19970230",
            "1997-01-01T",
            "1997-01-01T24:00",
            "1997-01-01T10:60",
            "1997-01-01T10:20:61",
            "1997-01-01T10:20:30.",
            "1997-01-01T10:20+2",
            "1997-01-01T10:20+24:00",
            "1997-01-01X",
            "abcd-ef-gh",
            "1997-01-01T10:20:30+02:00x",
            "1997-01-01T10:20:30+02:0",
        ] {
            assert!(parse_moment(bad.as_bytes()).is_err(), "{bad}");
        }
        assert!(parse_moment(b"1996-02-29").is_ok());
        assert!(parse_moment(b"2000-02-29").is_ok());
        assert!(parse_moment(b"1900-02-29").is_err());
    }

    #[test]
    fn periods_floor_to_monday_weeks_and_calendar_months() {
        let day = |text: &str| parse_moment(text.as_bytes()).unwrap().day();
        // 1997-01-01 was a Wednesday: its week starts on Monday 1996-12-30.
        let week = Period::Week.of_day(day("1997-01-01"));
        assert_eq!(Period::Week.start_day(week), day("1996-12-30"));
        assert_eq!(Period::Week.of_day(day("1997-01-05")), week);
        assert_eq!(Period::Week.of_day(day("1997-01-06")), week + 1);
        let month = Period::Month.of_day(day("1997-02-28"));
        assert_eq!(month, 1997 * 12 + 1);
        assert_eq!(Period::Month.start_day(month), day("1997-02-01"));
        assert_eq!(Period::Day.elapsed(Period::Week, 0, 14), 2.0);
        assert_eq!(Period::Month.elapsed(Period::Day, month, month + 1), 28.0);
        assert_eq!(Period::Month.elapsed(Period::Month, month, month + 3), 3.0);
        assert_eq!(Period::Week.elapsed(Period::Day, week, week + 2), 14.0);
    }

    proptest! {
        #[test]
        fn civil_round_trips(days in -719_162i64..2_932_896) {
            let (year, month, day) = civil_from_days(days);
            prop_assert_eq!(days_from_civil(year, month, day), days);
            let text = format!("{year:04}-{month:02}-{day:02}");
            prop_assert_eq!(parse_moment(text.as_bytes()).unwrap().day(), days);
            let week = Period::Week.of_day(days);
            prop_assert!(Period::Week.start_day(week) <= days);
            prop_assert!(days < Period::Week.start_day(week + 1));
            let month_index = Period::Month.of_day(days);
            prop_assert!(Period::Month.start_day(month_index) <= days);
            prop_assert!(days < Period::Month.start_day(month_index + 1));
        }
    }
}
