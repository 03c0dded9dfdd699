//! The server's log lines: the two formats (`--log-format text|json`) and the access log, one
//! line per answered request (target `crv::access`, level info).
//!
//! Method. Every line but the access log's goes through `tracing`, formatted by its `fmt`
//! layer (text) or by [`JsonLines`]. The access log is by far the most frequent line (one per
//! lookup), and formatting it through `tracing`'s field visitors took about a tenth of a
//! lookup's CPU (`perf`: the dispatch, `record_debug` per field, the date-time `Display`), so
//! the server ([`AccessLog::direct`]) writes it itself: the same bytes as `tracing` would
//! write in either format (a test compares them), built with `itoa` and a date cached per
//! second, handed to the same non-blocking writer, in order with the other lines. The
//! filter still decides (`RUST_LOG=info,crv::access=warn` silences it). Without a direct
//! writer (the library's default) the line goes through `tracing`.
//! Cost: one allocation of the line and one channel send per request.

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

use hyper::Method;
use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::registry::LookupSpan;

use super::log_sink::LogSink;
use crate::rfm::date::civil_from_days;

/// The target of the access log's lines.
pub const ACCESS_TARGET: &str = "crv::access";

/// How log lines are written (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// `2026-12-02T03:00:00.000000Z  INFO target: message key=value ...`.
    Text,
    /// `{"timestamp", "level", "target", "message", fields...}`, one object per line, keys
    /// in order.
    Json,
}

/// One answered request, as its access-log line records it.
#[derive(Debug, Clone, Copy)]
pub struct AccessLine<'a> {
    /// The request's method.
    pub method: &'a Method,
    /// The route template (`/v1/customers/{id}`).
    pub route: &'static str,
    /// The request's path, without the query.
    pub path: &'a str,
    /// The answer's status code.
    pub status: u16,
    /// Microseconds from the request's head to the answer's.
    pub micros: u64,
    /// The client's address as text (`127.0.0.1:54858`), formatted once per connection
    /// ([`client_text`]).
    pub client: &'a str,
    /// The request id (echoed in `X-Request-Id`).
    pub request_id: &'a str,
}

/// Where the access log goes.
#[derive(Debug, Default)]
pub enum AccessLog {
    /// Through `tracing`, as any other line.
    #[default]
    Tracing,
    /// Formatted here in `format`, written to `writer` (the one `tracing`'s lines go to).
    Direct {
        /// The server's log format.
        format: LogFormat,
        /// The log's sink.
        writer: LogSink,
    },
}

impl AccessLog {
    /// The access log formatted here in `format` and written to `writer`.
    pub fn direct(format: LogFormat, writer: LogSink) -> AccessLog {
        AccessLog::Direct { format, writer }
    }

    /// Logs `line`, unless the filter leaves `crv::access` at info out.
    pub fn record(&self, line: &AccessLine<'_>) {
        match self {
            AccessLog::Tracing => tracing::info!(
                target: ACCESS_TARGET,
                method = %line.method,
                route = line.route,
                path = line.path,
                status = line.status,
                micros = line.micros,
                client = %line.client,
                request_id = line.request_id,
                "request"
            ),
            AccessLog::Direct { format, writer } => {
                if !tracing::enabled!(target: ACCESS_TARGET, tracing::Level::INFO) {
                    return;
                }
                let micros = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |since| since.as_micros() as u64);
                LINE.with_borrow_mut(|bytes| {
                    bytes.clear();
                    match format {
                        LogFormat::Text => line.write_text(micros, bytes),
                        LogFormat::Json => line.write_json(micros, bytes),
                    }
                    writer.write_line(bytes);
                });
            }
        }
    }
}

