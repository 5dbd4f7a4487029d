//! SentencePiece detokenisation: token ids → text.
//!
//! Decoding needs only the piece table, so this reads the `pieces` of a SentencePiece `ModelProto`
//! (`tokenizer.model`, a small protobuf) directly, or takes the piece list NeMo writes into
//! `joint.vocabulary`. No crate reads a `.model` without the C++ library; the wire format read here is three
//! fields deep and stable since SentencePiece 0.1.

use crate::error::{Result, SpeechError};

/// How SentencePiece treats a piece when decoding (its `SentencePiece.Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PieceKind {
    Normal,
    Unknown,
    Control,
    UserDefined,
    Unused,
    Byte,
}

#[derive(Debug, Clone)]
pub struct Tokenizer {
    pieces: Vec<(String, PieceKind)>,
    add_dummy_prefix: bool,
}

const SPACE: char = '\u{2581}'; // ▁

impl Tokenizer {
    /// Reads a SentencePiece `.model` file's bytes.
    pub fn from_model_bytes(bytes: &[u8]) -> Result<Self> {
        let mut pieces = Vec::new();
        let mut add_dummy_prefix = true;
        let mut r = Reader::new(bytes);
        while let Some((field, value)) = r.next_field()? {
            match (field, value) {
                (1, Value::Bytes(piece)) => pieces.push(parse_piece(piece)?),
                (3, Value::Bytes(normalizer)) => {
                    let mut n = Reader::new(normalizer);
                    while let Some((f, v)) = n.next_field()? {
                        if let (3, Value::Varint(v)) = (f, v) {
                            add_dummy_prefix = v != 0;
                        }
                    }
                }
                _ => {}
            }
        }
        if pieces.is_empty() {
            return Err(SpeechError::Tokenizer("no pieces in the SentencePiece model".into()));
        }
        Ok(Self { pieces, add_dummy_prefix })
    }

    /// A piece list in id order (NeMo's `joint.vocabulary`); `<unk>`-like pieces are the only specials guessed.
    pub fn from_pieces(pieces: &[String]) -> Self {
        let pieces = pieces
            .iter()
            .map(|p| {
                let kind = match p.as_str() {
                    "<unk>" => PieceKind::Unknown,
                    _ if p.starts_with("<|") && p.ends_with("|>") => PieceKind::Control,
                    "<s>" | "</s>" | "<pad>" => PieceKind::Control,
                    _ => PieceKind::Normal,
                };
                (p.clone(), kind)
            })
            .collect();
        Self { pieces, add_dummy_prefix: true }
    }

    pub fn vocab_size(&self) -> usize {
        self.pieces.len()
    }

    pub fn piece(&self, id: u32) -> Option<&str> {
        self.pieces.get(id as usize).map(|(p, _)| p.as_str())
    }

    /// SentencePiece's `DecodeIds`: control pieces vanish, unknown ones read ` ⁇ `, byte pieces are bytes,
    /// `▁` is a space and the dummy prefix space is dropped. Ids past the table (the blank) are skipped.
    pub fn decode(&self, ids: &[u32]) -> String {
        let mut bytes: Vec<u8> = Vec::new();
        for &id in ids {
            let Some((piece, kind)) = self.pieces.get(id as usize) else { continue };
            match kind {
                PieceKind::Control | PieceKind::Unused => {}
                PieceKind::Unknown => bytes.extend_from_slice(" \u{2047} ".as_bytes()),
                PieceKind::Byte => {
                    if let Some(b) = piece.strip_prefix("<0x").and_then(|h| h.strip_suffix('>')) {
                        if let Ok(b) = u8::from_str_radix(b, 16) {
                            bytes.push(b);
                        }
                    }
                }
                PieceKind::Normal | PieceKind::UserDefined => {
                    let text = piece.replace(SPACE, " ");
                    bytes.extend_from_slice(text.as_bytes());
                }
            }
        }
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if self.add_dummy_prefix {
            text.strip_prefix(' ').map(str::to_owned).unwrap_or(text)
        } else {
            text
        }
    }
}

fn parse_piece(bytes: &[u8]) -> Result<(String, PieceKind)> {
    let mut piece = String::new();
    let mut kind = PieceKind::Normal;
    let mut r = Reader::new(bytes);
    while let Some((field, value)) = r.next_field()? {
        match (field, value) {
            (1, Value::Bytes(s)) => {
                piece = String::from_utf8(s.to_vec()).map_err(|_| SpeechError::Tokenizer("piece not UTF-8".into()))?
            }
            (3, Value::Varint(t)) => {
                kind = match t {
                    2 => PieceKind::Unknown,
                    3 => PieceKind::Control,
                    4 => PieceKind::UserDefined,
                    5 => PieceKind::Unused,
                    6 => PieceKind::Byte,
                    _ => PieceKind::Normal,
                }
            }
            _ => {}
        }
    }
    Ok((piece, kind))
}

enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

/// A protobuf wire-format reader: just enough to walk fields.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    fn varint(&mut self) -> Result<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos).ok_or_else(truncated)?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(SpeechError::Tokenizer("bad varint".into()))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len()).ok_or_else(truncated)?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn next_field(&mut self) -> Result<Option<(u64, Value<'a>)>> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Value::Fixed
            }
            2 => {
                let n = self.varint()? as usize;
                Value::Bytes(self.take(n)?)
            }
            5 => {
                self.take(4)?;
                Value::Fixed
            }
            t => return Err(SpeechError::Tokenizer(format!("unsupported protobuf wire type {t}"))),
        };
        Ok(Some((key >> 3, value)))
    }
}

fn truncated() -> SpeechError {
    SpeechError::Tokenizer("truncated SentencePiece model".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn piece(s: &str, kind: u8) -> Vec<u8> {
        let mut p = vec![0x0a, s.len() as u8];
        p.extend_from_slice(s.as_bytes());
        p.extend_from_slice(&[0x15, 0, 0, 0, 0]); // score (fixed32)
        if kind != 1 {
            p.extend_from_slice(&[0x18, kind]);
        }
        let mut out = vec![0x0a, p.len() as u8];
        out.extend(p);
        out
    }

    #[test]
    fn decodes_pieces_like_sentencepiece() {
        let mut model = Vec::new();
        for (s, k) in
            [("<unk>", 2), ("<|endoftext|>", 3), ("\u{2581}he", 1), ("llo", 1), ("\u{2581}w", 1), ("<0x41>", 6)]
        {
            model.extend(piece(s, k));
        }
        let tok = Tokenizer::from_model_bytes(&model).unwrap();
        assert_eq!(tok.vocab_size(), 6);
        assert_eq!(tok.decode(&[2, 3, 1, 4, 5, 99]), "hello wA");
        assert_eq!(tok.decode(&[0, 2]), "\u{2047}  he");
    }

    #[test]
    fn truncated_model_is_an_error() {
        let mut model = piece("\u{2581}a", 1);
        model.pop();
        assert!(Tokenizer::from_model_bytes(&model).is_err());
    }
}
