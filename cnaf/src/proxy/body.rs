//! Request bodies: read the inspected prefix, then forward prefix + the rest as one stream.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};

use super::tail::Tail;

/// The first bytes of a body (at least `limit` of them when the body is that long), and what is
/// left of it.
pub(crate) struct Prefix {
    pub bytes: Bytes,
    pub trailers: Option<HeaderMap>,
    /// `None` when the body ended inside the prefix.
    pub rest: Option<Incoming>,
}

/// Read frames until `limit` bytes are buffered or the body ends.
pub(crate) async fn read_prefix(mut body: Incoming, limit: usize) -> Result<Prefix, hyper::Error> {
    let mut buf = BytesMut::new();
    let mut trailers = None;
    if body.is_end_stream() {
        return Ok(Prefix {
            bytes: Bytes::new(),
            trailers,
            rest: None,
        });
    }
    while buf.len() < limit {
        match body.frame().await {
            None => {
                return Ok(Prefix {
                    bytes: buf.freeze(),
                    trailers,
                    rest: None,
                })
            }
            Some(frame) => {
                let frame = frame?;
                match frame.into_data() {
                    Ok(data) => buf.extend_from_slice(&data),
                    Err(frame) => {
                        if let Ok(t) = frame.into_trailers() {
                            trailers = Some(t);
                        }
                    }
                }
                if body.is_end_stream() {
                    return Ok(Prefix {
                        bytes: buf.freeze(),
                        trailers,
                        rest: None,
                    });
                }
            }
        }
    }
    Ok(Prefix {
        bytes: buf.freeze(),
        trailers,
        rest: Some(body),
    })
}

/// Why forwarding a body stopped before its end.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ForwardError {
    #[error("reading the client's body failed: {0}")]
    Client(#[source] hyper::Error),
    #[error("the body carries an attack past the inspected prefix; upload stopped")]
    Blocked,
}

/// The body sent upstream: the buffered prefix, then the unread rest, byte for byte, the rest
/// inspected on the way when a [`Tail`] is attached.
pub(crate) struct Forwarded {
    prefix: Option<Bytes>,
    trailers: Option<HeaderMap>,
    rest: Option<Incoming>,
    tail: Option<Arc<Tail>>,
}

impl Forwarded {
    pub(crate) fn new(p: Prefix, tail: Option<Arc<Tail>>) -> Forwarded {
        Forwarded {
            prefix: (!p.bytes.is_empty()).then_some(p.bytes),
            trailers: p.trailers,
            rest: p.rest,
            tail,
        }
    }
}

impl Body for Forwarded {
    type Data = Bytes;
    type Error = ForwardError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ForwardError>>> {
        if let Some(b) = self.prefix.take() {
            return Poll::Ready(Some(Ok(Frame::data(b))));
        }
        if let Some(rest) = self.rest.as_mut() {
            match Pin::new(rest).poll_frame(cx) {
                Poll::Ready(None) => self.rest = None,
                Poll::Ready(Some(Ok(frame))) => {
                    let stop = match (&self.tail, frame.data_ref()) {
                        (Some(tail), Some(data)) => tail.check(data),
                        _ => false,
                    };
                    if stop {
                        self.rest = None;
                        return Poll::Ready(Some(Err(ForwardError::Blocked)));
                    }
                    return Poll::Ready(Some(Ok(frame)));
                }
                Poll::Ready(Some(Err(e))) => {
                    return Poll::Ready(Some(Err(ForwardError::Client(e))))
                }
                Poll::Pending => return Poll::Pending,
            }
        }
        if let Some(t) = self.trailers.take() {
            return Poll::Ready(Some(Ok(Frame::trailers(t))));
        }
        Poll::Ready(None)
    }

    fn is_end_stream(&self) -> bool {
        self.prefix.is_none()
            && self.trailers.is_none()
            && self.rest.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        let pre = self.prefix.as_ref().map_or(0, |b| b.len() as u64);
        match &self.rest {
            None => SizeHint::with_exact(pre),
            Some(r) => {
                let h = r.size_hint();
                let mut s = SizeHint::new();
                s.set_lower(h.lower() + pre);
                if let Some(u) = h.upper() {
                    s.set_upper(u + pre);
                }
                s
            }
        }
    }
}
