//! An SSE response body whose events answering listing requests are filtered
//! ([`FilteredSse`]), forwarded event by event as they arrive.
//!
//! Only responses to POSTs that asked for a listing are wrapped. Events are passed on
//! byte for byte unless they answer a pending listing; once every listing has been answered,
//! the rest of the stream passes through untouched, frame by frame.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use serde_json::Value;

use crate::listing::Pending;

/// The error type of the wrapped body.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// An SSE event larger than the limit while a listing answer is awaited.
#[derive(Debug)]
struct EventTooLarge;

impl std::fmt::Display for EventTooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an SSE event from the upstream exceeds the listing size limit")
    }
}

impl std::error::Error for EventTooLarge {}

pin_project! {
    /// An upstream SSE body with the answers to `pending` filtered.
    pub(crate) struct FilteredSse<B> {
        #[pin]
        inner: B,
        pending: Pending,
        buf: BytesMut,
        max_event: usize,
    }
}

impl<B> FilteredSse<B> {
    /// Wraps `inner`; an event longer than `max_event` bytes ends the stream with an error
    /// (an answer that cannot be filtered is never passed on).
    pub(crate) fn new(inner: B, pending: Pending, max_event: usize) -> Self {
        Self {
            inner,
            pending,
            buf: BytesMut::new(),
            max_event,
        }
    }
}

