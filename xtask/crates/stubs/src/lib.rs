//! Test doubles of the remote APIs xtask speaks to, for the tests and the lab only (never a
//! dependency of `cargo xtask`): `render` plays Render's REST API and a deploy hook, `supabase`
//! the Supabase Management API with Render's preview endpoints. This file is the plumbing they
//! share: an HTTP/1.1 server on a random 127.0.0.1 port, one thread per connection, every
//! request journaled with its headers before a [`Handler`] answers it, and the rate-limit
//! headers each service sends. The routes and the scenarios stay with each stub.

pub mod render;
pub mod supabase;

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{TcpListener, TcpStream},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

/// One request as a stub received it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// When it arrived, since the stub started.
    pub at: Duration,
}

impl Recorded {
    /// Method, target, headers and body, borrowed.
    pub fn parts(&self) -> (&str, &str, &[(String, String)], &str) {
        (&self.method, &self.target, &self.headers, &self.body)
    }
}

/// An answer: status, extra headers, JSON body (empty for none).
pub type Answer = (u16, Vec<(String, String)>, String);

/// A stub's state: it answers each request (the server journals it first).
pub trait Handler: Send + 'static {
    fn answer(&mut self, request: &Recorded) -> Answer;
}

/// A stub's state with its journal, under the one lock a request takes; derefs to the state.
pub struct Journaled<S> {
    /// When the stub started (what [`Recorded::at`] counts from).
    pub started: Instant,
    pub journal: Vec<Recorded>,
    pub state: S,
}

impl<S> Journaled<S> {
    pub fn new(state: S) -> Arc<Mutex<Journaled<S>>> {
        Arc::new(Mutex::new(Journaled {
            started: Instant::now(),
            journal: Vec::new(),
            state,
        }))
    }
}

impl<S> std::ops::Deref for Journaled<S> {
    type Target = S;
    fn deref(&self) -> &S {
        &self.state
    }
}

impl<S> std::ops::DerefMut for Journaled<S> {
    fn deref_mut(&mut self) -> &mut S {
        &mut self.state
    }
}

/// The listening side of a stub; stops when dropped.
pub struct Server {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    listener: Option<(TcpListener, u16)>,
    running: Option<(JoinHandle<()>, Arc<AtomicBool>, u16)>,
}

impl Server {
    /// Binds a random loopback port, so the URL is known before the state is built.
    pub fn bind() -> std::io::Result<Server> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        Ok(Server {
            url: format!("http://127.0.0.1:{port}"),
            listener: Some((listener, port)),
            running: None,
        })
    }

    /// Starts answering with `state`.
    pub fn serve<H: Handler>(&mut self, state: Arc<Mutex<Journaled<H>>>) {
        let (listener, port) = self.listener.take().expect("a stub server is started once");
        let stop = Arc::new(AtomicBool::new(false));
        let thread_stop = Arc::clone(&stop);
        let handle = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if thread_stop.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let state = Arc::clone(&state);
                std::thread::spawn(move || {
                    let _ = serve(stream, &state);
                });
            }
        });
        self.running = Some((handle, stop, port));
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some((handle, stop, port)) = self.running.take() {
            stop.store(true, Ordering::Relaxed);
            let _ = TcpStream::connect(("127.0.0.1", port));
            let _ = handle.join();
        }
    }
}

fn serve<H: Handler>(stream: TcpStream, state: &Mutex<Journaled<H>>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let target = parts.next().unwrap_or_default().to_owned();
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = header.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    let length = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let body = String::from_utf8_lossy(&body).into_owned();
    let (status, extra, text) = {
        let mut state = state.lock().unwrap();
        let request = Recorded {
            method,
            target,
            headers,
            body,
            at: state.started.elapsed(),
        };
        state.journal.push(request.clone());
        state.state.answer(&request)
    };
    let mut out = format!(
        "HTTP/1.1 {status} {}\r\nContent-Length: {}\r\nConnection: close\r\n",
        reason(status),
        text.len()
    );
    if !text.is_empty() {
        out.push_str("Content-Type: application/json\r\n");
    }
    for (k, v) in extra {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(&text);
    let mut stream = stream;
    stream.write_all(out.as_bytes())?;
    stream.flush()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        _ => "Status",
    }
}

/// Whether the request carries `Authorization: Bearer <token>`.
pub fn authorised(headers: &[(String, String)], token: &str) -> bool {
    headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("authorization") && *v == format!("Bearer {token}"))
}

/// Rate-limit headers as a service spells them: `prefix` is Render's `Ratelimit` or Supabase's
/// `X-RateLimit`.
pub fn rate_headers(
    prefix: &str,
    limit: u32,
    remaining: u32,
    reset: impl ToString,
) -> Vec<(String, String)> {
    vec![
        (format!("{prefix}-Limit"), limit.to_string()),
        (format!("{prefix}-Remaining"), remaining.to_string()),
        (format!("{prefix}-Reset"), reset.to_string()),
    ]
}
