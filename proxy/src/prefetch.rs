//! [`gather`]: the part of an upstream answer that is already there when its head is, so that
//! head and body leave in one write.
//!
//! hyper hands a response body over frame by frame from the upstream connection's task, and
//! the server side writes to the socket whenever the next frame is not ready yet. An MCP
//! answer of a few SSE events, which the upstream sends in one segment, thus left the proxy
//! in three writes (head and first event, second event, end of the chunked body), each waking
//! the client. [`gather`] takes the frames that are already waiting (letting the connection's
//! task run once when none is ready: it is the one about to hand them over) and stops at the
//! first that is not, or at [`GATHER_MAX`] bytes. Nothing waits for data still to come: a
//! long-lived stream's head leaves as soon as its first pass finds nothing, and later events
//! stream through as they arrive.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

/// Most bytes held back to be written with the head.
pub(crate) const GATHER_MAX: usize = 64 * 1024;

/// How many scheduler passes without a new frame [`gather`] allows before it stops.
const IDLE_PASSES: u8 = 1;

/// An answer's first frames, and the rest of it still to stream.
pub(crate) struct Prefetched<B> {
    frames: VecDeque<Frame<Bytes>>,
    rest: Option<B>,
    error: Option<Box<dyn std::error::Error + Send + Sync>>,
}

/// Takes from `body` the frames that are ready now (see the module's documentation).
pub(crate) async fn gather<B>(body: B) -> Prefetched<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut out = Prefetched {
        frames: VecDeque::new(),
        rest: Some(body),
        error: None,
    };
    let mut bytes = 0usize;
    let mut idle = 0u8;
    std::future::poll_fn(|cx| {
        while bytes < GATHER_MAX {
            let Some(rest) = out.rest.as_mut() else {
                return Poll::Ready(());
            };
            match Pin::new(rest).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    bytes += frame.data_ref().map_or(0, Bytes::len);
                    out.frames.push_back(frame);
                    idle = 0;
                }
                Poll::Ready(Some(Err(e))) => {
                    out.error = Some(e.into());
                    out.rest = None;
                }
                Poll::Ready(None) => out.rest = None,
                Poll::Pending if idle < IDLE_PASSES => {
                    // Once round the scheduler: the upstream connection's task, just woken by
                    // the frame taken above, hands over the next one if it has it.
                    idle += 1;
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                Poll::Pending => return Poll::Ready(()),
            }
        }
        Poll::Ready(())
    })
    .await;
    out
}

