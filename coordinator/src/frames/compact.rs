//! Compact mode for clients of a session's WebSocket (`?mode=compact`): a streaming
//! `message_update` goes out without the two copies of the partial message pi puts in it
//! (`message` and `assistantMessageEvent.partial`) and with a structural patch instead,
//! `"piface_patch": [op, …]`, that turns the previous partial (the `message` of the previous
//! `message_update`) into the new one:
//!
//! - `{"path": [k, …], "append": "s"}` — the string at `path` gets `s` appended;
//! - `{"path": [k, …], "set": v}` — the value at `path` becomes `v` (an array index equal to the
//!   array's length appends; `[]` is the whole message);
//! - `{"path": [k, …], "delete": true}` — the key at `path` goes.
//!
//! Path elements are object keys (strings) and array indices (numbers).
//!
//! [`Compactor`] makes these frames from pi's lines in order. The usual update — a token
//! appended to the text, thinking or arguments being streamed — is found without parsing the
//! message: the bytes that changed are an insertion exactly where the previous append ended,
//! and they form a valid piece of a JSON string. Anything else (a new content part, usage,
//! a stop reason) goes through a structural diff of the two messages.

use bytes::{BufMut, Bytes, BytesMut};
use serde_json::Value;

use piface_shared::delta;

/// One element of a patch path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    /// An object key.
    Field(String),
    /// An array index.
    Index(usize),
}

/// One patch operation.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Append to the string at the path.
    Append(Vec<Key>, String),
    /// Set the value at the path.
    Set(Vec<Key>, Value),
    /// Remove the key at the path.
    Delete(Vec<Key>),
}

fn path_json(path: &[Key]) -> Value {
    Value::Array(
        path.iter()
            .map(|k| match k {
                Key::Field(f) => Value::String(f.clone()),
                Key::Index(i) => Value::from(*i),
            })
            .collect(),
    )
}

impl Op {
    /// Reads an operation as it comes off the wire.
    pub fn from_json(v: &Value) -> Result<Op, String> {
        let path = v
            .get("path")
            .and_then(Value::as_array)
            .ok_or("an op needs a path")?
            .iter()
            .map(|k| match k {
                Value::String(s) => Ok(Key::Field(s.clone())),
                n => n.as_u64().map(|i| Key::Index(i as usize)).ok_or(format!("bad path element {n}")),
            })
            .collect::<Result<Vec<Key>, String>>()?;
        if let Some(s) = v.get("append") {
            Ok(Op::Append(path, s.as_str().ok_or("append takes a string")?.to_string()))
        } else if let Some(s) = v.get("set") {
            Ok(Op::Set(path, s.clone()))
        } else if v.get("delete") == Some(&Value::Bool(true)) {
            Ok(Op::Delete(path))
        } else {
            Err(format!("unknown op {v}"))
        }
    }

    /// The operation as it goes on the wire.
    pub fn to_json(&self) -> Value {
        match self {
            Op::Append(p, s) => serde_json::json!({ "path": path_json(p), "append": s }),
            Op::Set(p, v) => serde_json::json!({ "path": path_json(p), "set": v }),
            Op::Delete(p) => serde_json::json!({ "path": path_json(p), "delete": true }),
        }
    }
}

/// The operations that turn `old` into `new`: strings that grew at their end become appends,
/// objects and arrays are compared member by member, anything else is set.
pub fn diff(old: &Value, new: &Value) -> Vec<Op> {
    let mut ops = Vec::new();
    diff_at(&mut Vec::new(), old, new, &mut ops);
    ops
}

fn diff_at(path: &mut Vec<Key>, old: &Value, new: &Value, ops: &mut Vec<Op>) {
    if old == new {
        return;
    }
    match (old, new) {
        (Value::String(a), Value::String(b)) if b.starts_with(a.as_str()) => {
            ops.push(Op::Append(path.clone(), b[a.len()..].to_string()));
        }
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                path.push(Key::Field(k.clone()));
                match a.get(k) {
                    Some(old) => diff_at(path, old, v, ops),
                    None => ops.push(Op::Set(path.clone(), v.clone())),
                }
                path.pop();
            }
            for k in a.keys().filter(|k| !b.contains_key(*k)) {
                path.push(Key::Field(k.clone()));
                ops.push(Op::Delete(path.clone()));
                path.pop();
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() <= b.len() => {
            for (i, v) in b.iter().enumerate() {
                path.push(Key::Index(i));
                match a.get(i) {
                    Some(old) => diff_at(path, old, v, ops),
                    None => ops.push(Op::Set(path.clone(), v.clone())),
                }
                path.pop();
            }
        }
        _ => ops.push(Op::Set(path.clone(), new.clone())),
    }
}

