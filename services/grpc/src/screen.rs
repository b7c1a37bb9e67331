//! What a call must pass before its message is read: a known key allowed the RPC (when keys are
//! checked), and a message no larger than its RPC takes. tonic decodes a whole message before a
//! handler runs, and the transport's limit is IngestDocument's (80 MiB): without this, a caller
//! with no key could make the service buffer 80 MiB per stream, on as many streams as it opens.
//! Refusals here are counted and audited like any other call's.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http_body::{Body as _, Frame};
use rag_auth::{Action, Gate};
use rag_proto::v1::rag_service_server::RagServiceServer;
use tonic::body::Body;
use tonic::codegen::{Bytes, http};
use tonic::metadata::MetadataMap;
use tonic::server::NamedService;

use rag_api::ApiError;

use crate::observe::Call;
use crate::service::{Service, request_limit};
use crate::status::status;

/// The rag service behind the screen.
#[derive(Clone)]
pub struct Screened {
    inner: RagServiceServer<Service>,
    gate: Arc<Gate>,
}

impl Screened {
    pub fn new(inner: RagServiceServer<Service>, gate: Arc<Gate>) -> Self {
        Self { inner, gate }
    }
}

impl NamedService for Screened {
    const NAME: &'static str = <RagServiceServer<Service> as NamedService>::NAME;
}

/// The RPC a path names, and what it does (for the key's role and the size limit).
fn rpc(path: &str) -> Option<(&'static str, Action)> {
    let method = path.strip_prefix('/')?.strip_prefix(Screened::NAME)?;
    Some(match method {
        "/Search" => ("Search", Action::Search),
        "/Ask" => ("Ask", Action::Ask),
        "/IngestDocument" => ("IngestDocument", Action::Ingest),
        "/DeleteDocument" => ("DeleteDocument", Action::Delete),
        "/IndexStats" => ("IndexStats", Action::Stats),
        "/Reindex" => ("Reindex", Action::Reindex),
        _ => return None,
    })
}

/// The gRPC message header: a compression flag and the message's length (big-endian).
const HEADER_BYTES: usize = 5;

impl tonic::codegen::Service<http::Request<Body>> for Screened {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future =
        Pin<Box<dyn std::future::Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let mut inner = self.inner.clone();
        let gate = self.gate.clone();
        Box::pin(async move {
            let Some((rpc, action)) = rpc(request.uri().path()) else {
                // An unknown method: tonic answers UNIMPLEMENTED without reading it.
                return inner.call(request).await;
            };
            let (parts, mut body) = request.into_parts();
            let probe = tonic::Request::from_parts(
                MetadataMap::from_headers(parts.headers.clone()),
                Default::default(),
                (),
            );
            let refuse = |error: ApiError| {
                let call = Call::start(rpc, &probe);
                // A known key that may not do this is named in the audit line, as in `admit`.
                if let ApiError::Auth(a) = &error
                    && let Some(key_id) = a.key_id()
                {
                    call.set_key(key_id.to_owned());
                }
                Ok(call.fail(status(error)).into_http())
            };
            if let Err(e) = gate.screen(crate::service::bearer(&probe), action) {
                return refuse(ApiError::Auth(e));
            }
            let mut read = VecDeque::new();
            let size = match message_size(&mut body, &mut read).await {
                Ok(size) => size,
                // The client went away or broke the stream: nothing to answer it with but
                // what tonic would say on reading the same body.
                Err(status) => return Ok(status.into_http()),
            };
            let limit = request_limit(action);
            if let Some(size) = size.filter(|&size| size > limit) {
                return refuse(ApiError::TooLarge { rpc, size, limit });
            }
            let body = Body::new(Replay { read, rest: body });
            inner.call(http::Request::from_parts(parts, body)).await
        })
    }
}

/// Reads the body until the first message's header is in, keeping every frame read in `read`;
/// the length the header declares (`None` for a body that ends sooner).
async fn message_size(
    body: &mut Body,
    read: &mut VecDeque<Frame<Bytes>>,
) -> Result<Option<usize>, tonic::Status> {
    let mut header = Vec::with_capacity(HEADER_BYTES);
    while header.len() < HEADER_BYTES {
        let frame = std::future::poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)).await;
        let Some(frame) = frame.transpose()? else {
            return Ok(None);
        };
        if let Some(data) = frame.data_ref() {
            let wanted = HEADER_BYTES - header.len();
            header.extend_from_slice(&data[..wanted.min(data.len())]);
        }
        let trailers = frame.is_trailers();
        read.push_back(frame);
        if trailers {
            return Ok(None);
        }
    }
    let length = u32::from_be_bytes([header[1], header[2], header[3], header[4]]);
    Ok(Some(length as usize))
}

/// The frames read while screening, then the rest of the body.
struct Replay {
    read: VecDeque<Frame<Bytes>>,
    rest: Body,
}

impl http_body::Body for Replay {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Some(frame) = self.read.pop_front() {
            return Poll::Ready(Some(Ok(frame)));
        }
        Pin::new(&mut self.rest).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.read.is_empty() && self.rest.is_end_stream()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rpc_of_the_service_is_screened() {
        assert_eq!(
            rpc("/rag.v1.RagService/Search"),
            Some(("Search", Action::Search))
        );
        assert_eq!(
            rpc("/rag.v1.RagService/IngestDocument"),
            Some(("IngestDocument", Action::Ingest))
        );
        assert_eq!(rpc("/rag.v1.RagService/Nope"), None);
        assert_eq!(rpc("/grpc.health.v1.Health/Check"), None);
        // The proto's service is what the paths name.
        assert_eq!(Screened::NAME, "rag.v1.RagService");
    }

    #[tokio::test]
    async fn the_declared_length_is_read_without_the_message() {
        // A header declaring 60 MB, and only the first bytes of the message.
        let mut frame = vec![0u8];
        frame.extend_from_slice(&(60_000_000u32).to_be_bytes());
        frame.extend_from_slice(b"abc");
        let chunks: Vec<Result<Frame<Bytes>, Infallible>> = vec![
            Ok(Frame::data(Bytes::copy_from_slice(&frame[..2]))),
            Ok(Frame::data(Bytes::copy_from_slice(&frame[2..]))),
        ];
        let mut body = Body::new(http_body_util_stream(chunks));
        let mut read = VecDeque::new();
        let size = message_size(&mut body, &mut read).await.unwrap();
        assert_eq!(size, Some(60_000_000));
        // What was read is replayed whole.
        let mut replay = Replay { read, rest: body };
        let mut bytes = Vec::new();
        while let Some(frame) =
            std::future::poll_fn(|cx| Pin::new(&mut replay).poll_frame(cx)).await
        {
            bytes.extend_from_slice(frame.unwrap().data_ref().unwrap());
        }
        assert_eq!(bytes, frame);
    }

    /// A body of the given frames.
    fn http_body_util_stream(
        frames: Vec<Result<Frame<Bytes>, Infallible>>,
    ) -> impl http_body::Body<Data = Bytes, Error = Infallible> + Send + 'static {
        struct Frames(VecDeque<Result<Frame<Bytes>, Infallible>>);
        impl http_body::Body for Frames {
            type Data = Bytes;
            type Error = Infallible;
            fn poll_frame(
                mut self: Pin<&mut Self>,
                _cx: &mut Context<'_>,
            ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
                Poll::Ready(self.0.pop_front())
            }
        }
        Frames(frames.into())
    }
}