impl AccessLine<'_> {
    /// The line as `tracing`'s text format writes it.
    fn write_text(&self, micros: u64, out: &mut Vec<u8>) {
        write_timestamp(micros, out);
        out.extend_from_slice(b"  INFO crv::access: request method=");
        out.extend_from_slice(self.method.as_str().as_bytes());
        out.extend_from_slice(b" route=");
        write_quoted(self.route, out);
        out.extend_from_slice(b" path=");
        write_debug_str(self.path, out);
        out.extend_from_slice(b" status=");
        out.extend_from_slice(itoa::Buffer::new().format(self.status).as_bytes());
        out.extend_from_slice(b" micros=");
        out.extend_from_slice(itoa::Buffer::new().format(self.micros).as_bytes());
        out.extend_from_slice(b" client=");
        out.extend_from_slice(self.client.as_bytes());
        out.extend_from_slice(b" request_id=");
        write_debug_str(self.request_id, out);
        out.push(b'\n');
    }

    /// The line as [`JsonLines`] writes it (keys in order).
    fn write_json(&self, micros: u64, out: &mut Vec<u8>) {
        let string = |out: &mut Vec<u8>, text: &str| {
            serde_json::to_writer(out, text).expect("a string always encodes")
        };
        out.extend_from_slice(br#"{"client":"#);
        string(out, self.client);
        out.extend_from_slice(br#","level":"INFO","message":"request","method":"#);
        string(out, self.method.as_str());
        out.extend_from_slice(br#","micros":"#);
        out.extend_from_slice(itoa::Buffer::new().format(self.micros).as_bytes());
        out.extend_from_slice(br#","path":"#);
        string(out, self.path);
        out.extend_from_slice(br#","request_id":"#);
        string(out, self.request_id);
        out.extend_from_slice(br#","route":"#);
        string(out, self.route);
        out.extend_from_slice(br#","status":"#);
        out.extend_from_slice(itoa::Buffer::new().format(self.status).as_bytes());
        out.extend_from_slice(br#","target":"crv::access","timestamp":""#);
        write_timestamp(micros, out);
        out.extend_from_slice(b"\"}\n");
    }
}

/// `address` as the access log writes it (`127.0.0.1:54858`, as its `Display` does): a
/// connection formats its client's once, not each of its requests.
pub fn client_text(address: SocketAddr) -> Arc<str> {
    Arc::from(address.to_string())
}

/// Whether `{:?}` writes `text` as it is between its quotes: printable ASCII but `"` and `\`.
fn is_plain(text: &str) -> bool {
    // Every byte tested, without an early exit: the compiler vectorises the fold (a byte at a
    // time, the test was a sixth of the access line's cost).
    text.bytes().fold(true, |plain, b| {
        plain & ((0x20..0x7f).contains(&b) & (b != b'"') & (b != b'\\'))
    })
}

/// Writes `text` as `{:?}` does: quoted, printable ASCII as it is (the common case, without
/// the formatting machinery).
fn write_debug_str(text: &str, out: &mut Vec<u8>) {
    if is_plain(text) {
        write_quoted(text, out);
    } else {
        let _ = write!(out, "{text:?}");
    }
}

/// Writes `text`, [`is_plain`], quoted: a route's template, known plain (a test checks every
/// route's), is written without testing its bytes for each request.
fn write_quoted(text: &str, out: &mut Vec<u8>) {
    debug_assert!(is_plain(text), "{text:?}");
    out.push(b'"');
    out.extend_from_slice(text.as_bytes());
    out.push(b'"');
}

thread_local! {
    /// The access line being written, its room kept from line to line (a line's own buffer
    /// was an allocation and a free for every request).
    static LINE: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(256));
    /// The second last formatted and its `YYYY-MM-DDTHH:MM:SS.` text.
    static SECOND: RefCell<(u64, [u8; 20])> = const { RefCell::new((u64::MAX, [0; 20])) };
}

/// Writes `micros` since 1970 (UTC) as `tracing`'s `SystemTime` does:
/// `2026-12-03T17:56:58.421061Z`.
fn write_timestamp(micros: u64, out: &mut Vec<u8>) {
    let second = micros / 1_000_000;
    SECOND.with(|cached| {
        let mut cached = cached.borrow_mut();
        if cached.0 != second {
            let (year, month, day) = civil_from_days((second / 86_400) as i64);
            let in_day = second % 86_400;
            let mut text = String::with_capacity(20);
            let _ = write!(
                text,
                "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.",
                in_day / 3600,
                in_day / 60 % 60,
                in_day % 60
            );
            cached.1.copy_from_slice(&text.as_bytes()[..20]);
            cached.0 = second;
        }
        out.extend_from_slice(&cached.1);
    });
    let mut buffer = itoa::Buffer::new();
    let fraction = buffer.format(micros % 1_000_000).as_bytes();
    out.extend(std::iter::repeat_n(b'0', 6 - fraction.len()));
    out.extend_from_slice(fraction);
    out.push(b'Z');
}

/// `--log-format json`: each event as one JSON object on a line, with `timestamp`, `level`,
/// `target`, `message` and the event's fields as JSON values.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _context: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut timestamp = String::new();
        SystemTime.format_time(&mut Writer::new(&mut timestamp))?;
        let metadata = event.metadata();
        let mut line = Map::new();
        line.insert("timestamp".into(), Value::String(timestamp));
        line.insert("level".into(), Value::String(metadata.level().to_string()));
        line.insert("target".into(), Value::String(metadata.target().into()));
        event.record(&mut JsonFields(&mut line));
        writeln!(writer, "{}", Value::Object(line))
    }
}

/// Records an event's fields into a JSON object: numbers and booleans as such, the rest as
/// text.
struct JsonFields<'a>(&'a mut Map<String, Value>);

impl Visit for JsonFields<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), Value::from(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), Value::from(value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), Value::from(value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().into(), Value::String(format!("{value:?}")));
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::rfm::date::days_from_civil;

    /// A writer into a shared buffer.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Shared {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Shared {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    static POST: Method = Method::POST;

    /// A request whose id needs escaping.
    fn request() -> AccessLine<'static> {
        AccessLine {
            method: &POST,
            route: "/v1/customers/{id}/events",
            path: "/v1/customers/ann%40example.com/events",
            status: 200,
            micros: 1234,
            client: "127.0.0.1:54858",
            request_id: "a\"b\\c\té",
        }
    }

    /// The access line `tracing` writes in `format` under `filter`.
    fn through_tracing(format: LogFormat, filter: &str) -> String {
        let out = Shared::default();
        let sink = out.clone();
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(move || sink.clone());
        let subscriber: Box<dyn Subscriber + Send + Sync> = match format {
            LogFormat::Text => Box::new(builder.finish()),
            LogFormat::Json => Box::new(builder.event_format(JsonLines).finish()),
        };
        tracing::subscriber::with_default(subscriber, || AccessLog::Tracing.record(&request()));
        out.text()
    }

    /// The access line [`AccessLog::direct`] writes in `format` under `filter`.
    fn direct(format: LogFormat, filter: &str) -> String {
        let out = Shared::default();
        let (writer, flush) = LogSink::spawn("test-log", out.clone()).unwrap();
        let access = AccessLog::direct(format, writer);
        let subscriber = tracing_subscriber::fmt().with_env_filter(filter).finish();
        tracing::subscriber::with_default(subscriber, || access.record(&request()));
        drop(access);
        drop(flush);
        out.text()
    }

    #[test]
    fn strings_are_written_as_debug_writes_them() {
        let long = "/v1/customers/1141435293498/events".repeat(5);
        for text in [
            "",
            "/healthz",
            "a\"b",
            "back\\slash",
            "tab\there",
            "\u{7f}",
            "é",
            "ann%40x.com",
            " ~",
            &long,
            "/v1/customers/1141435293498/events\n",
        ] {
            let mut written = Vec::new();
            write_debug_str(text, &mut written);
            assert_eq!(String::from_utf8(written).unwrap(), format!("{text:?}"));
        }
    }

    #[test]
    fn every_route_template_is_written_as_debug_writes_it() {
        for route in crate::api::metrics::Route::ALL {
            let template = route.template();
            assert!(is_plain(template), "{template:?}");
            let mut written = Vec::new();
            write_quoted(template, &mut written);
            assert_eq!(String::from_utf8(written).unwrap(), format!("{template:?}"));
        }
    }

    #[test]
    fn the_direct_text_line_is_the_one_tracing_writes() {
        let reference = through_tracing(LogFormat::Text, "info");
        let line = direct(LogFormat::Text, "info");
        assert!(
            reference.contains("crv::access: request method=POST"),
            "{reference}"
        );
        // The timestamps differ by the time between the two.
        assert_eq!(line.len(), reference.len(), "{line}{reference}");
        assert_eq!(line[27..], reference[27..]);
        assert_close(&line[..27], &reference[..27]);
    }

    #[test]
    fn the_direct_json_line_is_the_one_tracing_writes() {
        let reference = through_tracing(LogFormat::Json, "info");
        let line = direct(LogFormat::Json, "info");
        // The same keys in the same order, the same spelling of each value.
        let split = |text: &str| {
            let at = text.find(r#","timestamp":""#).unwrap();
            (text[..at].to_string(), text[at + 14..].to_string())
        };
        let ((expected, time_expected), (got, time_got)) = (split(&reference), split(&line));
        assert_eq!(got, expected);
        assert_eq!(&time_got[27..], "\"}\n");
        assert_close(&time_got[..27], &time_expected[..27]);
        let _: Map<String, Value> = serde_json::from_str(&line).unwrap();
    }

    #[test]
    fn a_filter_without_the_access_log_silences_the_direct_line() {
        assert_eq!(
            through_tracing(LogFormat::Text, "info,crv::access=warn"),
            ""
        );
        assert_eq!(direct(LogFormat::Text, "info,crv::access=warn"), "");
        assert_eq!(direct(LogFormat::Json, "warn"), "");
    }

    #[test]
    fn timestamps_are_written_as_tracing_writes_them() {
        let written = |micros| {
            let mut out = Vec::new();
            write_timestamp(micros, &mut out);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(
            written(1_796_320_618_000_042),
            "2026-12-03T17:56:58.000042Z"
        );
        assert_eq!(
            written(1_796_320_619_999_999),
            "2026-12-03T17:56:59.999999Z"
        );
        assert_eq!(written(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(written(951_782_400_000_000), "2000-02-29T00:00:00.000000Z");
    }

    /// Two timestamps of the form `2026-12-03T17:56:58.421061Z`, less than a second apart.
    fn assert_close(a: &str, b: &str) {
        let micros = |text: &str| -> i64 {
            assert_eq!(text.len(), 27, "{text}");
            assert!(text.ends_with('Z'), "{text}");
            let number = |range: std::ops::Range<usize>| text[range].parse::<i64>().unwrap();
            let days = days_from_civil(number(0..4), number(5..7) as u32, number(8..10) as u32);
            ((days * 24 + number(11..13)) * 60 + number(14..16)) * 60_000_000
                + number(17..19) * 1_000_000
                + number(20..26)
        };
        assert!((micros(a) - micros(b)).abs() < 1_000_000, "{a} / {b}");
    }
}
