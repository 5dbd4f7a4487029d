//! Reading a pi session file back as a conversation: the messages on its active branch.
//!
//! pi appends one JSON entry per line (see pi's `docs/session-format.md`). Entries form a tree through
//! `id`/`parentId`; the conversation pi resumes is the path from the leaf, the last entry in the file, back to
//! the root. [`stream_history`] writes that path's messages as one JSON array without holding the file in
//! memory: a first pass parses every line and indexes it (its id, its parent, where it and its `message` lie),
//! a second reads back only the lines on the branch and copies each `message` value byte for byte, never
//! re-encoded and not parsed again. [`fork_messages`] lists the branch's user prompts, the points pi can fork
//! from.
//!
//! What it is not: pi's `buildSessionContext`. Only `type:"message"` entries come out; pi's synthetic messages
//! for `branch_summary`, `custom_message` and `compaction` entries do not, and a compaction hides nothing (the
//! whole branch is history, even what pi no longer sends to the model). Version 1 files, which have no ids,
//! read as every message in file order. All I/O is blocking std I/O: callers run it on a blocking thread.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::hash::{Hash, Hasher};
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::child::MAX_LINE;

/// Bytes asked of the file per read. Large enough that a 64 MiB file costs a few hundred reads, small
/// enough that a file of short lines never holds much more than this in memory.
const READ_CHUNK: usize = 256 * 1024;

/// Most entries indexed from one file. The index costs about 100 bytes per entry, while an entry line
/// can be 11 bytes (`{"id":"a"}`), so without a cap a large file of tiny lines would cost ten times its size.
/// Real sessions have thousands of entries; a file with more than this is refused.
/// (Small in unit tests, to test the refusal cheaply.)
const MAX_ENTRIES: usize = if cfg!(test) { 4096 } else { 1 << 20 };

/// Output is handed to the caller in pieces of about this size, so a socket writer gets few large writes
/// rather than one per message; a single larger message goes out as one piece of its own.
const OUT_CHUNK: usize = 256 * 1024;

/// Why a session file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// There is no file at that path.
    #[error("session file not found")]
    NotFound,
    /// The file exists but could not be read, is not a pi session file, or the output failed.
    #[error("cannot read session file: {0}")]
    Unreadable(String),
}

impl HistoryError {
    /// The error code the original Piface gave clients for this error.
    pub fn code(&self) -> &'static str {
        match self {
            HistoryError::NotFound => "file_not_found",
            HistoryError::Unreadable(_) => "file_read_error",
        }
    }
}

/// What [`stream_history`] found besides the messages it wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistorySummary {
    /// Messages written.
    pub messages: usize,
    /// Lines that are not JSON objects (or longer than 64 MiB), skipped. A truncated tail is not counted.
    pub skipped_lines: usize,
    /// The file ends without a newline in something that is not a JSON object: a write cut off by a crash.
    pub truncated_tail: bool,
}

/// A user message that pi can fork the session from (the shape of pi's `get_fork_messages` items).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ForkMessage {
    /// The session entry holding the message; pi's `fork` command takes it.
    #[serde(rename = "entryId")]
    pub entry_id: String,
    /// The message's text: its string content, or its text parts joined without separator (as pi does).
    pub text: String,
}

/// Writes the messages on the active branch of the session file at `path` to `out` as one JSON array:
/// `[`, the raw bytes of each entry's `message` value joined by `,`, then `]`.
///
/// `out` gets pieces of about 256 KiB (a larger message comes as one piece); nothing is written when the
/// file cannot be opened or indexed. An error from `out` stops the stream and comes back as
/// [`HistoryError::Unreadable`]. A path starting with `~/` is taken relative to `$HOME`.
///
/// An error after the first piece (the output failed, or the file was rewritten between the two passes)
/// leaves the array unfinished: the caller must discard what it received. Appends by a running pi are
/// harmless: lines written after the first pass are not read.
pub fn stream_history(
    path: &Path,
    out: &mut dyn FnMut(&[u8]) -> io::Result<()>,
) -> Result<HistorySummary, HistoryError> {
    stream_history_from(open(path)?, out)
}

/// [`stream_history`] of a session file already open (or in memory).
pub fn stream_history_from<R: Read + Seek>(
    file: R,
    out: &mut dyn FnMut(&[u8]) -> io::Result<()>,
) -> Result<HistorySummary, HistoryError> {
    let (file, index, buf) = index_source(file)?;
    let branch = index.branch();
    let mut sink = Sink { out, buf: Vec::with_capacity(OUT_CHUNK) };
    sink.write(b"[")?;
    let mut first = true;
    read_branch(file, &index, &branch, buf, |_, message| {
        if !first {
            sink.write(b",")?;
        }
        first = false;
        sink.write(message)
    })?;
    sink.write(b"]")?;
    sink.flush()?;
    Ok(HistorySummary {
        messages: branch.len(),
        skipped_lines: index.skipped_lines,
        truncated_tail: index.truncated_tail,
    })
}

