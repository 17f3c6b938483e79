//! The access log: one line per request, as text or a JSON object. A request only hands a
//! small record to a bounded channel (dropped, and counted, if 64k lines are queued); a
//! thread of its own drains it ten times a second, formats the lines and writes them to
//! stderr through a 64 KiB buffer. Logging through `tracing`, or waking the writer for each
//! line, cost a quarter of single-item throughput (BENCHMARKS.md).

use std::io::Write;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError, TrySendError};
use std::time::{Duration, SystemTime};

/// What one line says.
pub struct Entry {
    pub at: SystemTime,
    pub peer: Option<IpAddr>,
    pub method: &'static str,
    /// The request target as sent, at most 2 KiB of it.
    pub uri: String,
    pub status: u16,
    pub bytes: Option<u64>,
    pub seconds: f64,
    pub id: Option<String>,
}

pub struct AccessLog {
    tx: SyncSender<Entry>,
    pub dropped: AtomicU64,
}

impl AccessLog {
    /// Starts the writer thread; lines go to stderr, as JSON objects when `json`.
    pub fn start(json: bool) -> std::io::Result<Self> {
        let (tx, rx) = sync_channel(65_536);
        std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || write_lines(rx, json))?;
        Ok(Self {
            tx,
            dropped: AtomicU64::new(0),
        })
    }

    pub fn log(&self, e: Entry) {
        if let Err(TrySendError::Full(_)) = self.tx.try_send(e) {
            self.dropped.fetch_add(1, Relaxed);
        }
    }
}

fn write_lines(rx: Receiver<Entry>, json: bool) {
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stderr());
    let mut line = String::with_capacity(512);
    loop {
        // Woken by a clock, not by each line: a sender that had to wake this thread would pay
        // a futex call and a context switch per request (measured: a quarter of throughput).
        std::thread::sleep(TICK);
        loop {
            match rx.try_recv() {
                Ok(e) => {
                    line.clear();
                    format_line(&mut line, &e, json);
                    let _ = out.write_all(line.as_bytes());
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    let _ = out.flush();
                    return;
                }
            }
        }
        let _ = out.flush();
    }
}

/// How often the writer drains the queue: lines appear at most this late.
const TICK: Duration = Duration::from_millis(100);

fn format_line(out: &mut String, e: &Entry, json: bool) {
    use std::fmt::Write as _;
    let at = chrono::DateTime::<chrono::Utc>::from(e.at)
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let ms = (e.seconds * 100_000.0).round() / 100.0;
    let peer = e.peer.map(|p| p.to_string()).unwrap_or_else(|| "-".into());
    if json {
        let v = serde_json::json!({
            "timestamp": at,
            "level": "INFO",
            "target": "access",
            "peer": peer,
            "method": e.method,
            "uri": e.uri,
            "status": e.status,
            "bytes": e.bytes,
            "ms": ms,
            "id": e.id,
        });
        let _ = writeln!(out, "{v}");
    } else {
        // The request target is quoted as JSON would quote it: a client cannot forge a line.
        let _ = writeln!(
            out,
            "{at}  INFO access: {peer} \"{} {}\" {} {} {ms}ms id={}",
            e.method,
            serde_json::Value::String(e.uri.clone())
                .to_string()
                .trim_matches('"'),
            e.status,
            e.bytes.map_or("-".to_string(), |b| b.to_string()),
            e.id.as_deref().unwrap_or("-"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(uri: &str) -> Entry {
        Entry {
            at: SystemTime::UNIX_EPOCH,
            peer: Some("127.0.0.1".parse().expect("ip")),
            method: "GET",
            uri: uri.into(),
            status: 200,
            bytes: Some(12),
            seconds: 0.001234,
            id: Some("abc".into()),
        }
    }

    #[test]
    fn lines_are_one_line_each_whatever_the_uri() {
        let mut text = String::new();
        format_line(&mut text, &entry("/x?q=a\nFAKE LINE"), false);
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(
            text.contains("\"GET /x?q=a\\nFAKE LINE\" 200 12 1.23ms id=abc"),
            "{text}"
        );
        let mut json = String::new();
        format_line(&mut json, &entry("/y"), true);
        let v: serde_json::Value = serde_json::from_str(json.trim()).expect("json");
        assert_eq!(v["uri"], "/y");
        assert_eq!(v["ms"], 1.23);
        assert_eq!(v["target"], "access");
    }
}
