//! The HTTP/1 server under the router, with the limits a public service needs against hostile
//! clients: a deadline for a request's head (slowloris), a cap on open connections, a cap on the
//! head's size, and the contract's JSON error body on the errors hyper answers by itself.
//!
//! `axum::serve` offers none of these knobs, so this room drives hyper's connection builder
//! directly, one task per connection, as `axum::serve` does inside.

use std::{
    io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
    time::Duration,
};

use axum::Router;
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    service::TowerToHyperService,
};
use serde_json::json;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpListener,
    sync::{Semaphore, watch},
};

use crate::log;

/// What a connection may cost the server.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// From the moment the server waits for a request (a new connection, or a kept-alive one
    /// between requests) to the end of its head; past it the connection is closed.
    pub header_read_timeout: Duration,
    /// Open connections at most; beyond it new ones wait in the kernel's backlog.
    pub max_connections: usize,
    /// The request line and headers together, in bytes; beyond it a 431.
    pub max_head_bytes: usize,
}

impl Limits {
    /// The production figures (docs/service.md): a head within 10 s, 1024 connections, 64 KiB.
    pub const DEFAULT: Limits = Limits {
        header_read_timeout: Duration::from_secs(10),
        max_connections: 1024,
        max_head_bytes: 64 * 1024,
    };
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets open connections finish
/// their requests and returns once all are closed (the caller bounds that with a deadline).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (stop, stopped) = watch::channel(false);
    let accepting = async {
        loop {
            // A slot first, then a connection: at the cap, clients wait in the backlog rather
            // than being accepted and left unanswered.
            let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
                return;
            };
            let (stream, _) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors and similar: wait a moment rather than spin.
                    log::warn("accept failed", json!({ "error": err.to_string() }));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let service = TowerToHyperService::new(app.clone());
            let mut stopped = stopped.clone();
            tokio::spawn(async move {
                let _slot = slot;
                let mut builder = hyper::server::conn::http1::Builder::new();
                builder
                    .timer(TokioTimer::new())
                    .header_read_timeout(limits.header_read_timeout)
                    .max_buf_size(limits.max_head_bytes.max(8192))
                    .max_header_size(limits.max_head_bytes);
                let io = TokioIo::new(JsonErrors::new(stream));
                let connection = builder.serve_connection(io, service);
                tokio::pin!(connection);
                tokio::select! {
                    _ = connection.as_mut() => return,
                    _ = stopped.wait_for(|stop| *stop) => {}
                }
                // Draining: finish the request in flight, then close.
                connection.as_mut().graceful_shutdown();
                let _ = connection.await;
            });
        }
    };
    tokio::select! {
        () = accepting => {}
        () = shutdown => {}
    }
    drop(listener);
    let _ = stop.send(true);
    // Every connection holds a slot until it closes.
    let _ = slots.acquire_many(limits.max_connections as u32).await;
}

/// The connection's IO, with one rewrite on the way out: hyper answers a request head it cannot
/// parse (400), one too large (431) or a URI too long (414) by itself, with an empty body. This
/// gives those answers the contract's JSON error body and a request id.
struct JsonErrors<T> {
    inner: T,
    /// A rewritten response being written: its bytes, how many are written, and the length of
    /// hyper's original, which is what the write reports once all are out.
    pending: Option<(Vec<u8>, usize, usize)>,
}

impl<T> JsonErrors<T> {
    fn new(inner: T) -> Self {
        JsonErrors {
            inner,
            pending: None,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for JsonErrors<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for JsonErrors<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.pending.is_none() {
            match rewrite(buf) {
                Some(json) => this.pending = Some((json, 0, buf.len())),
                None => return Pin::new(&mut this.inner).poll_write(cx, buf),
            }
        }
        if let Some((bytes, written, original)) = &mut this.pending {
            while *written < bytes.len() {
                let n = ready!(Pin::new(&mut this.inner).poll_write(cx, &bytes[*written..]))?;
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                *written += n;
            }
            let original = *original;
            this.pending = None;
            return Poll::Ready(Ok(original));
        }
        Poll::Ready(Ok(0))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    // Not vectored: hyper then writes a response head as one buffer, which `rewrite` can see
    // whole.
    fn is_write_vectored(&self) -> bool {
        false
    }
}

/// The JSON replacement of hyper's own error answer, when `head` is one: a whole response head
/// with status 400, 414 or 431 and `content-length: 0`. The router's answers always have a body,
/// so an empty 4xx can only come from hyper.
fn rewrite(head: &[u8]) -> Option<Vec<u8>> {
    // Cheap tests first: this sees every write of every response.
    if head.len() > 1024 || !head.starts_with(b"HTTP/1.1 4") || !head.ends_with(b"\r\n\r\n") {
        return None;
    }
    let text = std::str::from_utf8(head).ok()?;
    let rest = text.strip_prefix("HTTP/1.1 ")?;
    if !text.ends_with("\r\n\r\n") || text.matches("\r\n\r\n").count() != 1 {
        return None;
    }
    let (error, detail) = match rest.get(..4)? {
        "400 " => (
            "invalid_request",
            "the request is not valid HTTP/1.1 (the request line or a header is malformed)",
        ),
        "414 " => ("uri_too_long", "the URI is longer than this API accepts"),
        "431 " => (
            "headers_too_large",
            "the request line and headers are larger than this API accepts (64 KiB)",
        ),
        _ => return None,
    };
    let mut lines = text.trim_end().split("\r\n");
    let status_line = lines.next()?;
    let headers: Vec<&str> = lines.collect();
    if !headers
        .iter()
        .any(|h| h.eq_ignore_ascii_case("content-length: 0"))
    {
        return None;
    }
    let request_id = crate::api::new_request_id();
    log::info(
        "request",
        json!({
            "request_id": request_id,
            "status": rest[..3].parse::<u16>().unwrap_or_default(),
            "refused_by": "http",
        }),
    );
    let body = json!({ "error": error, "detail": detail }).to_string();
    let mut out = format!("{status_line}\r\n");
    for header in headers {
        if !header.to_ascii_lowercase().starts_with("content-length:") {
            out.push_str(header);
            out.push_str("\r\n");
        }
    }
    out.push_str(&format!(
        "content-type: application/json\r\ncontent-length: {}\r\nx-request-id: {request_id}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    ));
    Some(out.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hypers_empty_error_answers_get_the_json_body() {
        let head = b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\ndate: Tue, 08 Dec 2026 02:00:00 GMT\r\n\r\n";
        let out = String::from_utf8(rewrite(head).unwrap()).unwrap();
        assert!(out.starts_with("HTTP/1.1 414 URI Too Long\r\n"), "{out}");
        assert!(out.contains("content-type: application/json\r\n"), "{out}");
        let (_, body) = out.split_once("\r\n\r\n").unwrap();
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["error"], "uri_too_long");
        assert!(out.contains(&format!("content-length: {}\r\n", body.len())));
        assert!(
            rewrite(b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n\r\n")
                .is_some()
        );
        // The router's own answers carry a body, and others pass untouched.
        assert!(rewrite(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 57\r\n\r\n").is_none());
        assert!(rewrite(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_none());
        assert!(rewrite(b"{\"items\":[]}").is_none());
    }
}
