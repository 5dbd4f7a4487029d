//! Reading and writing codec frames on byte streams (QUIC streams, sockets): the async edge
//! of `piface_shared::codec`.

use bytes::BytesMut;
use piface_shared::codec::{decode_frame, encode_frame, CodecError, MAX_FRAME_LEN};
use serde::{de::DeserializeOwned, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Reads frames from a stream.
pub struct FrameReader<R> {
    inner: R,
    buf: BytesMut,
    max: usize,
}

/// Why reading a frame failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The stream failed.
    #[error("stream: {0}")]
    Io(#[from] std::io::Error),
    /// The stream ended in the middle of a frame.
    #[error("stream ended inside a frame")]
    Truncated,
    /// A frame's length is over the limit; nothing after it can be trusted.
    #[error("{0}")]
    Fatal(CodecError),
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// A reader over `inner` taking frames up to the codec's limit.
    pub fn new(inner: R) -> FrameReader<R> {
        FrameReader::with_limit(inner, MAX_FRAME_LEN)
    }

    /// A reader over `inner` for which a frame longer than `max` bytes is fatal, decided from
    /// its length prefix before any of it is buffered.
    pub fn with_limit(inner: R, max: usize) -> FrameReader<R> {
        let max = max.min(MAX_FRAME_LEN);
        FrameReader { inner, buf: BytesMut::with_capacity((64 * 1024).min(max + 4)), max }
    }

    /// Changes the largest frame from here on (a stream's header decides what follows).
    pub fn set_limit(&mut self, max: usize) {
        self.max = max.min(MAX_FRAME_LEN);
    }

    /// Stops reading: gives back the stream (bytes already buffered are dropped).
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// The next message; `Ok(None)` at a clean end of stream. Frames that do not decode (a
    /// newer peer's message type) are logged and skipped.
    pub async fn next<T: DeserializeOwned>(&mut self) -> Result<Option<T>, ReadError> {
        loop {
            if let Some(prefix) = self.buf.get(..4) {
                let len = u32::from_be_bytes(prefix.try_into().expect("four bytes")) as usize;
                if len > self.max {
                    return Err(ReadError::Fatal(CodecError::FrameTooLarge { len }));
                }
            }
            match decode_frame::<T>(&mut self.buf) {
                Ok(Some(msg)) => return Ok(Some(msg)),
                Ok(None) => {}
                Err(e @ CodecError::Undecodable { .. }) => {
                    tracing::warn!("skipping a frame: {e}");
                    continue;
                }
                Err(e) => return Err(ReadError::Fatal(e)),
            }
            if self.buf.capacity() - self.buf.len() < 16 * 1024 {
                // Room for what can arrive next, never more than a frame this stream may hold.
                self.buf.reserve((64 * 1024).min(self.max + 4));
            }
            if self.inner.read_buf(&mut self.buf).await? == 0 {
                return if self.buf.is_empty() { Ok(None) } else { Err(ReadError::Truncated) };
            }
            debug_assert!(self.buf.len() <= MAX_FRAME_LEN + 4 + 64 * 1024);
        }
    }
}

/// Writes one message as a frame.
pub async fn write_frame<T: Serialize>(out: &mut (impl AsyncWrite + Unpin), msg: &T) -> std::io::Result<()> {
    let mut buf = BytesMut::new();
    encode_frame(msg, &mut buf).map_err(std::io::Error::other)?;
    out.write_all(&buf).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use piface_shared::protocol::{FromAgent, StreamHeader};

    #[tokio::test]
    async fn frames_cross_a_byte_stream_in_odd_pieces() {
        let (mut a, b) = tokio::io::duplex(7);
        let writer = tokio::spawn(async move {
            write_frame(&mut a, &StreamHeader::Session { session: "s".into() }).await.unwrap();
            write_frame(&mut a, &FromAgent::Notice { session: None, message: "x".repeat(100) }).await.unwrap();
        });
        let mut r = FrameReader::new(b);
        assert_eq!(r.next::<StreamHeader>().await.unwrap(), Some(StreamHeader::Session { session: "s".into() }));
        assert!(matches!(r.next::<FromAgent>().await.unwrap(), Some(FromAgent::Notice { .. })));
        writer.await.unwrap();
        assert!(r.next::<FromAgent>().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_stream_cut_inside_a_frame_is_an_error_and_garbage_lengths_are_fatal() {
        let mut r = FrameReader::new(&[0u8, 0, 0, 9, 1, 2][..]);
        assert!(matches!(r.next::<FromAgent>().await, Err(ReadError::Truncated)));
        let mut r = FrameReader::new(&[0xffu8, 0xff, 0xff, 0xff, 0][..]);
        assert!(matches!(r.next::<FromAgent>().await, Err(ReadError::Fatal(_))));
    }

    #[tokio::test]
    async fn a_stream_limit_refuses_a_long_frame_from_its_length_alone() {
        // 64 MiB announced, 3 bytes sent: refused at once, nothing reserved for it.
        let mut r = FrameReader::with_limit(&[0x04u8, 0, 0, 0, 1, 2, 3][..], 16 * 1024);
        assert!(matches!(r.next::<FromAgent>().await, Err(ReadError::Fatal(CodecError::FrameTooLarge { .. }))));
        assert!(r.buf.capacity() < 128 * 1024, "{}", r.buf.capacity());
        // A frame within the limit still reads.
        let mut bytes = BytesMut::new();
        encode_frame(&StreamHeader::Enroll, &mut bytes).unwrap();
        let mut r = FrameReader::with_limit(&bytes[..], 16);
        assert_eq!(r.next::<StreamHeader>().await.unwrap(), Some(StreamHeader::Enroll));
    }
}
