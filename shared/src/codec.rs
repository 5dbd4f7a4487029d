//! The one codec for agent⇄coordinator frames: a 4-byte big-endian length, then the message
//! encoded with bincode 2 (standard config, through serde).
//!
//! Framing is separate from decoding on purpose: a frame whose length is sane but whose payload
//! does not decode (a message type added by a newer peer, a corrupt payload) is consumed and
//! reported as [`CodecError::Undecodable`], so the reader can log it and go on with the next
//! frame. Only a length over the limit is fatal for the stream, since nothing after it can be
//! trusted.
//!
//! Nothing a peer sends is allocated on its word: a frame's buffer grows only as its bytes
//! arrive (see [`decode_frame_limited`]), and every length inside a payload (a string, a byte
//! buffer) is checked against the bytes that are really there before it is copied
//! (`borrowing.rs`). A reader that expects small frames on a stream passes its own limit.

use bytes::{Buf, BufMut, BytesMut};
use serde::{de::DeserializeOwned, Serialize};

mod borrowing;

/// Largest payload accepted: pi lines may be 64 MiB, plus room for the envelope.
pub const MAX_FRAME_LEN: usize = 64 * 1024 * 1024 + 64 * 1024;

const LEN_PREFIX: usize = 4;

/// While a frame is incomplete, [`decode_frame_limited`] makes room for at most this much, or
/// for as much as the buffer already holds when that is more: the buffer at most doubles per
/// step, so it stays within about twice what the peer really sent (a frame that announces
/// 64 MiB and sends nothing costs 64 KiB), and a large frame still costs few reallocations.
pub const GROW_STEP: usize = 64 * 1024;

/// Errors of [`encode_frame`] and [`decode_frame`].
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The announced frame length is over the stream's limit (at most [`MAX_FRAME_LEN`]); the
    /// stream must be closed.
    #[error("frame of {len} bytes exceeds the stream's limit")]
    FrameTooLarge {
        /// The announced or attempted length.
        len: usize,
    },
    /// A complete frame whose payload is not a message this side knows. The frame was consumed;
    /// reading can go on.
    #[error("undecodable frame of {len} bytes: {reason}")]
    Undecodable {
        /// Payload length.
        len: usize,
        /// What bincode said.
        reason: String,
    },
    /// The message could not be encoded.
    #[error("cannot encode message: {0}")]
    Encode(String),
}

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// Appends one frame holding `msg` to `dst`.
pub fn encode_frame<T: Serialize>(msg: &T, dst: &mut BytesMut) -> Result<(), CodecError> {
    let start = dst.len();
    dst.put_u32(0);
    let mut writer = dst.writer();
    let written = bincode::serde::encode_into_std_write(msg, &mut writer, config())
        .map_err(|e| CodecError::Encode(e.to_string()));
    let dst = writer.into_inner();
    let len = match written {
        Ok(len) => len,
        Err(e) => {
            dst.truncate(start);
            return Err(e);
        }
    };
    if len > MAX_FRAME_LEN {
        dst.truncate(start);
        return Err(CodecError::FrameTooLarge { len });
    }
    dst[start..start + LEN_PREFIX].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(())
}

/// Takes one frame of up to [`MAX_FRAME_LEN`] bytes off the front of `src`; see
/// [`decode_frame_limited`].
pub fn decode_frame<T: DeserializeOwned>(src: &mut BytesMut) -> Result<Option<T>, CodecError> {
    decode_frame_limited(src, MAX_FRAME_LEN)
}