/// Applies `ops` to `value` (what a compact client does); an error names the first op that
/// does not fit.
pub fn apply(value: &mut Value, ops: &[Op]) -> Result<(), String> {
    for op in ops {
        let (path, last) = match op {
            Op::Append(p, _) | Op::Set(p, _) | Op::Delete(p) => match p.split_last() {
                Some((last, path)) => (path, Some(last)),
                None => (&p[..], None),
            },
        };
        let mut at = &mut *value;
        for k in path {
            at = match (k, at) {
                (Key::Field(f), Value::Object(m)) => m.get_mut(f).ok_or(format!("no key {f}"))?,
                (Key::Index(i), Value::Array(a)) => a.get_mut(*i).ok_or(format!("no index {i}"))?,
                (k, _) => return Err(format!("{k:?} into a scalar")),
            };
        }
        match (op, last) {
            (Op::Set(_, v), None) => *at = v.clone(),
            (Op::Set(_, v), Some(Key::Field(f))) => {
                at.as_object_mut().ok_or("set a key of a non-object")?.insert(f.clone(), v.clone());
            }
            (Op::Set(_, v), Some(Key::Index(i))) => {
                let a = at.as_array_mut().ok_or("set an index of a non-array")?;
                match (*i).cmp(&a.len()) {
                    std::cmp::Ordering::Less => a[*i] = v.clone(),
                    std::cmp::Ordering::Equal => a.push(v.clone()),
                    std::cmp::Ordering::Greater => return Err(format!("index {i} past the end")),
                }
            }
            (Op::Delete(_), Some(Key::Field(f))) => {
                at.as_object_mut().ok_or("delete from a non-object")?.remove(f);
            }
            // `diff` of two strings, the second extending the first, is an append at `[]`.
            (Op::Append(_, s), None) => match at {
                Value::String(t) => t.push_str(s),
                _ => return Err("append to a non-string".into()),
            },
            (Op::Append(_, s), Some(last)) => {
                let target = match (last, at) {
                    (Key::Field(f), Value::Object(m)) => m.get_mut(f),
                    (Key::Index(i), Value::Array(a)) => a.get_mut(*i),
                    _ => None,
                };
                match target {
                    Some(Value::String(t)) => t.push_str(s),
                    _ => return Err("append to a non-string".into()),
                }
            }
            _ => return Err(format!("bad op {op:?}")),
        }
    }
    Ok(())
}

/// Where the last append went: the byte offset in the previous message, just before the
/// closing quote of the string that grew, and that string's path.
#[derive(Debug, Clone)]
struct Cursor {
    at: usize,
    /// The path as JSON, ready to write.
    path_json: Bytes,
}

/// Makes compact frames from one session's pi lines, in order. See the module docs.
#[derive(Debug, Default)]
pub struct Compactor {
    /// The `message` of the previous update of the message being streamed.
    base: Option<Bytes>,
    cursor: Option<Cursor>,
}

impl Compactor {
    /// Forgets the message being streamed (a new one starts, or lines were missed).
    pub fn reset(&mut self) {
        self.base = None;
        self.cursor = None;
    }

    /// The compact frame of pi's line `line`, if it has one: `None` for anything but a
    /// `message_update` that follows another update of the same message (the first update of
    /// a message goes out in full and becomes the base). Any line other than an update resets.
    pub fn push(&mut self, kind: &str, line: &Bytes) -> Option<Bytes> {
        if kind != "message_update" {
            self.reset();
            return None;
        }
        let spans = delta::repeated_values(line);
        let message = spans.iter().find(|(slot, _)| *slot == 1).map(|(_, r)| r.clone());
        let partial = spans.iter().find(|(slot, _)| *slot == 0).map(|(_, r)| r.clone());
        let (Some(message), Some(partial)) = (message, partial) else {
            self.reset();
            return None;
        };
        if line[partial.clone()] != line[message.clone()] {
            // Not the usual shape; clients get it whole.
            self.reset();
            return None;
        }
        let new = line.slice(message.clone());
        let Some(old) = self.base.replace(new.clone()) else {
            self.cursor = None;
            return None;
        };
        let patch = match self.fast_append(&old, &new) {
            Some(patch) => patch,
            None => match self.slow_diff(&old, &new) {
                Some(patch) => patch,
                None => {
                    self.reset();
                    return None;
                }
            },
        };
        let frame = frame(line, partial, message, &patch);
        if frame.is_none() {
            self.reset();
        }
        frame
    }