impl<B> Body for FilteredSse<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut this = self.project();
        loop {
            if this.pending.is_done() && this.buf.is_empty() {
                // Every listing answered: the rest of the stream as it comes.
                return this
                    .inner
                    .as_mut()
                    .poll_frame(cx)
                    .map(|f| f.map(|r| r.map_err(Into::into)));
            }
            let out = drain_events(this.buf, this.pending);
            if !out.is_empty() {
                return Poll::Ready(Some(Ok(Frame::data(out))));
            }
            match ready!(this.inner.as_mut().poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => {
                        this.buf.extend_from_slice(&data);
                        if this.buf.len() > *this.max_event && event_end(this.buf).is_none() {
                            this.buf.clear();
                            return Poll::Ready(Some(Err(Box::new(EventTooLarge))));
                        }
                    }
                    // Trailers: whatever is buffered first (an unfinished event, as it is).
                    Err(frame) => {
                        if this.buf.is_empty() {
                            return Poll::Ready(Some(Ok(frame)));
                        }
                        // The trailers are dropped: an SSE stream has none worth a reorder.
                        let rest = this.buf.split().freeze();
                        return Poll::Ready(Some(Ok(Frame::data(rest))));
                    }
                },
                Some(Err(e)) => return Poll::Ready(Some(Err(e.into()))),
                None => {
                    if this.buf.is_empty() {
                        return Poll::Ready(None);
                    }
                    // An unfinished last event: no client dispatches it; passed on as it is
                    // only when it cannot be a listing answer.
                    let rest = this.buf.split().freeze();
                    if this.pending.is_done() {
                        return Poll::Ready(Some(Ok(Frame::data(rest))));
                    }
                    return Poll::Ready(None);
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.buf.is_empty() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// Takes every complete event off `buf`, filtered, as the bytes to send; once nothing is
/// pending, the rest of `buf` too.
fn drain_events(buf: &mut BytesMut, pending: &mut Pending) -> Bytes {
    let mut out = BytesMut::new();
    while !pending.is_done() {
        let Some(end) = event_end(buf) else { break };
        let event = buf.split_to(end);
        match rewrite_event(&event, pending) {
            Some(new) => out.extend_from_slice(&new),
            None => out.extend_from_slice(&event),
        }
    }
    if pending.is_done() {
        out.extend_from_slice(&buf.split());
    }
    out.freeze()
}

/// The length of the first complete event in `buf` (through the blank line that ends it),
/// with lines ended by CRLF, LF or CR (the SSE grammar). A CR at the very end may be the start
/// of a CRLF, so it waits for the next byte.
fn event_end(buf: &[u8]) -> Option<usize> {
    let mut line_empty = true;
    let mut i = 0;
    while let Some(&b) = buf.get(i) {
        let terminator = match b {
            b'\n' => 1,
            b'\r' => match buf.get(i + 1) {
                Some(b'\n') => 2,
                Some(_) => 1,
                None => return None,
            },
            _ => {
                line_empty = false;
                i += 1;
                continue;
            }
        };
        i += terminator;
        if line_empty {
            return Some(i);
        }
        line_empty = true;
    }
    None
}

/// The lines of an event, without their terminators.
fn lines(event: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while let Some(&b) = event.get(i) {
        if b == b'\n' || b == b'\r' {
            out.push(event.get(start..i).unwrap_or_default());
            i += if b == b'\r' && event.get(i + 1) == Some(&b'\n') {
                2
            } else {
                1
            };
            start = i;
        } else {
            i += 1;
        }
    }
    if start < event.len() {
        out.push(event.get(start..).unwrap_or_default());
    }
    out
}

/// The value of a `data` field line, if it is one (`data:x`, `data: x`, or bare `data`).
fn data_value(line: &[u8]) -> Option<&[u8]> {
    if line == b"data" {
        return Some(b"");
    }
    let rest = line.strip_prefix(b"data:")?;
    Some(rest.strip_prefix(b" ").unwrap_or(rest))
}

/// The event rewritten when its data answers a pending listing (one JSON line of data, the
/// other fields kept in order); `None` to pass it on as it is.
fn rewrite_event(event: &[u8], pending: &mut Pending) -> Option<Vec<u8>> {
    let lines = lines(event);
    let mut data = Vec::new();
    let mut any = false;
    for value in lines.iter().filter_map(|l| data_value(l)) {
        if any {
            data.push(b'\n');
        }
        data.extend_from_slice(value);
        any = true;
    }
    if !any {
        return None;
    }
    let mut message: Value = serde_json::from_slice(&data).ok()?;
    let changed = match &mut message {
        Value::Array(batch) => {
            let mut c = false;
            for m in batch {
                c |= pending.filter_message(m);
            }
            c
        }
        single => pending.filter_message(single),
    };
    if !changed {
        return None;
    }
    let json = message.to_string();
    let mut out = Vec::with_capacity(event.len());
    let mut data_written = false;
    for line in lines.iter().filter(|l| !l.is_empty()) {
        if data_value(line).is_some() {
            if !data_written {
                out.extend_from_slice(b"data: ");
                out.extend_from_slice(json.as_bytes());
                out.push(b'\n');
                data_written = true;
            }
        } else {
            out.extend_from_slice(line);
            out.push(b'\n');
        }
    }
    out.push(b'\n');
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use http_body_util::BodyExt;
    use mcp_auth::scope::{Requirement, ScopePolicy, Unlisted};
    use mcp_auth::{AuthContext, AuthMethod};
    use serde_json::json;

    fn pending(id: u64) -> Pending {
        let policy = Arc::new(
            ScopePolicy::new(Unlisted::Deny)
                .unlisted_methods(Unlisted::Allow)
                .tool("read_data", Requirement::all(["data:read"]))
                .tool("delete_data", Requirement::all(["data:admin"])),
        );
        let ctx = AuthContext::builder("r", AuthMethod::Bearer)
            .scopes(["data:read"])
            .build();
        let req = json!({"jsonrpc":"2.0","id":id,"method":"tools/list"}).to_string();
        Pending::from_request(req.as_bytes(), &ctx, &policy).unwrap()
    }

    fn listing(id: u64) -> String {
        json!({"jsonrpc":"2.0","id":id,"result":{"tools":[
            {"name":"read_data"},{"name":"delete_data"}]}})
        .to_string()
    }

    /// A body that yields `chunks` one frame each.
    struct Chunks(std::collections::VecDeque<&'static [u8]>);

    impl Body for Chunks {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            Poll::Ready(
                self.0
                    .pop_front()
                    .map(|c| Ok(Frame::data(Bytes::from_static(c)))),
            )
        }
    }

    /// Feeds `chunks` through the filter; the frames that came out.
    async fn run(chunks: Vec<&'static [u8]>, p: Pending) -> Vec<Result<Bytes, String>> {
        let mut body = FilteredSse::new(Chunks(chunks.into()), p, 1024);
        let mut out = Vec::new();
        while let Some(frame) = body.frame().await {
            out.push(
                frame
                    .map(|f| f.into_data().unwrap_or_default())
                    .map_err(|e| e.to_string()),
            );
        }
        out
    }

    fn text(frames: &[Result<Bytes, String>]) -> String {
        frames
            .iter()
            .map(|f| String::from_utf8(f.clone().unwrap().to_vec()).unwrap())
            .collect()
    }

    #[tokio::test]
    async fn the_answer_event_is_filtered_and_other_events_pass_byte_for_byte() {
        let progress: &'static [u8] =
            b"event: message\r\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\r\n\r\n";
        let answer = format!("id: 9\r\nevent: message\r\ndata: {}\r\n\r\n", listing(3));
        let answer: &'static [u8] = Box::leak(answer.into_bytes().into_boxed_slice());
        let after: &'static [u8] = b"data: {\"tools\":[{\"name\":\"delete_data\"}]}\n\n";
        let frames = run(vec![progress, answer, after], pending(3)).await;
        let all = text(&frames);
        assert!(
            all.starts_with(std::str::from_utf8(progress).unwrap()),
            "{all}"
        );
        assert!(all.contains("id: 9\nevent: message\ndata: {"), "{all}");
        assert!(
            !all[..all.len() - after.len()].contains("delete_data"),
            "{all}"
        );
        assert!(
            all.ends_with(std::str::from_utf8(after).unwrap()),
            "passthrough after"
        );
        assert_eq!(frames.len(), 3, "one frame per event, as they come");
    }

    #[tokio::test]
    async fn an_event_split_across_chunks_is_reassembled() {
        let answer = format!("data: {}\n\n", listing(5));
        let (a, b) = answer.split_at(20);
        let a: &'static [u8] = Box::leak(a.as_bytes().to_vec().into_boxed_slice());
        let b: &'static [u8] = Box::leak(b.as_bytes().to_vec().into_boxed_slice());
        let all = text(&run(vec![a, b"", b], pending(5)).await);
        assert!(
            all.contains("read_data") && !all.contains("delete_data"),
            "{all}"
        );
        assert!(all.ends_with("\n\n"));
    }

    #[tokio::test]
    async fn an_oversized_event_ends_the_stream_with_an_error() {
        let big: &'static [u8] = Box::leak(vec![b'x'; 2000].into_boxed_slice());
        let frames = run(vec![b"data: ", big], pending(1)).await;
        assert!(frames.last().unwrap().is_err(), "{frames:?}");
        assert!(
            frames
                .iter()
                .all(|f| f.as_ref().map_or(true, |b| b.is_empty()))
        );
    }

    #[tokio::test]
    async fn an_unfinished_answer_at_the_end_is_not_passed_on() {
        let answer = format!("data: {}", listing(4));
        let answer: &'static [u8] = Box::leak(answer.into_bytes().into_boxed_slice());
        let frames = run(vec![answer], pending(4)).await;
        assert!(frames.is_empty(), "{frames:?}");
    }

    #[test]
    fn event_boundaries_follow_the_sse_grammar() {
        assert_eq!(event_end(b"data: a\n\nrest"), Some(9));
        assert_eq!(event_end(b"data: a\r\n\r\nrest"), Some(11));
        assert_eq!(event_end(b"data: a\r\rrest"), Some(9));
        assert_eq!(event_end(b"data: a\r\n\r"), None, "a CR at the end waits");
        assert_eq!(event_end(b"data: a\ndata: b\n"), None);
        assert_eq!(event_end(b"\n"), Some(1));
        assert_eq!(data_value(b"data:x"), Some(&b"x"[..]));
        assert_eq!(data_value(b"data:  x"), Some(&b" x"[..]));
        assert_eq!(data_value(b"data"), Some(&b""[..]));
        assert_eq!(data_value(b"database: x"), None);
    }

    #[test]
    fn multi_line_data_is_joined_before_parsing() {
        let mut p = pending(8);
        let event = "data: {\"jsonrpc\":\"2.0\",\ndata: \"id\":8,\"result\":{\"tools\":[{\"name\":\"delete_data\"}]}}\n\n";
        let out = rewrite_event(event.as_bytes(), &mut p).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert_eq!(
            out,
            "data: {\"id\":8,\"jsonrpc\":\"2.0\",\"result\":{\"cacheScope\":\"private\",\"tools\":[]}}\n\n"
        );
    }
}