/// Takes one frame off the front of `src`, refusing a frame whose payload is over `max` bytes
/// (capped at [`MAX_FRAME_LEN`]) from its length prefix alone: `FrameTooLarge` is fatal for
/// the stream.
///
/// Returns `Ok(None)` when `src` does not yet hold a whole frame (read more and call again).
/// It then makes room in `src` for the next bytes, at most [`GROW_STEP`] or `src.len()`,
/// whichever is more, never the announced length. A complete frame whose payload does not
/// decode is consumed and reported as `Undecodable`: the stream can go on.
pub fn decode_frame_limited<T: DeserializeOwned>(src: &mut BytesMut, max: usize) -> Result<Option<T>, CodecError> {
    if src.len() < LEN_PREFIX {
        return Ok(None);
    }
    let len = u32::from_be_bytes([src[0], src[1], src[2], src[3]]) as usize;
    if len > max.min(MAX_FRAME_LEN) {
        return Err(CodecError::FrameTooLarge { len });
    }
    if src.len() < LEN_PREFIX + len {
        let missing = LEN_PREFIX + len - src.len();
        src.reserve(missing.min(src.len().max(GROW_STEP)));
        return Ok(None);
    }
    src.advance(LEN_PREFIX);
    let payload = src.split_to(len);
    match decode_payload::<T>(&payload) {
        Ok((msg, used)) if used == len => Ok(Some(msg)),
        Ok((_, used)) => Err(CodecError::Undecodable { len, reason: format!("{} trailing bytes", len - used) }),
        Err(e) => Err(CodecError::Undecodable { len, reason: e.to_string() }),
    }
}