/// The user messages on the active branch that pi can fork from, in branch order: those whose entry has a
/// string `id` and whose text is not blank.
///
/// Unlike pi's own `get_fork_messages`, which lists the user messages of every branch in file order, this
/// keeps to the branch being shown.
pub fn fork_messages(path: &Path) -> Result<Vec<ForkMessage>, HistoryError> {
    fork_messages_from(open(path)?)
}

/// [`fork_messages`] of a session file already open (or in memory).
pub fn fork_messages_from<R: Read + Seek>(file: R) -> Result<Vec<ForkMessage>, HistoryError> {
    let (file, index, buf) = index_source(file)?;
    let branch = index.branch();
    let mut found = Vec::new();
    read_branch(file, &index, &branch, buf, |node, message| {
        let Some(entry_id) = &node.id else { return Ok(()) };
        let Some(text) = user_text(message) else { return Ok(()) };
        if !text.trim().is_empty() {
            found.push(ForkMessage { entry_id: entry_id.to_string(), text });
        }
        Ok(())
    })?;
    Ok(found)
}

// ---------------------------------------------------------------------------------------------------------
// Opening and the first pass
// ---------------------------------------------------------------------------------------------------------

/// Opens a session file. Only a regular file: a FIFO would block the open, and a device such as
/// `/dev/zero` would be read for ever.
fn open(path: &Path) -> Result<File, HistoryError> {
    let path = crate::paths::expand_home(path);
    let not_found = |e: io::Error| match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => HistoryError::NotFound,
        _ => unreadable(e),
    };
    if !std::fs::metadata(&path).map_err(not_found)?.is_file() {
        return Err(HistoryError::Unreadable("not a regular file".into()));
    }
    File::open(&path).map_err(not_found)
}

/// Indexes `src`; also returns the line buffer of the first pass, for the second to reuse.
fn index_source<R: Read>(mut src: R) -> Result<(R, Index, Vec<u8>), HistoryError> {
    let mut lines = LineReader::new(&mut src);
    let index = Index::build(&mut lines)?;
    if index.valid_lines == 0 && lines.offset > 0 {
        return Err(HistoryError::Unreadable("not a pi session file".into()));
    }
    let buf = lines.buf;
    Ok((src, index, buf))
}

fn unreadable(e: io::Error) -> HistoryError {
    HistoryError::Unreadable(e.to_string())
}

fn changed_under_us() -> HistoryError {
    HistoryError::Unreadable("the session file changed while it was read".into())
}

/// An entry's id, kept without a heap allocation when it is short (pi's ids are 8 hex digits), because the
/// index holds one or two per line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum EntryId {
    Inline { len: u8, bytes: [u8; 15] },
    Heap(Box<str>),
}

impl EntryId {
    fn new(id: &str) -> EntryId {
        if id.len() > 15 {
            return EntryId::Heap(id.into());
        }
        let mut bytes = [0; 15];
        bytes[..id.len()].copy_from_slice(id.as_bytes());
        EntryId::Inline { len: id.len() as u8, bytes }
    }

    fn from_raw(raw: Option<&RawValue>) -> Option<EntryId> {
        raw.and_then(json_str).map(|id| EntryId::new(&id))
    }
}

impl fmt::Display for EntryId {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            // Built from a `str`, so never lossy.
            EntryId::Inline { len, bytes } => f.write_str(&String::from_utf8_lossy(&bytes[..usize::from(*len)])),
            EntryId::Heap(id) => f.write_str(id),
        }
    }
}

/// One indexed line: an entry that has an id or holds a message.
#[derive(Debug)]
struct Node {
    offset: u64,
    /// Length of the line without its `\n` (at most [`MAX_LINE`]).
    len: u32,
    id: Option<EntryId>,
    parent: Option<EntryId>,
    /// Where the `message` value lies, when `type` is `"message"` and `message` is present and not null.
    message: Option<MessageAt>,
}

/// The `message` value of an indexed line: its bytes are `line[start..start + len]`.
#[derive(Debug)]
struct MessageAt {
    start: u32,
    len: u32,
    /// [`fingerprint`] of the line as the first pass read it.
    fingerprint: u64,
}

impl MessageAt {
    fn range(&self) -> std::ops::Range<usize> {
        self.start as usize..(self.start + self.len) as usize
    }
}

