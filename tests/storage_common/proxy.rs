//! An HTTP/1.1 proxy in front of the S3 gateway that fails every `n`th request:
//! alternately a 503 answer and a connection dropped after the request was read
//! (the two failures a flaky store or network gives); or, started with `cutting`, that
//! forwards every `n`th answer with a body of over 4 KiB only halfway and then drops
//! the connection (a network failing mid-download); or, with `cutting_puts` and
//! `failing_puts`, that cuts or fails every `n`th PUT (an upload failing mid-body, a
//! store refusing writes). Requests are parsed only as far
//! as needed to find where each ends (Content-Length or chunked bodies).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

pub struct FailingProxy {
    pub endpoint: String,
    pub failed: Arc<AtomicU64>,
    /// Every request passed on whole: its first line and its body's length.
    pub log: Log,
    stop: Arc<AtomicBool>,
    port: u16,
}

impl Drop for FailingProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees `stop`.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Requests seen, in order: request line and body bytes.
pub type Log = Arc<Mutex<Vec<(String, usize)>>>;

/// A message head: its bytes, the body length it announces (`None`: chunked) and
/// its first line.
type Head = (Vec<u8>, Option<u64>, String);

/// Head lines up to the blank line; `None` at the end of the stream.
fn read_head(r: &mut impl BufRead) -> io::Result<Option<Head>> {
    let mut head = Vec::new();
    let mut len = Some(0u64);
    let mut first = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        if first.is_empty() {
            first = line.trim_end().to_string();
        }
        head.extend_from_slice(line.as_bytes());
        let l = line.to_ascii_lowercase();
        if let Some(v) = l.strip_prefix("content-length:") {
            len = v.trim().parse().ok();
        }
        if l.starts_with("transfer-encoding:") && l.contains("chunked") {
            len = None;
        }
        if line == "\r\n" {
            return Ok(Some((head, len, first)));
        }
    }
}

/// Copies one body (`len` bytes, or chunked) from `r` to `w`.
fn copy_body(r: &mut impl BufRead, w: &mut impl Write, len: Option<u64>) -> io::Result<()> {
    match len {
        Some(n) => {
            io::copy(&mut r.take(n), w)?;
        }
        None => loop {
            let mut line = String::new();
            r.read_line(&mut line)?;
            w.write_all(line.as_bytes())?;
            let size = u64::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| io::Error::other("bad chunk size"))?;
            io::copy(&mut r.take(size + 2), w)?;
            if size == 0 {
                break;
            }
        },
    }
    Ok(())
}

/// What the proxy does to every `n`th request.
#[derive(Clone, Copy)]
enum Mode {
    /// Answers 503 or drops the connection instead of forwarding it.
    Fail,
    /// Forwards it, and half the body of its answer (when over 4 KiB), then drops.
    CutBody,
    /// Counts only PUTs: every `n`th is read half from the client and sent half to the
    /// store, then both connections are dropped (an upload cut mid-body).
    CutPut,
    /// Counts only PUTs: every `n`th gets a 503 or a dropped connection, as `Fail`.
    FailPut,
}

/// Bodies at least this long are cut in `Mode::CutBody`.
const CUT_MIN: u64 = 4096;

/// Whether the answer to request line `first` with status line `status` has no body.
fn bodiless(first: &str, status: &str) -> bool {
    first.starts_with("HEAD ") || status.contains(" 204 ") || status.contains(" 304 ")
}

