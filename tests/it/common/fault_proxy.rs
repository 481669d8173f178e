//! A small HTTP/1.1 proxy for tests (std::net, one thread per connection) that forwards to
//! a real registry and lets a test decide, per request, to forward it, answer it itself
//! (faults, a token endpoint, 401 challenges), drop the connection, cut a response body
//! short, or shut the whole proxy down. Bodies are streamed, never buffered whole.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;

/// The request line and headers of a proxied request.
#[derive(Debug, Clone)]
pub struct RequestHead {
    /// `GET`, `PUT`, ...
    pub method: String,
    /// The request target (`/v2/r/blobs/uploads/?mount=...`).
    pub target: String,
    /// Headers in order.
    pub headers: Vec<(String, String)>,
}

impl RequestHead {
    /// A header's value (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The path without the query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or(&self.target)
    }

    /// Query parameters (percent-decoding only `%3A` and `%2F`, enough for scopes and digests).
    pub fn query(&self) -> Vec<(String, String)> {
        let Some((_, q)) = self.target.split_once('?') else {
            return Vec::new();
        };
        q.split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| {
                let v = v
                    .replace("%3A", ":")
                    .replace("%3a", ":")
                    .replace("%2F", "/")
                    .replace("%2f", "/")
                    .replace("%2C", ",")
                    .replace("%2c", ",");
                (k.to_string(), v.replace('+', " "))
            })
            .collect()
    }
}

/// What to do with a request.
pub enum Action {
    /// Pass it to the upstream registry and relay the answer.
    Forward,
    /// Forward, and add these headers to the upstream's answer.
    ForwardAdding(Vec<(String, String)>),
    /// Forward, but relay only the first half of the response body, then close.
    ForwardTruncated,
    /// Answer locally (the request body is read and dropped first).
    Respond {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Read the request, then close the connection without answering.
    Drop,
    /// Close this connection and stop accepting new ones (connections are then refused).
    Shutdown,
}

type Handler = dyn Fn(&RequestHead) -> Action + Send + Sync;

/// A running proxy on 127.0.0.1.
pub struct Proxy {
    addr: SocketAddr,
    dead: Arc<Dead>,
    gauge: Arc<Gauge>,
}

/// Set once the proxy shuts down; holds the open client connections to cut them then.
#[derive(Default)]
struct Dead {
    flag: AtomicBool,
    conns: std::sync::Mutex<Vec<TcpStream>>,
}

/// Requests being forwarded right now, and the most at once.
#[derive(Default)]
struct Gauge {
    active: AtomicUsize,
    peak: AtomicUsize,
}

impl Proxy {
    /// Starts a proxy to `upstream` (`127.0.0.1:PORT`) calling `handler` for every request.
    pub fn start(upstream: &str, handler: impl Fn(&RequestHead) -> Action + Send + Sync + 'static) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let dead = Arc::new(Dead::default());
        let handler: Arc<Handler> = Arc::new(handler);
        let upstream = upstream.to_string();
        let dead_accept = Arc::clone(&dead);
        let gauge = Arc::new(Gauge::default());
        let gauge_accept = Arc::clone(&gauge);
        thread::spawn(move || {
            for conn in listener.incoming() {
                if dead_accept.flag.load(Ordering::SeqCst) {
                    return; // drops the listener: later connects are refused
                }
                let Ok(conn) = conn else { continue };
                if let Ok(clone) = conn.try_clone() {
                    dead_accept.conns.lock().unwrap().push(clone);
                }
                let (handler, upstream, dead) = (Arc::clone(&handler), upstream.clone(), Arc::clone(&dead_accept));
                let gauge = Arc::clone(&gauge_accept);
                thread::spawn(move || {
                    let _ = serve(conn, &upstream, &*handler, &dead, addr, &gauge);
                });
            }
        });
        Proxy { addr, dead, gauge }
    }

    /// The most requests that were being forwarded at the same time.
    pub fn peak_in_flight(&self) -> usize {
        self.gauge.peak.load(Ordering::SeqCst)
    }