/// A hash of a line's length and of every byte outside its message value: the envelope that holds the
/// entry's type, id and parent. The second pass checks it instead of parsing the line again.
fn fingerprint(line: &[u8], message: std::ops::Range<usize>) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    line.len().hash(&mut hasher);
    line[..message.start].hash(&mut hasher);
    line[message.end..].hash(&mut hasher);
    hasher.finish()
}

/// What the first pass learns: the tree's nodes in file order, and what was wrong with the file.
#[derive(Debug, Default)]
struct Index {
    nodes: Vec<Node>,
    /// Lines that are JSON objects (the header included).
    valid_lines: usize,
    skipped_lines: usize,
    truncated_tail: bool,
}

impl Index {
    fn build<R: Read>(lines: &mut LineReader<R>) -> Result<Index, HistoryError> {
        let mut index = Index::default();
        while let Some(piece) = lines.next_piece().map_err(unreadable)? {
            let (offset, range, terminated) = match piece {
                Piece::TooLong => {
                    index.skipped_lines += 1;
                    continue;
                }
                Piece::Line { offset, range, terminated } => (offset, range, terminated),
            };
            let mut line = &lines.buf[range];
            if let [rest @ .., b'\r'] = line {
                line = rest;
            }
            if line.trim_ascii().is_empty() {
                continue;
            }
            let Ok(entry) = serde_json::from_slice::<Entry>(line) else {
                if terminated {
                    index.skipped_lines += 1;
                } else {
                    index.truncated_tail = true;
                }
                continue;
            };
            index.valid_lines += 1;
            let kind = entry.kind.and_then(json_str);
            if kind.as_deref() == Some("session") {
                continue;
            }
            let message = entry.message.filter(|_| kind.as_deref() == Some("message")).map(|raw| {
                // The raw value borrows from `line`, so its address gives its place in the line.
                let start = raw.get().as_ptr() as usize - line.as_ptr() as usize;
                let range = start..start + raw.get().len();
                MessageAt { start: start as u32, len: range.len() as u32, fingerprint: fingerprint(line, range) }
            });
            let id = EntryId::from_raw(entry.id);
            if id.is_none() && message.is_none() {
                continue;
            }
            if index.nodes.len() == MAX_ENTRIES {
                return Err(HistoryError::Unreadable(format!("more than {MAX_ENTRIES} entries")));
            }
            index.nodes.push(Node {
                offset,
                // `LineReader` never returns a line over MAX_LINE, which fits in u32.
                len: line.len() as u32,
                parent: EntryId::from_raw(entry.parent_id),
                id,
                message,
            });
        }
        Ok(index)
    }

    /// Indexes into `nodes` of the messages on the active branch, root first.
    fn branch(&self) -> Vec<usize> {
        let nodes = &self.nodes;
        let Some(leaf) = nodes.iter().rposition(|n| n.id.is_some()) else {
            // Version 1 files have no ids: the conversation is every message in file order.
            return (0..nodes.len()).filter(|&i| nodes[i].message.is_some()).collect();
        };
        // Later lines win for a repeated id, as in pi's own index.
        let by_id: HashMap<&EntryId, usize> =
            nodes.iter().enumerate().filter_map(|(i, n)| Some((n.id.as_ref()?, i))).collect();
        let mut seen = vec![false; nodes.len()];
        let mut path = Vec::new();
        let mut current = Some(leaf);
        // A parent that is missing (a corrupt line) ends the branch there, as it does for pi; a hand-edited
        // cycle ends it at the first repeated entry.
        while let Some(i) = current.filter(|&i| !std::mem::replace(&mut seen[i], true)) {
            if nodes[i].message.is_some() {
                path.push(i);
            }
            current = nodes[i].parent.as_ref().and_then(|p| by_id.get(p).copied());
        }
        path.reverse();
        path
    }
}

/// The fields of an entry line that the index needs, borrowed from the line. Everything else is checked
/// for syntax and skipped. Like `JSON.parse`, a repeated key counts once, with its last value.
#[derive(Debug, Default)]
struct Entry<'a> {
    kind: Option<&'a RawValue>,
    id: Option<&'a RawValue>,
    parent_id: Option<&'a RawValue>,
    message: Option<&'a RawValue>,
}

impl<'de> Deserialize<'de> for Entry<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(EntryVisitor)
    }
}

struct EntryVisitor;

impl<'de> Visitor<'de> for EntryVisitor {
    type Value = Entry<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entry<'de>, A::Error> {
        let mut entry = Entry::default();
        while let Some(key) = map.next_key::<Key>()? {
            let slot = match key {
                Key::Type => &mut entry.kind,
                Key::Id => &mut entry.id,
                Key::ParentId => &mut entry.parent_id,
                Key::Message => &mut entry.message,
                Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            *slot = map.next_value()?;
        }
        Ok(entry)
    }
}