    /// The patch of an update that only appended to the string the previous append went to.
    fn fast_append(&mut self, old: &[u8], new: &[u8]) -> Option<Bytes> {
        let cursor = self.cursor.as_mut()?;
        let added = new.len().checked_sub(old.len())?;
        let at = cursor.at;
        if at > old.len() || new[..at] != old[..at] || new[at + added..] != old[at..] {
            return None;
        }
        let inserted = &new[at..at + added];
        // A piece of a JSON string: no bare quote or control byte, and escapes that end in it.
        let mut quoted = Vec::with_capacity(added + 2);
        quoted.push(b'"');
        quoted.extend_from_slice(inserted);
        quoted.push(b'"');
        serde_json::from_slice::<String>(&quoted).ok()?;
        cursor.at += added;
        let mut patch = BytesMut::with_capacity(added + cursor.path_json.len() + 32);
        patch.put_slice(b"[{\"path\":");
        patch.put_slice(&cursor.path_json);
        patch.put_slice(b",\"append\":");
        patch.put_slice(&quoted);
        patch.put_slice(b"}]");
        Some(patch.freeze())
    }

    /// The patch from a structural diff; notes where a lone append went for the next update.
    fn slow_diff(&mut self, old: &[u8], new: &[u8]) -> Option<Bytes> {
        let (a, b): (Value, Value) = (serde_json::from_slice(old).ok()?, serde_json::from_slice(new).ok()?);
        let ops = diff(&a, &b);
        self.cursor = match ops.as_slice() {
            [Op::Append(path, _)] => {
                string_end(new, path).map(|at| Cursor { at, path_json: Bytes::from(path_json(path).to_string()) })
            }
            _ => None,
        };
        let json: Vec<Value> = ops.iter().map(Op::to_json).collect();
        Some(Bytes::from(serde_json::to_vec(&json).ok()?))
    }
}

/// The byte offset of the closing quote of the string at `path` in the JSON `doc`.
fn string_end(doc: &[u8], path: &[Key]) -> Option<usize> {
    use serde_json::value::RawValue;
    let text = std::str::from_utf8(doc).ok()?;
    let mut at: &RawValue = serde_json::from_str(text).ok()?;
    for k in path {
        at = match k {
            Key::Field(f) => {
                let m: std::collections::HashMap<std::borrow::Cow<str>, &RawValue> =
                    serde_json::from_str(at.get()).ok()?;
                *m.get(f.as_str())?
            }
            Key::Index(i) => {
                let a: Vec<&RawValue> = serde_json::from_str(at.get()).ok()?;
                *a.get(*i)?
            }
        };
    }
    let s = at.get();
    if !s.starts_with('"') {
        return None;
    }
    let start = s.as_ptr() as usize - text.as_ptr() as usize;
    Some(start + s.len() - 1)
}

/// `line` without its `partial` and `message` members, with `"piface_patch":<patch>` last.
/// `None` when the line is not laid out as pi writes it (then it goes out whole).
fn frame(line: &[u8], partial: std::ops::Range<usize>, message: std::ops::Range<usize>, patch: &[u8]) -> Option<Bytes> {
    let mut cuts = [member(line, partial, b"\"partial\":")?, member(line, message, b"\"message\":")?];
    cuts.sort_by_key(|r| r.start);
    let end = line.iter().rposition(|b| *b == b'}')?;
    if cuts[1].end > end {
        return None;
    }
    let mut out = BytesMut::with_capacity(end + patch.len() + 20);
    out.put_slice(&line[..cuts[0].start]);
    out.put_slice(&line[cuts[0].end..cuts[1].start]);
    out.put_slice(&line[cuts[1].end..end]);
    if out.last() != Some(&b'{') {
        out.put_u8(b',');
    }
    out.put_slice(b"\"piface_patch\":");
    out.put_slice(patch);
    out.put_u8(b'}');
    Some(out.freeze())
}

