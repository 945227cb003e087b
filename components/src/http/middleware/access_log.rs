//! One JSON line per request: time, method, route template, status,
//! duration and request id.
//!
//! Access lines do not go through the general logger: at tens of thousands
//! of requests a second, a trip through its channel and thread per request
//! cost more than half the server's throughput (measured; see
//! benches/RESULTS.md). Lines are formatted on the worker thread into a
//! shared buffer that is written to stdout whole lines at a time, under the
//! stdout lock, when it fills, every 100 ms, and at the end of the drain.

use std::fmt::Write as _;
use std::io::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

/// Written out once this many bytes are buffered.
const FLUSH_AT: usize = 32 * 1024;

/// How often a partly filled buffer is written out.
pub(crate) const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// Where whole lines go.
type Sink = Box<dyn Fn(&[u8]) + Send + Sync>;

/// The buffered access log of one server.
pub(crate) struct AccessLog {
    buffer: Mutex<String>,
    sink: Sink,
}

/// What one line says.
pub(crate) struct Line<'a> {
    pub(crate) method: &'a str,
    pub(crate) route: &'a str,
    pub(crate) status: u16,
    pub(crate) duration: Duration,
    pub(crate) request_id: &'a str,
}

impl AccessLog {
    /// An access log written to stdout.
    pub(crate) fn stdout() -> Self {
        Self::to(Box::new(|bytes| {
            let mut out = std::io::stdout().lock();
            // Nowhere to report a failed write to stdout; the lines are lost either way.
            let _ = out.write_all(bytes).and_then(|()| out.flush());
        }))
    }

    pub(crate) fn to(sink: Sink) -> Self {
        Self { buffer: Mutex::new(String::with_capacity(FLUSH_AT * 2)), sink }
    }

    pub(crate) fn record(&self, line: &Line<'_>) {
        let now = SystemTime::now();
        let full = {
            // Formatted straight into the shared buffer: no allocation per line.
            let mut buffer = self.buffer.lock();
            format_line(&mut buffer, now, line);
            (buffer.len() >= FLUSH_AT).then(|| std::mem::replace(&mut *buffer, String::with_capacity(FLUSH_AT * 2)))
        };
        if let Some(text) = full {
            (self.sink)(text.as_bytes());
        }
    }

    /// Writes out whatever is buffered.
    pub(crate) fn flush(&self) {
        let text = std::mem::take(&mut *self.buffer.lock());
        if !text.is_empty() {
            (self.sink)(text.as_bytes());
        }
    }
}

impl Drop for AccessLog {
    fn drop(&mut self) {
        self.flush();
    }
}

fn push_json_str(out: &mut String, value: &str) {
    out.push('"');
    // Route templates, methods and request ids almost never need escaping.
    if !value.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        out.push_str(value);
        out.push('"');
        return;
    }
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends `value` in decimal, left-padded with zeros to `width` digits.
/// By hand: `write!` was the largest cost of a line.
fn push_padded(out: &mut String, value: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut at = digits.len();
    let mut rest = value;
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    let start = at.min(digits.len() - width.min(digits.len()));
    // ASCII digits: always valid UTF-8.
    out.push_str(std::str::from_utf8(&digits[start..]).unwrap_or_default());
}

/// `2026-11-21T06:33:48.481197Z`, from days since the epoch by the
/// civil-from-days algorithm (proleptic Gregorian, UTC).
fn push_timestamp(out: &mut String, at: SystemTime) {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    push_padded(out, year.max(0) as u64, 4);
    out.push('-');
    push_padded(out, month as u64, 2);
    out.push('-');
    push_padded(out, day as u64, 2);
    out.push('T');
    push_padded(out, rem / 3_600, 2);
    out.push(':');
    push_padded(out, rem % 3_600 / 60, 2);
    out.push(':');
    push_padded(out, rem % 60, 2);
    out.push('.');
    push_padded(out, u64::from(since.subsec_micros()), 6);
    out.push('Z');
}