/// A key of an entry object, recognised without allocating.
enum Key {
    Type,
    Id,
    ParentId,
    Message,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_identifier(KeyVisitor)
    }
}

struct KeyVisitor;

impl Visitor<'_> for KeyVisitor {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E>(self, key: &str) -> Result<Key, E> {
        Ok(match key {
            "type" => Key::Type,
            "id" => Key::Id,
            "parentId" => Key::ParentId,
            "message" => Key::Message,
            _ => Key::Other,
        })
    }
}

/// The string a raw JSON value holds, or `None` when it is not a string. Borrowed unless it has escapes.
fn json_str(raw: &RawValue) -> Option<Cow<'_, str>> {
    let text = raw.get();
    if !text.starts_with('"') {
        return None;
    }
    match serde_json::from_str::<&str>(text) {
        Ok(s) => Some(Cow::Borrowed(s)),
        Err(_) => serde_json::from_str::<String>(text).ok().map(Cow::Owned),
    }
}

/// The text of a user message: its content if that is a string, else its text parts concatenated.
fn user_text(message: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Message<'a> {
        #[serde(borrow)]
        role: Option<&'a RawValue>,
        #[serde(borrow)]
        content: Option<&'a RawValue>,
    }
    let message: Message = serde_json::from_slice(message).ok()?;
    if json_str(message.role?)? != "user" {
        return None;
    }
    let content = message.content?;
    if let Some(text) = json_str(content) {
        return Some(text.into_owned());
    }
    // Parts are looked at one by one, never collected (a list of many tiny parts would cost more than the
    // line); image parts are skipped unread (their data is never copied).
    let mut de = serde_json::Deserializer::from_str(content.get());
    let text = de.deserialize_seq(TextParts).ok()?;
    de.end().ok()?;
    Some(text)
}

/// Concatenates the `text` of a JSON array's `{"type":"text"}` parts.
struct TextParts;

impl<'de> Visitor<'de> for TextParts {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of content parts")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut parts: A) -> Result<String, A::Error> {
        #[derive(Deserialize)]
        struct Part<'a> {
            #[serde(rename = "type", borrow)]
            kind: Option<&'a RawValue>,
            #[serde(borrow)]
            text: Option<&'a RawValue>,
        }
        let mut text = String::new();
        while let Some(part) = parts.next_element::<Part>()? {
            if part.kind.and_then(json_str).as_deref() != Some("text") {
                continue;
            }
            match part.text.and_then(json_str) {
                // The usual single part is moved out, not copied again: a pasted file can make it megabytes.
                Some(Cow::Owned(t)) if text.is_empty() => text = t,
                Some(t) => text.push_str(&t),
                None => {}
            }
        }
        Ok(text)
    }
}

// ---------------------------------------------------------------------------------------------------------
// Splitting the file into lines
// ---------------------------------------------------------------------------------------------------------

/// One result of [`LineReader::next_piece`].
enum Piece {
    /// A line at file offset `offset`, in `buf[range]`, without its `\n`; `terminated` is false for a last
    /// line that has no `\n`.
    Line { offset: u64, range: std::ops::Range<usize>, terminated: bool },
    /// A line over [`MAX_LINE`] bytes, skipped.
    TooLong,
}

/// Splits a file into lines (LF only: a JSON string may hold U+2028) holding at most one line, plus one read,
/// in memory. Lines come back as ranges of `buf`, valid until the next call.
struct LineReader<R> {
    src: R,
    /// Bytes read and not yet returned start at `start`; `buf.len()` is the end of what was read. Capacity
    /// grows with the longest line, but only what a read filled is ever touched.
    buf: Vec<u8>,
    start: usize,
    /// Bytes from `start` up to here are known to hold no `\n`.
    scanned: usize,
    /// File offset of `buf[start]`; after the last piece, the file's size.
    offset: u64,
    eof: bool,
}

impl<R: Read> LineReader<R> {
    fn new(src: R) -> LineReader<R> {
        LineReader { src, buf: Vec::with_capacity(READ_CHUNK), start: 0, scanned: 0, offset: 0, eof: false }
    }