/// The bytes of the member whose value is at `value`, with the comma that separates it from
/// its neighbours: `,"key":value` or `"key":value,`.
fn member(line: &[u8], value: std::ops::Range<usize>, key: &[u8]) -> Option<std::ops::Range<usize>> {
    let start = value.start.checked_sub(key.len())?;
    if &line[start..value.start] != key {
        return None;
    }
    match (line.get(start.wrapping_sub(1)), line.get(value.end)) {
        (Some(b','), _) => Some(start - 1..value.end),
        (Some(b'{'), Some(b',')) => Some(start..value.end + 1),
        (Some(b'{'), Some(b'}')) => Some(start..value.end),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(message: &Value, event: &str) -> Bytes {
        let m = message.to_string();
        Bytes::from(format!(
            r#"{{"type":"message_update","assistantMessageEvent":{{"type":"{event}","contentIndex":0,"partial":{m}}},"message":{m}}}"#
        ))
    }

    /// Follows a stream as a compact client would and checks every partial.
    fn follow(messages: &[Value]) -> (usize, usize) {
        let mut c = Compactor::default();
        let mut client: Option<Value> = None;
        let (mut full, mut compact) = (0, 0);
        for m in messages {
            let line = update(m, "text_delta");
            full += line.len();
            match c.push("message_update", &line) {
                Some(frame) => {
                    compact += frame.len();
                    let v: Value = serde_json::from_slice(&frame).expect("valid JSON");
                    assert!(v.get("message").is_none() && v["assistantMessageEvent"].get("partial").is_none());
                    assert_eq!(v["assistantMessageEvent"]["type"], "text_delta");
                    let ops: Vec<Op> =
                        v["piface_patch"].as_array().unwrap().iter().map(|o| Op::from_json(o).unwrap()).collect();
                    let base = client.as_mut().expect("a compact frame only after a base");
                    apply(base, &ops).unwrap();
                }
                None => {
                    compact += line.len();
                    client = Some(m.clone());
                }
            }
            assert_eq!(client.as_ref(), Some(m));
        }
        (full, compact)
    }

    #[test]
    fn a_growing_answer_becomes_appends_and_other_changes_still_apply() {
        let mut stream = Vec::new();
        let mut text = String::new();
        for i in 0..300 {
            text.push_str(&format!("tok{i} \"q\" é\\ "));
            let mut m = serde_json::json!({
                "role": "assistant",
                "content": [{"type": "thinking", "thinking": "hm"}, {"type": "text", "text": text}],
                "usage": {"output": i / 100},
                "stopReason": "stop"
            });
            if i > 250 {
                m["content"].as_array_mut().unwrap().push(serde_json::json!({"type":"toolCall","arguments":{"n": i}}));
                m.as_object_mut().unwrap().remove("stopReason");
            }
            stream.push(m);
        }
        let (full, compact) = follow(&stream);
        assert!(compact * 10 < full, "{compact} of {full}");
    }

    #[test]
    fn odd_lines_go_out_whole() {
        let mut c = Compactor::default();
        let m = serde_json::json!({"role":"assistant","content":[]});
        assert!(c.push("message_update", &update(&m, "start")).is_none(), "first update is the base");
        let other = Bytes::from_static(br#"{"type":"message_update","message":{"a":1}}"#);
        assert!(c.push("message_update", &other).is_none(), "no partial");
        assert!(c.push("message_end", &Bytes::from_static(b"{}")).is_none());
        assert!(c.base.is_none());
        let spaced = Bytes::from(format!(
            r#"{{"type":"message_update", "assistantMessageEvent":{{"partial": {m}}}, "message": {m}}}"#
        ));
        assert!(c.push("message_update", &spaced).is_none());
        assert!(c.push("message_update", &spaced).is_none(), "not laid out as pi writes it");
    }

    #[test]
    fn a_diff_always_applies_even_at_the_root() {
        for (a, b) in [
            (serde_json::json!("ab"), serde_json::json!("abc")),
            (serde_json::json!(""), serde_json::json!(" ")),
            (serde_json::json!([1]), serde_json::json!("x")),
            (serde_json::json!({"a": "b"}), serde_json::json!({"a": "bc", "d": [1, 2]})),
        ] {
            let mut v = a.clone();
            apply(&mut v, &diff(&a, &b)).unwrap();
            assert_eq!(v, b);
        }
    }

    #[test]
    fn apply_refuses_what_does_not_fit() {
        let mut v = serde_json::json!({"a": [1]});
        assert!(apply(&mut v, &[Op::Append(vec![Key::Field("a".into())], "x".into())]).is_err());
        assert!(apply(&mut v, &[Op::Set(vec![Key::Field("a".into()), Key::Index(3)], Value::Null)]).is_err());
        apply(&mut v, &[Op::Set(vec![Key::Field("a".into()), Key::Index(1)], Value::from(2))]).unwrap();
        assert_eq!(v, serde_json::json!({"a": [1, 2]}));
    }
}
