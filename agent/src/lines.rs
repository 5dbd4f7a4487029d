//! Splitting pi's stdout into lines: LF only (pi's JSONL framing; a JSON string may hold
//! U+2028, so Unicode line breaks are not separators), each line at most `max` bytes.
//!
//! A line longer than the limit is reported once and its bytes dropped as they arrive, so an
//! endless line costs no more memory than the limit. `memchr` finds the newlines; this is the
//! hottest loop of the relay, and tokio-util's delimiter codec, which tests every byte
//! against a set, was a fifth of the agent's time in the relay benchmark.

use bytes::{Buf, Bytes, BytesMut};

/// One result of [`LineSplitter::next`].
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A complete line, without its `\n`.
    Line(Bytes),
    /// A line went over the limit; it is being skipped.
    TooLong,
}

/// See the module docs.
#[derive(Debug)]
pub struct LineSplitter {
    max: usize,
    /// Bytes at the front of the buffer already searched for a newline.
    scanned: usize,
    /// Inside an over-long line: drop bytes up to the next newline.
    discarding: bool,
}

impl LineSplitter {
    /// A splitter for lines of at most `max` bytes.
    pub fn new(max: usize) -> LineSplitter {
        LineSplitter { max, scanned: 0, discarding: false }
    }

    /// The next line in `buf`, or `None` until more bytes arrive.
    pub fn next(&mut self, buf: &mut BytesMut) -> Option<Line> {
        loop {
            match memchr::memchr(b'\n', &buf[self.scanned..]) {
                Some(i) => {
                    let end = self.scanned + i;
                    self.scanned = 0;
                    if self.discarding {
                        buf.advance(end + 1);
                        self.discarding = false;
                        continue;
                    }
                    let mut line = buf.split_to(end + 1).freeze();
                    line.truncate(end);
                    if end > self.max {
                        return Some(Line::TooLong);
                    }
                    return Some(Line::Line(line));
                }
                None if self.discarding => {
                    buf.clear();
                    self.scanned = 0;
                    return None;
                }
                None if buf.len() > self.max => {
                    buf.clear();
                    self.scanned = 0;
                    self.discarding = true;
                    return Some(Line::TooLong);
                }
                None => {
                    self.scanned = buf.len();
                    return None;
                }
            }
        }
    }

    /// At end of input: what is left, as a last line without a newline.
    pub fn finish(&mut self, buf: &mut BytesMut) -> Option<Line> {
        if let Some(line) = self.next(buf) {
            return Some(line);
        }
        self.scanned = 0;
        if self.discarding || buf.is_empty() {
            buf.clear();
            return None;
        }
        Some(Line::Line(buf.split().freeze()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(max: usize, chunks: &[&[u8]]) -> Vec<Line> {
        let mut s = LineSplitter::new(max);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for c in chunks {
            buf.extend_from_slice(c);
            while let Some(l) = s.next(&mut buf) {
                out.push(l);
            }
        }
        while let Some(l) = s.finish(&mut buf) {
            out.push(l);
        }
        out
    }

    fn line(s: &str) -> Line {
        Line::Line(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn splits_on_lf_only_across_chunks() {
        assert_eq!(feed(100, &[b"a\nb", b"c\n", b"\n", b"d"]), [line("a"), line("bc"), line(""), line("d")]);
        assert_eq!(feed(100, &["x\u{2028}y\r\n".as_bytes()]), [line("x\u{2028}y\r")]);
    }

    #[test]
    fn long_lines_are_reported_once_and_skipped() {
        assert_eq!(feed(4, &[b"12345678", b"90\nok\n"]), [Line::TooLong, line("ok")]);
        assert_eq!(feed(4, &[b"12345\nok\n"]), [Line::TooLong, line("ok")]);
        assert_eq!(feed(4, &[b"1234\n"]), [line("1234")]);
        assert_eq!(feed(4, &[b"123456", b"78"]), [Line::TooLong]);
    }
}