    fn next_piece(&mut self) -> io::Result<Option<Piece>> {
        loop {
            if let Some(i) = memchr::memchr(b'\n', &self.buf[self.scanned..]) {
                let end = self.scanned + i;
                let piece = if end - self.start > MAX_LINE {
                    Piece::TooLong
                } else {
                    Piece::Line { offset: self.offset, range: self.start..end, terminated: true }
                };
                self.offset += (end + 1 - self.start) as u64;
                self.start = end + 1;
                self.scanned = self.start;
                return Ok(Some(piece));
            }
            self.scanned = self.buf.len();
            if self.eof {
                if self.start == self.buf.len() {
                    return Ok(None);
                }
                let piece = Piece::Line { offset: self.offset, range: self.start..self.buf.len(), terminated: false };
                self.offset += (self.buf.len() - self.start) as u64;
                self.start = self.buf.len();
                return Ok(Some(piece));
            }
            if self.buf.len() - self.start > MAX_LINE {
                self.skip_line()?;
                return Ok(Some(Piece::TooLong));
            }
            self.fill()?;
        }
    }

    /// Reads up to one chunk more, first dropping the lines already returned.
    fn fill(&mut self) -> io::Result<()> {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.scanned -= self.start;
            self.start = 0;
        }
        self.buf.reserve(READ_CHUNK);
        let n = (&mut self.src).take(READ_CHUNK as u64).read_to_end(&mut self.buf)?;
        self.eof = n == 0;
        Ok(())
    }

    /// Drops the rest of an over-long line, up to and including its `\n`.
    fn skip_line(&mut self) -> io::Result<()> {
        loop {
            if let Some(i) = memchr::memchr(b'\n', &self.buf[self.scanned..]) {
                let end = self.scanned + i + 1;
                self.offset += (end - self.start) as u64;
                self.start = end;
                self.scanned = end;
                return Ok(());
            }
            self.offset += (self.buf.len() - self.start) as u64;
            self.buf.clear();
            self.start = 0;
            self.scanned = 0;
            if self.eof {
                return Ok(());
            }
            self.fill()?;
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// The second pass
// ---------------------------------------------------------------------------------------------------------

/// Reads back the lines of `branch` in order and hands each node and its message's bytes to `visit`. `buf`
/// is reused for the lines, so memory stays at one line.
///
/// The message was validated by the first pass and is not parsed again; but a pi migrating an old file
/// rewrites it in place, and then the offsets of the first pass point at other bytes. So each line must
/// still have its length and [`fingerprint`], or the read fails.
fn read_branch<R: Read + Seek>(
    file: R,
    index: &Index,
    branch: &[usize],
    mut buf: Vec<u8>,
    mut visit: impl FnMut(&Node, &[u8]) -> Result<(), HistoryError>,
) -> Result<(), HistoryError> {
    let mut reader = BufReader::with_capacity(READ_CHUNK, file);
    // The first pass left the file at its end.
    reader.rewind().map_err(unreadable)?;
    let mut pos = 0u64;
    for &i in branch {
        let node = &index.nodes[i];
        let Some(at) = &node.message else { continue };
        if node.offset >= pos {
            // Within the buffer this only moves a cursor; lines on a branch are mostly in file order.
            reader.seek_relative((node.offset - pos) as i64).map_err(unreadable)?;
        } else {
            reader.seek(SeekFrom::Start(node.offset)).map_err(unreadable)?;
        }
        buf.clear();
        let len = u64::from(node.len);
        let n = (&mut reader).take(len).read_to_end(&mut buf).map_err(unreadable)?;
        pos = node.offset + n as u64;
        if n as u64 != len || fingerprint(&buf, at.range()) != at.fingerprint {
            return Err(changed_under_us());
        }
        visit(node, &buf[at.range()])?;
    }
    Ok(())
}

/// Batches output into pieces of about [`OUT_CHUNK`] bytes.
struct Sink<'a> {
    out: &'a mut dyn FnMut(&[u8]) -> io::Result<()>,
    buf: Vec<u8>,
}

impl Sink<'_> {
    fn write(&mut self, bytes: &[u8]) -> Result<(), HistoryError> {
        if self.buf.len() + bytes.len() > OUT_CHUNK {
            self.flush()?;
        }
        if bytes.len() >= OUT_CHUNK {
            // A large message goes out as it is rather than through another copy.
            return (self.out)(bytes).map_err(unreadable);
        }
        self.buf.extend_from_slice(bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), HistoryError> {
        if !self.buf.is_empty() {
            (self.out)(&self.buf).map_err(unreadable)?;
            self.buf.clear();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn entry(id: &str, parent: Option<&str>, message: Value) -> String {
        json!({"type": "message", "id": id, "parentId": parent, "timestamp": "2025-01-01T00:00:00.000Z",
               "message": message})
        .to_string()
    }

    fn user(text: &str) -> Value {
        json!({"role": "user", "content": [{"type": "text", "text": text}], "timestamp": 1})
    }

    fn assistant(text: &str) -> Value {
        json!({"role": "assistant", "content": [{"type": "text", "text": text}], "stopReason": "stop"})
    }

    const HEADER: &str =
        r#"{"type":"session","version":3,"id":"s1","timestamp":"2025-01-01T00:00:00.000Z","cwd":"/p"}"#;

    /// Writes `content` to a temp file and streams it, checking the output is one valid JSON array.
    fn stream(content: &[u8]) -> (Value, HistorySummary) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.jsonl");
        std::fs::write(&path, content).unwrap();
        let mut out = Vec::new();
        let summary = stream_history(&path, &mut |b| {
            out.extend_from_slice(b);
            Ok(())
        })
        .unwrap();
        (serde_json::from_slice(&out).expect("output is JSON"), summary)
    }

    fn lines(lines: &[String]) -> Vec<u8> {
        lines.iter().map(|l| format!("{l}\n")).collect::<String>().into_bytes()
    }

    fn summary(messages: usize, skipped_lines: usize, truncated_tail: bool) -> HistorySummary {
        HistorySummary { messages, skipped_lines, truncated_tail }
    }

    #[test]
    fn follows_the_active_branch() {
        let file = lines(&[
            HEADER.to_string(),
            r#"{"type":"model_change","id":"m0","parentId":null,"provider":"p","modelId":"x"}"#.to_string(),
            entry("a1", Some("m0"), user("first")),
            entry("a2", Some("a1"), assistant("one")),
            entry("b1", Some("a2"), user("abandoned")),
            entry("b2", Some("b1"), assistant("abandoned too")),
            // Navigating back to a2 with a summary, then going on from there.
            r#"{"type":"branch_summary","id":"s0","parentId":"a2","fromId":"b2","summary":"tried b"}"#.to_string(),
            entry("c1", Some("s0"), user("second")),
            entry("c2", Some("c1"), assistant("two")),
            r#"{"type":"label","id":"l0","parentId":"c2","targetId":"a1","label":"x"}"#.to_string(),
        ]);
        let (value, sum) = stream(&file);
        assert_eq!(value, json!([user("first"), assistant("one"), user("second"), assistant("two")]));
        assert_eq!(sum, summary(4, 0, false));

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.jsonl");
        std::fs::write(&path, &file).unwrap();
        let fork = fork_messages(&path).unwrap();
        let texts: Vec<_> = fork.iter().map(|f| (f.entry_id.as_str(), f.text.as_str())).collect();
        assert_eq!(texts, [("a1", "first"), ("c1", "second")]);
    }

    #[test]
    fn leaf_is_the_last_entry_even_on_an_older_branch() {
        let file = lines(&[
            HEADER.to_string(),
            entry("a1", None, user("first")),
            entry("b1", Some("a1"), user("second")),
            entry("c1", Some("a1"), user("again")),
        ]);
        assert_eq!(stream(&file).0, json!([user("first"), user("again")]));
    }

    #[test]
    fn legacy_file_is_linear() {
        let msg = |m: Value| json!({"type": "message", "timestamp": "t", "message": m}).to_string();
        let file = lines(&[
            r#"{"type":"session","id":"s1","timestamp":"t","cwd":"/p"}"#.to_string(),
            msg(user("first")),
            r#"{"type":"model_change","timestamp":"t","provider":"p","modelId":"x"}"#.to_string(),
            msg(assistant("one")),
            msg(user("second")),
        ]);
        let (value, sum) = stream(&file);
        assert_eq!(value, json!([user("first"), assistant("one"), user("second")]));
        assert_eq!(sum, summary(3, 0, false));
    }

    #[test]
    fn crlf_blank_lines_and_raw_bytes() {
        // The message bytes go out exactly as written: odd spacing, escapes, a lone surrogate and all.
        let raw = r#"{ "role":"user", "content" : "a\u00e9\ud800\n", "timestamp":1 }"#;
        let file =
            format!("{HEADER}\r\n\r\n{{\"type\":\"message\",\"id\":\"a1\",\"parentId\":null,\"message\":{raw}}}\r\n\n");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.jsonl");
        std::fs::write(&path, file).unwrap();
        let mut out = Vec::new();
        let sum = stream_history(&path, &mut |b| {
            out.extend_from_slice(b);
            Ok(())
        })
        .unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), format!("[{raw}]"));
        assert_eq!(sum, summary(1, 0, false));
    }

    #[test]
    fn corrupt_lines_are_skipped() {
        let file = lines(&[
            HEADER.to_string(),
            entry("a1", None, user("first")),
            "{not json".to_string(),
            "[1,2]".to_string(),
            entry("a2", Some("a1"), assistant("one")),
        ]);
        let (value, sum) = stream(&file);
        assert_eq!(value, json!([user("first"), assistant("one")]));
        assert_eq!(sum, summary(2, 2, false));

        // A corrupt entry on the branch cuts it there, as it does for pi.
        let mut file = lines(&[HEADER.to_string(), entry("a1", None, user("first"))]);
        let broken = entry("a2", Some("a1"), assistant("one"));
        file.extend_from_slice(&broken.as_bytes()[..broken.len() - 2]);
        file.extend_from_slice(b"\n");
        file.extend(lines(&[entry("a3", Some("a2"), user("second"))]));
        assert_eq!(stream(&file), (json!([user("second")]), summary(1, 1, false)));
    }

    #[test]
    fn truncated_tail() {
        let mut file = lines(&[HEADER.to_string(), entry("a1", None, user("first"))]);
        let cut = entry("a2", Some("a1"), assistant("one"));
        file.extend_from_slice(&cut.as_bytes()[..cut.len() / 2]);
        assert_eq!(stream(&file), (json!([user("first")]), summary(1, 0, true)));

        // A complete last line without its newline is a line.
        let mut file = lines(&[HEADER.to_string(), entry("a1", None, user("first"))]);
        file.extend_from_slice(cut.as_bytes());
        assert_eq!(stream(&file), (json!([user("first"), assistant("one")]), summary(2, 0, false)));
    }

    #[test]
    fn header_only_and_empty_files() {
        assert_eq!(stream(&lines(&[HEADER.to_string()])), (json!([]), summary(0, 0, false)));
        assert_eq!(stream(HEADER.as_bytes()), (json!([]), summary(0, 0, false)));
        assert_eq!(stream(b""), (json!([]), summary(0, 0, false)));
    }

    #[test]
    fn errors() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = |_: &[u8]| Ok(());
        let missing = stream_history(&dir.path().join("nope.jsonl"), &mut sink).unwrap_err();
        assert!(matches!(missing, HistoryError::NotFound));
        assert_eq!(missing.code(), "file_not_found");
        assert!(matches!(fork_messages(&dir.path().join("a/b")), Err(HistoryError::NotFound)));

        let garbage = dir.path().join("garbage");
        std::fs::write(&garbage, "hello\nworld\n").unwrap();
        let err = stream_history(&garbage, &mut sink).unwrap_err();
        assert_eq!(err.to_string(), "cannot read session file: not a pi session file");
        assert_eq!(err.code(), "file_read_error");

        let err = stream_history(dir.path(), &mut sink).unwrap_err();
        assert!(matches!(err, HistoryError::Unreadable(_)), "{err:?}");
        // A device or a FIFO is never read (one would never end, the other never open).
        let err = stream_history(Path::new("/dev/zero"), &mut sink).unwrap_err();
        assert_eq!(err.to_string(), "cannot read session file: not a regular file");
        let fifo = dir.path().join("fifo");
        let c_fifo = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_fifo.as_ptr(), 0o600) }, 0);
        assert!(matches!(fork_messages(&fifo), Err(HistoryError::Unreadable(_))));

        // Too many entries: refused, not indexed without end.
        let many = (0..=MAX_ENTRIES).map(|i| format!("{{\"id\":\"{i}\"}}\n")).collect::<String>();
        std::fs::write(&garbage, many).unwrap();
        let err = stream_history(&garbage, &mut sink).unwrap_err();
        assert_eq!(err.to_string(), format!("cannot read session file: more than {MAX_ENTRIES} entries"));
        std::fs::write(&garbage, "{\"id\":\"a\"}\n".repeat(MAX_ENTRIES)).unwrap();
        assert_eq!(stream_history(&garbage, &mut sink).unwrap().messages, 0);

        // An output error stops the stream.
        let file = dir.path().join("s.jsonl");
        std::fs::write(&file, lines(&[HEADER.to_string(), entry("a1", None, user("x"))])).unwrap();
        let err = stream_history(&file, &mut |_| Err(io::Error::other("client went away"))).unwrap_err();
        assert_eq!(err.to_string(), "cannot read session file: client went away");
    }

    #[test]
    fn file_rewritten_between_passes_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.jsonl");
        std::fs::write(&path, lines(&[HEADER.to_string(), entry("a1", None, user("first"))])).unwrap();
        // Another entry of the same length in the same place, or everything moved by a few bytes.
        for content in [
            lines(&[HEADER.to_string(), entry("zz", None, user("first"))]),
            lines(&[HEADER.replace("\"s1\"", "\"s1-longer\""), entry("a1", None, user("first"))]),
        ] {
            let (file, index, buf) = index_source(open(&path).unwrap()).unwrap();
            std::fs::write(&path, content).unwrap();
            let err = read_branch(file, &index, &index.branch(), buf, |_, _| Ok(())).unwrap_err();
            assert_eq!(err.to_string(), "cannot read session file: the session file changed while it was read");
            std::fs::write(&path, lines(&[HEADER.to_string(), entry("a1", None, user("first"))])).unwrap();
        }
    }

    #[test]
    fn cycles_end_the_branch() {
        let file = lines(&[
            HEADER.to_string(),
            entry("a1", Some("a2"), user("first")),
            entry("a2", Some("a1"), assistant("one")),
        ]);
        assert_eq!(stream(&file).0, json!([user("first"), assistant("one")]));
    }

    #[test]
    fn output_comes_in_chunks() {
        let big = "x".repeat(OUT_CHUNK * 2);
        let mut rows = vec![HEADER.to_string()];
        for i in 0..2000 {
            rows.push(entry(&format!("{i:08x}"), (i > 0).then(|| format!("{:08x}", i - 1)).as_deref(), user("hi")));
        }
        rows.push(entry("big", Some(&format!("{:08x}", 1999)), user(&big)));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.jsonl");
        std::fs::write(&path, lines(&rows)).unwrap();
        let mut pieces = Vec::new();
        let mut out = Vec::new();
        stream_history(&path, &mut |b| {
            pieces.push(b.len());
            out.extend_from_slice(b);
            Ok(())
        })
        .unwrap();
        assert!(pieces.iter().rev().skip(2).all(|&n| n <= OUT_CHUNK), "{pieces:?}");
        assert!(pieces.iter().any(|&n| n > OUT_CHUNK * 2), "the big message goes out whole");
        assert_eq!(serde_json::from_slice::<Vec<Value>>(&out).unwrap().len(), 2001);
    }

    #[test]
    fn fork_messages_text() {
        let file = lines(&[
            HEADER.to_string(),
            entry("a1", None, json!({"role": "user", "content": "plain"})),
            entry(
                "a2",
                Some("a1"),
                json!({"role": "user", "content": [
                {"type": "text", "text": "a"}, {"type": "image", "data": "AAAA", "mimeType": "image/png"},
                {"type": "text", "text": "b"}]}),
            ),
            entry("a3", Some("a2"), json!({"role": "user", "content": "   "})),
            entry("a4", Some("a3"), json!({"role": "assistant", "content": "not a user"})),
            entry("a5", Some("a4"), json!({"role": "bashExecution", "command": "ls", "output": ""})),
        ]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.jsonl");
        std::fs::write(&path, file).unwrap();
        let fork = fork_messages(&path).unwrap();
        assert_eq!(
            fork,
            [
                ForkMessage { entry_id: "a1".into(), text: "plain".into() },
                ForkMessage { entry_id: "a2".into(), text: "ab".into() },
            ]
        );
        assert_eq!(serde_json::to_value(&fork[0]).unwrap(), json!({"entryId": "a1", "text": "plain"}));
    }

    #[test]
    fn long_ids_and_escaped_keys() {
        let long = "0123456789abcdef0123456789abcdef";
        let file = lines(&[
            HEADER.to_string(),
            entry(long, None, user("first")),
            format!(
                r#"{{"\u0074ype":"message","id":"x\u0031","parentId":"{long}","message":{{"role":"user","content":"second"}}}}"#
            ),
        ]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.jsonl");
        std::fs::write(&path, file).unwrap();
        let fork = fork_messages(&path).unwrap();
        let ids: Vec<_> = fork.iter().map(|f| f.entry_id.as_str()).collect();
        assert_eq!(ids, [long, "x1"]);
    }

    #[test]
    fn line_reader_limits() {
        let data = b"ab\n\ncd";
        let mut r = LineReader::new(&data[..]);
        let mut got = Vec::new();
        while let Some(p) = r.next_piece().unwrap() {
            if let Piece::Line { offset, range, terminated } = p {
                got.push((offset, r.buf[range].to_vec(), terminated));
            }
        }
        assert_eq!(got, [(0, b"ab".to_vec(), true), (3, vec![], true), (4, b"cd".to_vec(), false)]);
        assert_eq!(r.offset, 6);
    }

    #[test]
    fn over_long_line_is_skipped() {
        let mut data = vec![b'x'; MAX_LINE + 10];
        data.extend_from_slice(b"\nok\n");
        let mut r = LineReader::new(&data[..]);
        assert!(matches!(r.next_piece().unwrap(), Some(Piece::TooLong)));
        match r.next_piece().unwrap() {
            Some(Piece::Line { offset, range, terminated: true }) => {
                assert_eq!(offset, (MAX_LINE + 11) as u64);
                assert_eq!(&r.buf[range], b"ok");
            }
            _ => panic!("expected the next line"),
        }
        assert!(r.next_piece().unwrap().is_none());
    }
}