fn serve(
    client: TcpStream,
    upstream: &str,
    (n, mode): (u64, Mode),
    count: &AtomicU64,
    failed: &AtomicU64,
    log: &Log,
) -> io::Result<()> {
    let mut cr = BufReader::new(client.try_clone()?);
    let mut cw = client;
    let up = TcpStream::connect(upstream)?;
    let mut ur = BufReader::new(up.try_clone()?);
    let mut uw = up;
    loop {
        let Some((head, len, first)) = read_head(&mut cr)? else {
            return Ok(());
        };
        let is_put = first.starts_with("PUT ");
        if let (Mode::CutPut, true, Some(l)) = (mode, is_put, len) {
            let k = count.fetch_add(1, Ordering::SeqCst) + 1;
            if n > 0 && k % n == 0 && l >= CUT_MIN {
                failed.fetch_add(1, Ordering::SeqCst);
                uw.write_all(&head)?;
                io::copy(&mut (&mut cr).take(l / 2), &mut uw)?;
                uw.flush()?;
                // Both sides see the connection end mid-body: the store has half an
                // upload, the client an unfinished request and no answer.
                let _ = uw.shutdown(std::net::Shutdown::Both);
                let _ = cw.shutdown(std::net::Shutdown::Both);
                return Ok(());
            }
        }
        let mut body = Vec::new();
        copy_body(&mut cr, &mut body, len)?;
        log.lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((first.clone(), body.len()));
        if let (Mode::FailPut, true) = (mode, is_put) {
            let k = count.fetch_add(1, Ordering::SeqCst) + 1;
            if n > 0 && k % n == 0 {
                failed.fetch_add(1, Ordering::SeqCst);
                if (k / n) % 2 == 0 {
                    return Ok(());
                }
                cw.write_all(
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                )?;
                return Ok(());
            }
        }
        if let Mode::CutBody = mode {
            uw.write_all(&head)?;
            uw.write_all(&body)?;
            let Some((rhead, rlen, status)) = read_head(&mut ur)? else {
                return Ok(());
            };
            cw.write_all(&rhead)?;
            if bodiless(&first, &status) {
                cw.flush()?;
                continue;
            }
            let long = first.starts_with("GET ") && rlen.is_some_and(|l| l >= CUT_MIN);
            let k = match long {
                true => count.fetch_add(1, Ordering::SeqCst) + 1,
                false => 0,
            };
            if let (true, Some(l)) = (long && n > 0 && k % n == 0, rlen) {
                failed.fetch_add(1, Ordering::SeqCst);
                io::copy(&mut (&mut ur).take(l / 2), &mut cw)?;
                cw.flush()?;
                return Ok(()); // the client has half the body, then EOF
            }
            copy_body(&mut ur, &mut cw, rlen)?;
            cw.flush()?;
            continue;
        }
        let k = match mode {
            Mode::Fail => count.fetch_add(1, Ordering::SeqCst) + 1,
            _ => 0, // counted above, PUTs only
        };
        if n > 0 && k > 0 && k % n == 0 {
            failed.fetch_add(1, Ordering::SeqCst);
            if (k / n) % 2 == 0 {
                return Ok(()); // dropped: the client sees a reset or EOF
            }
            cw.write_all(
                b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            )?;
            return Ok(());
        }
        uw.write_all(&head)?;
        uw.write_all(&body)?;
        let Some((rhead, rlen, status)) = read_head(&mut ur)? else {
            return Ok(());
        };
        cw.write_all(&rhead)?;
        if !bodiless(&first, &status) {
            copy_body(&mut ur, &mut cw, rlen)?;
        }
        cw.flush()?;
    }
}

impl FailingProxy {
    /// Forwards to `upstream` (`host:port`), failing every `n`th request (0: none).
    pub fn start(upstream: &str, n: u64) -> FailingProxy {
        Self::spawn(upstream, n, Mode::Fail)
    }

    /// Forwards to `upstream`, cutting every `n`th GET answer of over 4 KiB halfway.
    pub fn cutting(upstream: &str, n: u64) -> FailingProxy {
        Self::spawn(upstream, n, Mode::CutBody)
    }

    /// Forwards to `upstream`, cutting every `n`th PUT of over 4 KiB halfway through
    /// its body (an upload failing mid-transfer).
    pub fn cutting_puts(upstream: &str, n: u64) -> FailingProxy {
        Self::spawn(upstream, n, Mode::CutPut)
    }

    /// Forwards to `upstream`, failing every `n`th PUT (503 or a dropped connection).
    pub fn failing_puts(upstream: &str, n: u64) -> FailingProxy {
        Self::spawn(upstream, n, Mode::FailPut)
    }

    fn spawn(upstream: &str, n: u64, mode: Mode) -> FailingProxy {
        let l = TcpListener::bind("127.0.0.1:0").expect("proxy bind");
        let port = l.local_addr().expect("proxy addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        let failed = Arc::new(AtomicU64::new(0));
        let count = Arc::new(AtomicU64::new(0));
        let log = Log::default();
        let (s, f, up, lg) = (
            stop.clone(),
            failed.clone(),
            upstream.to_string(),
            log.clone(),
        );
        std::thread::spawn(move || {
            for c in l.incoming() {
                if s.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(c) = c else { continue };
                let (up, count, f, lg) = (up.clone(), count.clone(), f.clone(), lg.clone());
                std::thread::spawn(move || {
                    let _ = serve(c, &up, (n, mode), &count, &f, &lg);
                });
            }
        });
        FailingProxy {
            endpoint: format!("http://127.0.0.1:{port}"),
            failed,
            log,
            stop,
            port,
        }
    }
}