impl<B> Body for Prefetched<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if let Some(frame) = this.frames.pop_front() {
            return Poll::Ready(Some(Ok(frame)));
        }
        if let Some(e) = this.error.take() {
            return Poll::Ready(Some(Err(e)));
        }
        let Some(rest) = this.rest.as_mut() else {
            return Poll::Ready(None);
        };
        match Pin::new(rest).poll_frame(cx) {
            Poll::Ready(None) => {
                this.rest = None;
                Poll::Ready(None)
            }
            Poll::Ready(Some(r)) => Poll::Ready(Some(r.map_err(Into::into))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.frames.is_empty()
            && self.error.is_none()
            && self.rest.as_ref().is_none_or(B::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        let held: u64 = self
            .frames
            .iter()
            .filter_map(|f| f.data_ref().map(|d| d.len() as u64))
            .sum();
        match (&self.rest, &self.error) {
            // The whole answer is here (and no trailers): its length is known.
            (None, None) if self.frames.iter().all(Frame::is_data) => SizeHint::with_exact(held),
            (None, _) => SizeHint::new(),
            (Some(rest), _) => {
                let inner = rest.size_hint();
                let mut hint = SizeHint::new();
                hint.set_lower(inner.lower().saturating_add(held));
                if let Some(upper) = inner.upper() {
                    hint.set_upper(upper.saturating_add(held));
                }
                hint
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use http_body_util::BodyExt;
    use tokio::sync::mpsc;

    use super::*;

    /// A body fed through a channel, as hyper's `Incoming` is fed by its connection's task.
    struct Fed(mpsc::Receiver<Result<Frame<Bytes>, std::io::Error>>);

    impl Body for Fed {
        type Data = Bytes;
        type Error = std::io::Error;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
            self.0.poll_recv(cx)
        }
    }

    fn fed() -> (mpsc::Sender<Result<Frame<Bytes>, std::io::Error>>, Fed) {
        let (tx, rx) = mpsc::channel(1024);
        (tx, Fed(rx))
    }

    fn data(s: &'static str) -> Result<Frame<Bytes>, std::io::Error> {
        Ok(Frame::data(Bytes::from_static(s.as_bytes())))
    }

    #[tokio::test]
    async fn an_answer_already_here_is_gathered_whole_with_its_length() {
        let (tx, body) = fed();
        tx.send(data("event: one\n\n")).await.unwrap();
        tx.send(data("event: two\n\n")).await.unwrap();
        drop(tx);
        let got = gather(body).await;
        assert!(got.rest.is_none(), "the end was already there");
        assert_eq!(got.frames.len(), 2);
        assert_eq!(got.size_hint().exact(), Some(24));
        let bytes = got.collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"event: one\n\nevent: two\n\n");
    }

    #[tokio::test]
    async fn gathering_never_waits_for_data_still_to_come() {
        let (tx, body) = fed();
        tx.send(data("first\n\n")).await.unwrap();
        let late = tx.clone();
        let sender = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            late.send(data("second\n\n")).await.unwrap();
        });
        drop(tx);
        let started = Instant::now();
        let mut got = gather(body).await;
        assert!(
            started.elapsed() < Duration::from_millis(150),
            "gather waited {:?} for a frame that was not there",
            started.elapsed()
        );
        assert_eq!(got.frames.len(), 1);
        assert_eq!(got.size_hint().exact(), None, "more may come");
        assert!(!got.is_end_stream());
        // The held frame first, then the late one as it arrives, then the end.
        let first = got.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(&first[..], b"first\n\n");
        let second = got.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(&second[..], b"second\n\n");
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert!(got.frame().await.is_none());
        sender.await.unwrap();
    }

    #[tokio::test]
    async fn an_endless_ready_stream_is_held_back_at_most_gather_max() {
        let (tx, body) = fed();
        let chunk = Bytes::from(vec![b'x'; 1000]);
        for _ in 0..200 {
            tx.send(Ok(Frame::data(chunk.clone()))).await.unwrap();
        }
        let got = gather(body).await;
        let held: usize = got
            .frames
            .iter()
            .filter_map(|f| f.data_ref())
            .map(Bytes::len)
            .sum();
        assert!(
            (GATHER_MAX..GATHER_MAX + 1000).contains(&held),
            "held {held} bytes"
        );
        assert!(got.rest.is_some(), "the rest still streams");
        drop(tx);
        let total = got.collect().await.unwrap().to_bytes();
        assert_eq!(
            total.len(),
            200 * 1000,
            "every byte arrives, held ones first"
        );
    }

    #[tokio::test]
    async fn an_error_comes_after_the_frames_before_it() {
        let (tx, body) = fed();
        tx.send(data("ok\n\n")).await.unwrap();
        tx.send(Err(std::io::Error::other("upstream reset")))
            .await
            .unwrap();
        drop(tx);
        let mut got = gather(body).await;
        assert_eq!(
            got.size_hint().exact(),
            None,
            "a failed answer has no known length"
        );
        let first = got.frame().await.unwrap().unwrap();
        assert_eq!(first.into_data().unwrap(), Bytes::from_static(b"ok\n\n"));
        let err = got.frame().await.unwrap().unwrap_err();
        assert!(err.to_string().contains("upstream reset"));
        assert!(got.frame().await.is_none());
    }

    #[tokio::test]
    async fn trailers_pass_and_leave_the_length_unknown() {
        let (tx, body) = fed();
        tx.send(data("ok")).await.unwrap();
        let mut trailers = http::HeaderMap::new();
        trailers.insert("x-check", http::HeaderValue::from_static("1"));
        tx.send(Ok(Frame::trailers(trailers))).await.unwrap();
        drop(tx);
        let got = gather(body).await;
        assert_eq!(got.size_hint().exact(), None);
        let collected = got.collect().await.unwrap();
        assert_eq!(collected.trailers().unwrap()["x-check"], "1");
    }
}
