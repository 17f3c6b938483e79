//! A stand-in for a municipal web server: files (with ETags and 304s), redirects, errors, a
//! source that trickles and one that never ends, on 127.0.0.1 or another loopback address.
//! Routes can be changed while it runs, and requests are counted per path.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};

#[derive(Clone)]
pub enum Route {
    /// A file; its ETag is a hash of the body, so a new body has a new one.
    File {
        body: Vec<u8>,
        content_type: &'static str,
    },
    Redirect(String),
    Status(u16),
    /// Headers and the first bytes at once, then one byte every 200 ms for a minute.
    Slow(Vec<u8>),
}

pub struct Portal {
    pub base: String,
    routes: Arc<Mutex<HashMap<String, Route>>>,
    hits: Arc<Mutex<HashMap<String, u32>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Portal {
    /// Listens on `ip` (127.0.0.1, or 127.0.0.2 for an "internal" server).
    pub fn start(ip: &str) -> Portal {
        let listener = TcpListener::bind((ip, 0)).expect("bind the portal");
        let addr = listener.local_addr().expect("portal address");
        let routes: Arc<Mutex<HashMap<String, Route>>> = Arc::default();
        let hits: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
        let (r, h) = (routes.clone(), hits.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (r, h) = (r.clone(), h.clone());
                std::thread::spawn(move || {
                    let _ = serve(stream, &r, &h);
                });
            }
        });
        Portal {
            base: format!("http://{addr}"),
            routes,
            hits,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn set(&self, path: &str, route: Route) {
        lock(&self.routes).insert(path.to_string(), route);
    }

    pub fn file(&self, path: &str, body: impl Into<Vec<u8>>, content_type: &'static str) {
        self.set(
            path,
            Route::File {
                body: body.into(),
                content_type,
            },
        );
    }

    /// Requests for `path` so far.
    pub fn hits(&self, path: &str) -> u32 {
        lock(&self.hits).get(path).copied().unwrap_or(0)
    }
}

fn serve(
    stream: TcpStream,
    routes: &Mutex<HashMap<String, Route>>,
    hits: &Mutex<HashMap<String, u32>>,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut if_none_match = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("if-none-match") {
                if_none_match = Some(v.trim().to_string());
            }
        }
    }
    *lock(hits).entry(path.clone()).or_default() += 1;
    let route = lock(routes).get(&path).cloned();
    let mut out = stream;
    match route {
        None => write!(
            out,
            "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found"
        ),
        Some(Route::Status(code)) => write!(
            out,
            "HTTP/1.1 {code} Status\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ),
        Some(Route::Redirect(to)) => write!(
            out,
            "HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ),
        Some(Route::File { body, content_type }) => {
            let etag = format!("\"{}\"", hex::encode(&Sha256::digest(&body)[..8]));
            if if_none_match.as_deref() == Some(etag.as_str()) {
                return write!(
                    out,
                    "HTTP/1.1 304 Not Modified\r\nETag: {etag}\r\nConnection: close\r\n\r\n"
                );
            }
            write!(
                out,
                "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nETag: {etag}\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )?;
            out.write_all(&body)
        }
        Some(Route::Slow(body)) => {
            write!(
                out,
                "HTTP/1.1 200 OK\r\nContent-Type: application/geo+json\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n",
                body.len() + 300
            )?;
            out.write_all(&body)?;
            for _ in 0..300 {
                std::thread::sleep(Duration::from_millis(200));
                out.write_all(b" ")?;
                out.flush()?;
            }
            Ok(())
        }
    }
}