/// Decodes one payload; returns the message and the bytes it used.
fn decode_payload<T: DeserializeOwned>(payload: &[u8]) -> Result<(T, usize), bincode::error::DecodeError> {
    struct Owned<T>(std::marker::PhantomData<T>, usize);
    impl<'de, T: DeserializeOwned> serde::de::DeserializeSeed<'de> for Owned<T> {
        type Value = T;
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<T, D::Error> {
            T::deserialize(borrowing::Borrowing(d, self.1))
        }
    }
    bincode::serde::seed_decode_from_slice(Owned(std::marker::PhantomData, payload.len()), payload, config())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::*;
    use bytes::Bytes;

    fn samples() -> Vec<FromAgent> {
        vec![
            FromAgent::Hello(Hello {
                protocol_version: PROTOCOL_VERSION,
                software_version: "0.1.0".into(),
                hostname: "h".into(),
                os: "linux-x86_64".into(),
                pi_version: Some("0.73.1".into()),
                gpus: vec![GpuInfo {
                    index: 0,
                    name: "NVIDIA GeForce GTX 1080 Ti".into(),
                    uuid: "GPU-0".into(),
                    memory_mib: 11264,
                    memory_free_mib: 10000,
                    compute_capability: Some("6.1".into()),
                    pci_bus_id: "00000000:65:00.0".into(),
                }],
                speech: Some(Box::new(ModelService {
                    model: "nvidia/parakeet-tdt-0.6b-v3".into(),
                    device: "cuda:0 (NVIDIA GeForce GTX 1080 Ti)".into(),
                    state: ModelState::Downloading {
                        file: "parakeet-tdt-0.6b-v3.nemo".into(),
                        done_bytes: 1 << 30,
                        total_bytes: 2 << 30,
                        bytes_per_s: 50 << 20,
                        eta_s: Some(20),
                    },
                    busy: 1,
                    done: 7,
                })),
                tts: Some(Box::new(ModelService {
                    model: "kakao-enterprise/vits-ljs".into(),
                    device: "cpu".into(),
                    state: ModelState::Failed { error: "no".into() },
                    busy: 0,
                    done: 0,
                })),
            }),
            FromAgent::Spawned { req: 7, result: Ok(Spawned { pid: 42 }) },
            FromAgent::Spawned {
                req: 8,
                result: Err(SpawnError::ExitedAtStart { code: Some(1), stderr: "boom".into() }),
            },
            FromAgent::Events {
                session: "s".into(),
                events: vec![
                    PiEvent {
                        seq: 3,
                        meta: EventMeta {
                            kind: "response".into(),
                            id: Some("x".into()),
                            command: Some("bash".into()),
                            success: Some(true),
                        },
                        line: Bytes::from_static(br#"{"type":"response"}"#),
                        delta: Some(crate::delta::Delta {
                            cuts: vec![crate::delta::Cut {
                                at: 7,
                                slot: 0,
                                same_as_previous_cut: false,
                                keep_prefix: 2,
                                keep_suffix: 1,
                                insert: Bytes::from_static(b"x"),
                            }],
                        }),
                    },
                    PiEvent { seq: 4, meta: EventMeta::default(), line: Bytes::from_static(b"{}"), delta: None },
                ],
            },
            FromAgent::Exited { session: "s".into(), code: None, stderr: String::new() },
            FromAgent::Killed { req: 1, was_running: true },
            FromAgent::ShellDone { req: 2, result: Err("no bash".into()) },
            FromAgent::Models { req: 3, result: Ok(Bytes::from_static(b"[]")) },
            FromAgent::Notice { session: None, message: "m".into() },
        ]
    }

    #[test]
    fn every_message_round_trips_through_one_buffer() {
        let mut buf = BytesMut::new();
        for m in samples() {
            encode_frame(&m, &mut buf).unwrap();
        }
        let to_agent = ToAgent::Input { session: "s".into(), line: Bytes::from_static(b"{}") };
        encode_frame(&to_agent, &mut buf).unwrap();
        for m in samples() {
            let got: FromAgent = decode_frame(&mut buf).unwrap().unwrap();
            assert_eq!(got, m);
        }
        let got: ToAgent = decode_frame(&mut buf).unwrap().unwrap();
        assert_eq!(got, to_agent);
        assert!(buf.is_empty());
    }

    #[test]
    fn partial_frames_wait_for_more_bytes() {
        let mut whole = BytesMut::new();
        encode_frame(&samples()[3], &mut whole).unwrap();
        let mut buf = BytesMut::new();
        for (i, b) in whole.iter().enumerate() {
            buf.put_u8(*b);
            let got: Option<FromAgent> = decode_frame(&mut buf).unwrap();
            assert_eq!(got.is_some(), i == whole.len() - 1);
        }
    }

    #[test]
    fn unknown_variant_is_skipped_and_the_stream_goes_on() {
        let mut buf = BytesMut::new();
        // Variant index 200 does not exist; bincode's standard config writes it as one byte.
        buf.put_u32(2);
        buf.put_slice(&[200, 0]);
        encode_frame(&samples()[5], &mut buf).unwrap();
        let err = decode_frame::<FromAgent>(&mut buf).unwrap_err();
        assert!(matches!(err, CodecError::Undecodable { len: 2, .. }), "{err}");
        let next: FromAgent = decode_frame(&mut buf).unwrap().unwrap();
        assert_eq!(next, samples()[5]);
    }

    #[test]
    fn truncated_payload_inside_a_frame_is_undecodable_not_a_panic() {
        let mut whole = BytesMut::new();
        encode_frame(&samples()[0], &mut whole).unwrap();
        let payload_len = whole.len() - 4 - 3;
        let mut buf = BytesMut::new();
        buf.put_u32(payload_len as u32);
        buf.put_slice(&whole[4..4 + payload_len]);
        assert!(matches!(decode_frame::<FromAgent>(&mut buf), Err(CodecError::Undecodable { .. })));
        assert!(buf.is_empty());
    }

    #[test]
    fn oversized_length_is_fatal() {
        let mut buf = BytesMut::new();
        buf.put_u32(u32::MAX);
        assert!(matches!(decode_frame::<FromAgent>(&mut buf), Err(CodecError::FrameTooLarge { .. })));
    }

    /// A frame holding `msg` with its last byte (a zero length) replaced by the varint `len`.
    fn with_last_length<T: Serialize>(msg: &T, len: u64) -> BytesMut {
        let mut whole = BytesMut::new();
        encode_frame(msg, &mut whole).unwrap();
        assert_eq!(whole.last(), Some(&0), "the message ends with an empty string or buffer");
        let mut payload = whole[4..whole.len() - 1].to_vec();
        payload.push(253); // bincode's varint marker for a u64 that follows, little-endian
        payload.extend_from_slice(&len.to_le_bytes());
        let mut buf = BytesMut::new();
        buf.put_u32(payload.len() as u32);
        buf.put_slice(&payload);
        buf
    }

    #[test]
    fn lengths_inside_a_frame_are_checked_before_they_are_allocated() {
        let cases = [
            // An owned string announcing 32 TiB: bincode alone allocates it (the process aborts).
            with_last_length(&FromAgent::Notice { session: None, message: String::new() }, 1 << 45),
            // A byte buffer (`Bytes`), and lengths past isize::MAX.
            with_last_length(&ToAgent::Input { session: "s".into(), line: Bytes::new() }, 1 << 45),
            with_last_length(&ToAgent::Input { session: "s".into(), line: Bytes::new() }, u64::MAX),
            // A sequence announcing 2^60 elements (serde alone reserves 1 MiB for it).
            with_last_length(&FromAgent::Events { session: "s".into(), events: Vec::new() }, 1 << 60),
        ];
        for mut buf in cases {
            let peak = crate::alloc_count::Peak::start();
            let got = decode_frame::<FromAgent>(&mut buf.clone());
            assert!(matches!(got, Err(CodecError::Undecodable { .. })), "{got:?}");
            let _ = decode_frame::<ToAgent>(&mut buf);
            assert!(peak.bytes() < 64 << 10, "allocated {} bytes", peak.bytes());
        }
    }

    #[test]
    fn a_frame_announcing_64_mib_holds_only_what_arrived() {
        let peak = crate::alloc_count::Peak::start();
        let mut buf = BytesMut::new();
        buf.put_u32(64 << 20);
        assert!(decode_frame::<FromAgent>(&mut buf).unwrap().is_none());
        assert!(buf.capacity() <= GROW_STEP + 4, "{}", buf.capacity());
        assert!(peak.bytes() <= 2 * GROW_STEP, "allocated {} bytes", peak.bytes());
        // As bytes trickle in, room grows with them, never towards the announced 64 MiB.
        for _ in 0..256 {
            buf.put_slice(&[0; 4096]);
            assert!(decode_frame::<FromAgent>(&mut buf).unwrap().is_none());
            assert!(buf.capacity() <= 4 * buf.len() + 2 * GROW_STEP, "{} for {}", buf.capacity(), buf.len());
        }
        // A stream's own limit refuses it from the prefix alone.
        let mut buf = BytesMut::new();
        buf.put_u32(64 << 20);
        assert!(
            matches!(decode_frame_limited::<FromAgent>(&mut buf, 4096), Err(CodecError::FrameTooLarge { len }) if len == 64 << 20)
        );
        // And a limit over MAX_FRAME_LEN is MAX_FRAME_LEN.
        let mut buf = BytesMut::new();
        buf.put_u32(MAX_FRAME_LEN as u32 + 1);
        assert!(decode_frame_limited::<FromAgent>(&mut buf, usize::MAX).is_err());
    }

    #[test]
    fn a_frame_within_a_stream_limit_decodes() {
        let mut buf = BytesMut::new();
        encode_frame(&samples()[1], &mut buf).unwrap();
        let len = buf.len() - 4;
        let got: FromAgent = decode_frame_limited(&mut buf.clone(), len).unwrap().unwrap();
        assert_eq!(got, samples()[1]);
        assert!(decode_frame_limited::<FromAgent>(&mut buf, len - 1).is_err());
    }

    #[test]
    fn random_garbage_never_panics() {
        // A small deterministic generator keeps the test reproducible without a dependency.
        let mut x: u64 = 0x9E3779B97F4A7C15;
        for _ in 0..2000 {
            let mut buf = BytesMut::new();
            let n = (x % 64) as usize;
            for _ in 0..n {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                buf.put_u8(x as u8);
            }
            buf[..n.min(4)].fill(0);
            while let Ok(Some(_)) | Err(CodecError::Undecodable { .. }) = decode_frame::<FromAgent>(&mut buf) {
                if buf.is_empty() {
                    break;
                }
            }
        }
    }
}