fn format_line(out: &mut String, at: SystemTime, line: &Line<'_>) {
    out.push_str("{\"msg\":\"request\",\"level\":\"INFO\",\"ts\":\"");
    push_timestamp(out, at);
    out.push_str("\",\"component\":\"http\",\"method\":");
    push_json_str(out, line.method);
    out.push_str(",\"route\":");
    push_json_str(out, line.route);
    out.push_str(",\"status\":");
    push_padded(out, u64::from(line.status), 1);
    // Milliseconds with three decimals, from whole microseconds.
    let micros = line.duration.as_micros().min(u128::from(u64::MAX)) as u64;
    out.push_str(",\"duration_ms\":");
    push_padded(out, micros / 1_000, 1);
    out.push('.');
    push_padded(out, micros % 1_000, 3);
    out.push_str(",\"request_id\":");
    push_json_str(out, line.request_id);
    out.push_str("}\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::middleware::test_support::shipped;
    use actix_web::{test, web, HttpResponse};
    use std::sync::Arc;

    fn captured() -> (Arc<AccessLog>, Arc<Mutex<Vec<u8>>>) {
        let lines: Arc<Mutex<Vec<u8>>> = Arc::default();
        let sink = lines.clone();
        (Arc::new(AccessLog::to(Box::new(move |bytes| sink.lock().extend_from_slice(bytes)))), lines)
    }

    #[actix_web::test]
    async fn logs_one_json_line_with_the_route_template() {
        let (log, lines) = captured();
        let mut stack = shipped(|cfg| {
            cfg.route("/users/{id}", web::get().to(HttpResponse::Ok));
        });
        stack.access_log = Some(log.clone());
        let app = test::init_service(stack.app()).await;
        let req = test::TestRequest::get().uri("/users/42").insert_header(("x-request-id", "r1")).to_request();
        test::call_service(&app, req).await;
        assert!(lines.lock().is_empty(), "buffered until flushed");
        log.flush();
        let text = String::from_utf8(lines.lock().clone()).unwrap();
        let mut records = text.lines();
        let record: serde_json::Value = serde_json::from_str(records.next().unwrap()).unwrap();
        assert!(records.next().is_none(), "exactly one line: {text}");
        assert_eq!(record["route"], "/users/{id}");
        assert_eq!(record["method"], "GET");
        assert_eq!(record["status"], 200);
        assert_eq!(record["request_id"], "r1");
        assert_eq!(record["msg"], "request");
        assert!(record["duration_ms"].as_f64().unwrap() >= 0.0);
    }

    #[core::prelude::v1::test]
    fn timestamps_are_rfc3339_utc() {
        let mut out = String::new();
        push_timestamp(&mut out, UNIX_EPOCH + Duration::from_micros(1_795_761_228_481_197));
        assert_eq!(out, "2026-11-27T06:33:48.481197Z");
        out.clear();
        push_timestamp(&mut out, UNIX_EPOCH + Duration::from_secs(951_782_400)); // a leap day
        assert_eq!(out, "2000-02-29T00:00:00.000000Z");
    }

    #[core::prelude::v1::test]
    fn numbers_are_padded_and_durations_have_three_decimals() {
        let mut out = String::new();
        push_padded(&mut out, 7, 3);
        push_padded(&mut out, 12345, 2);
        push_padded(&mut out, 0, 1);
        assert_eq!(out, "007123450");
        let mut line = String::new();
        let fields =
            Line { method: "GET", route: "/", status: 204, duration: Duration::from_micros(12_034), request_id: "r" };
        format_line(&mut line, UNIX_EPOCH, &fields);
        let record: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(record["duration_ms"], 12.034);
        assert_eq!(record["status"], 204);
        assert_eq!(record["ts"], "1970-01-01T00:00:00.000000Z");
    }

    #[core::prelude::v1::test]
    fn strings_are_escaped() {
        let mut out = String::new();
        push_json_str(&mut out, "a\"b\\c\nd");
        assert_eq!(serde_json::from_str::<String>(&out).unwrap(), "a\"b\\c\nd");
    }

    #[core::prelude::v1::test]
    fn a_full_buffer_is_written_out_whole_lines_at_a_time() {
        let (log, lines) = captured();
        let line = Line { method: "GET", route: "/", status: 200, duration: Duration::from_millis(1), request_id: "x" };
        while lines.lock().is_empty() {
            log.record(&line);
        }
        let text = String::from_utf8(lines.lock().clone()).unwrap();
        assert!(text.len() >= FLUSH_AT && text.ends_with('\n'));
        assert!(text.lines().all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()));
    }
}