    /// `127.0.0.1:PORT` of the proxy.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// Stops accepting connections (idempotent).
    pub fn shutdown(&self) {
        shutdown(&self.dead, self.addr);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Like a killed server: every open connection is cut and new ones are refused.
fn shutdown(dead: &Dead, addr: SocketAddr) {
    if !dead.flag.swap(true, Ordering::SeqCst) {
        for conn in dead.conns.lock().unwrap().drain(..) {
            let _ = conn.shutdown(Shutdown::Both);
        }
        // Wake the accept loop so it sees the flag and drops the listener.
        let _ = TcpStream::connect(addr);
    }
}

fn serve(
    client: TcpStream,
    upstream: &str,
    handler: &Handler,
    dead: &Dead,
    own: SocketAddr,
    gauge: &Gauge,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut writer = client;
    loop {
        let Some((head, raw_head)) = read_request_head(&mut reader)? else {
            return Ok(());
        };
        if dead.flag.load(Ordering::SeqCst) {
            return writer.shutdown(Shutdown::Both);
        }
        let framing = Framing::of_request(&head);
        match handler(&head) {
            Action::Forward => {
                let now = gauge.active.fetch_add(1, Ordering::SeqCst) + 1;
                gauge.peak.fetch_max(now, Ordering::SeqCst);
                // Counted down before the client sees the answer, so a client that sends its
                // next request as soon as it has one never appears twice.
                let mut done = Some(|| {
                    gauge.active.fetch_sub(1, Ordering::SeqCst);
                });
                let mut answered = || {
                    if let Some(f) = done.take() {
                        f()
                    }
                };
                let result = forward(
                    &mut reader,
                    &mut writer,
                    &head,
                    &raw_head,
                    upstream,
                    Relay::Whole(&[]),
                    &mut answered,
                );
                answered();
                if !result? {
                    return Ok(());
                }
            }
            Action::ForwardAdding(headers) => {
                let relay = Relay::Whole(&headers);
                if !forward(&mut reader, &mut writer, &head, &raw_head, upstream, relay, &mut || {})? {
                    return Ok(());
                }
            }
            Action::ForwardTruncated => {
                forward(
                    &mut reader,
                    &mut writer,
                    &head,
                    &raw_head,
                    upstream,
                    Relay::Truncated,
                    &mut || {},
                )?;
                return writer.shutdown(Shutdown::Both);
            }
            Action::Respond { status, headers, body } => {
                copy_body(&mut reader, &mut std::io::sink(), framing)?;
                let mut out = format!("HTTP/1.1 {status} Test\r\nContent-Length: {}\r\n", body.len());
                for (k, v) in headers {
                    out.push_str(&format!("{k}: {v}\r\n"));
                }
                out.push_str("\r\n");
                writer.write_all(out.as_bytes())?;
                writer.write_all(&body)?;
                writer.flush()?;
            }
            Action::Drop => {
                copy_body(&mut reader, &mut std::io::sink(), framing)?;
                return writer.shutdown(Shutdown::Both);
            }
            Action::Shutdown => {
                shutdown(dead, own);
                return writer.shutdown(Shutdown::Both);
            }
        }
    }
}

/// How a message body is delimited.
#[derive(Clone, Copy, Debug)]
enum Framing {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

impl Framing {
    fn of_request(head: &RequestHead) -> Framing {
        Framing::from_headers(&head.headers).unwrap_or(Framing::None)
    }

    fn from_headers(headers: &[(String, String)]) -> Option<Framing> {
        let get = |n: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| v.trim().to_string())
        };
        if get("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
            return Some(Framing::Chunked);
        }
        get("content-length").and_then(|v| v.parse().ok()).map(Framing::Length)
    }
}

fn read_request_head(reader: &mut BufReader<TcpStream>) -> std::io::Result<Option<(RequestHead, Vec<String>)>> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        let line = line.trim_end_matches(['\r', '\n']).to_string();
        if line.is_empty() {
            if lines.is_empty() {
                continue;
            }
            break;
        }
        lines.push(line);
    }
    let mut parts = lines[0].split(' ');
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default().to_string();
    let headers = lines[1..]
        .iter()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Ok(Some((
        RequestHead {
            method,
            target,
            headers,
        },
        lines,
    )))
}

/// Relays one request upstream and its answer back, calling `answered` once the upstream
/// answer is in and before the client gets it; false when the client connection must close.
/// How [`forward`] relays the upstream's answer.
#[derive(Clone, Copy)]
enum Relay<'a> {
    /// Whole, with these headers added.
    Whole(&'a [(String, String)]),
    /// Only the first half of the body.
    Truncated,
}

fn forward(
    reader: &mut BufReader<TcpStream>,
    writer: &mut TcpStream,
    head: &RequestHead,
    raw_head: &[String],
    upstream: &str,
    relay: Relay,
    answered: &mut dyn FnMut(),
) -> std::io::Result<bool> {
    let framing = Framing::of_request(head);
    let up = TcpStream::connect(upstream)?;
    let mut up_writer = up.try_clone()?;
    let mut out = String::new();
    out.push_str(&raw_head[0]);
    out.push_str("\r\n");
    for line in &raw_head[1..] {
        if !line.to_ascii_lowercase().starts_with("connection:") {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("Connection: close\r\n\r\n");
    up_writer.write_all(out.as_bytes())?;
    copy_body(reader, &mut up_writer, framing)?;
    up_writer.flush()?;

    let mut up_reader = BufReader::new(up);
    let mut status_line = String::new();
    up_reader.read_line(&mut status_line)?;
    let mut resp_headers = Vec::new();
    let mut raw = vec![status_line.trim_end().to_string()];
    loop {
        let mut line = String::new();
        if up_reader.read_line(&mut line)? == 0 {
            break;
        }
        let line = line.trim_end_matches(['\r', '\n']).to_string();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            resp_headers.push((k.trim().to_string(), v.trim().to_string()));
        }
        raw.push(line);
    }
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(502);
    let resp_framing = if head.method == "HEAD" || status == 204 || status == 304 || (100..200).contains(&status) {
        Framing::None
    } else {
        Framing::from_headers(&resp_headers).unwrap_or(Framing::UntilClose)
    };
    let keep_alive = !matches!(resp_framing, Framing::UntilClose);
    answered();
    let mut out = String::new();
    for line in &raw {
        if !line.to_ascii_lowercase().starts_with("connection:") {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    if !keep_alive {
        out.push_str("Connection: close\r\n");
    }
    if let Relay::Whole(extra) = relay {
        for (k, v) in extra {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    out.push_str("\r\n");
    writer.write_all(out.as_bytes())?;
    match (relay, resp_framing) {
        (Relay::Truncated, Framing::Length(n)) => {
            std::io::copy(&mut (&mut up_reader).take(n / 2), writer)?;
        }
        _ => copy_body(&mut up_reader, writer, resp_framing)?,
    }
    writer.flush()?;
    Ok(keep_alive)
}

/// Copies one body delimited by `framing` (chunked bodies are relayed as they are).
fn copy_body<R: BufRead, W: Write>(reader: &mut R, writer: &mut W, framing: Framing) -> std::io::Result<()> {
    match framing {
        Framing::None => Ok(()),
        Framing::Length(n) => {
            let copied = std::io::copy(&mut reader.take(n), writer)?;
            if copied != n {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "body ended early",
                ));
            }
            Ok(())
        }
        Framing::UntilClose => std::io::copy(reader, writer).map(|_| ()),
        Framing::Chunked => loop {
            let mut size_line = String::new();
            reader.read_line(&mut size_line)?;
            writer.write_all(size_line.as_bytes())?;
            let size = u64::from_str_radix(size_line.trim().split(';').next().unwrap_or("0"), 16)
                .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "bad chunk size"))?;
            if size == 0 {
                // Trailers up to the empty line.
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line)?;
                    writer.write_all(line.as_bytes())?;
                    if line.trim().is_empty() {
                        return Ok(());
                    }
                }
            }
            std::io::copy(&mut reader.take(size + 2), writer)?;
        },
    }
}

/// A small deterministic random generator (xorshift64*), for seeded fault injection.
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (never zero inside).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    /// The next value in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}
