//! A look at a pi JSON line that finds its routing fields and validates it, without building a
//! tree of the whole line.
//!
//! pi writes one JSON object per line. The relay needs only `type`, and for responses `id`,
//! `command` and `success`; everything else (a `message_update` may carry megabytes of partial
//! message) is skipped by serde's `IgnoredAny`, which checks the syntax without allocating.
//! The line itself is then forwarded as the bytes pi wrote.

use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::borrow::Cow;

use crate::protocol::EventMeta;

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    id: Option<IdValue<'a>>,
    #[serde(borrow, default)]
    command: Option<Cow<'a, str>>,
    #[serde(default)]
    success: Option<bool>,
}

/// pi echoes whatever `id` a command carried; clients normally send strings, but a number
/// must not make the line unreadable. Anything but a string is skipped in place: not through
/// `#[serde(untagged)]`, which would first copy the value into a tree (about 16 bytes of
/// memory per byte of `[0,0,…]`).
enum IdValue<'a> {
    Str(Cow<'a, str>),
    Other,
}

impl<'de: 'a, 'a> Deserialize<'de> for IdValue<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(IdVisitor(std::marker::PhantomData))
    }
}

struct IdVisitor<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for IdVisitor<'a> {
    type Value = IdValue<'a>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<IdValue<'a>, E> {
        Ok(IdValue::Str(Cow::Borrowed(s)))
    }

    fn visit_str<E>(self, s: &str) -> Result<IdValue<'a>, E> {
        Ok(IdValue::Str(Cow::Owned(s.to_owned())))
    }

    fn visit_string<E>(self, s: String) -> Result<IdValue<'a>, E> {
        Ok(IdValue::Str(Cow::Owned(s)))
    }

    fn visit_bool<E>(self, _: bool) -> Result<IdValue<'a>, E> {
        Ok(IdValue::Other)
    }

    fn visit_i64<E>(self, _: i64) -> Result<IdValue<'a>, E> {
        Ok(IdValue::Other)
    }

    fn visit_u64<E>(self, _: u64) -> Result<IdValue<'a>, E> {
        Ok(IdValue::Other)
    }

    fn visit_f64<E>(self, _: f64) -> Result<IdValue<'a>, E> {
        Ok(IdValue::Other)
    }

    fn visit_unit<E>(self) -> Result<IdValue<'a>, E> {
        Ok(IdValue::Other)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<IdValue<'a>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(IdValue::Other)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<IdValue<'a>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(IdValue::Other)
    }
}

/// Why a line was not accepted as a pi event.
#[derive(Debug, thiserror::Error)]
#[error("not a pi event (one JSON object with a string `type`): {0}")]
pub struct NotJson(String);

/// Validates `line` as one JSON object and returns its routing fields.
pub fn inspect(line: &[u8]) -> Result<EventMeta, NotJson> {
    // serde_json checks UTF-8 only in the strings it reads: a byte like 0xff inside a skipped
    // member would pass, and the line could not go to a browser as a text frame.
    let line = std::str::from_utf8(line).map_err(|e| NotJson(e.to_string()))?;
    // A derived struct also reads from an array (`[]`, `["message_update"]`): only an object is
    // an event (found by the envelope_inspect fuzz target).
    if !line.trim_start().starts_with('{') {
        return Err(NotJson("not a JSON object".into()));
    }
    let env: Envelope<'_> = serde_json::from_str(line).map_err(|e| NotJson(e.to_string()))?;
    Ok(EventMeta {
        kind: env.kind.map(Cow::into_owned).unwrap_or_default(),
        id: match env.id {
            Some(IdValue::Str(s)) => Some(s.into_owned()),
            _ => None,
        },
        command: env.command.map(Cow::into_owned),
        success: env.success,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(line: &str, kind: &str, id: Option<&str>, command: Option<&str>, success: Option<bool>) {
        let m = inspect(line.as_bytes()).unwrap();
        assert_eq!(
            (m.kind.as_str(), m.id.as_deref(), m.command.as_deref(), m.success),
            (kind, id, command, success),
            "{line}"
        );
    }

    #[test]
    fn routing_fields() {
        check(r#"{"type":"agent_start"}"#, "agent_start", None, None, None);
        check(
            r#"{"type":"response","id":"a\"b","command":"bash","success":true,"data":{"x":[1,2]}}"#,
            "response",
            Some("a\"b"),
            Some("bash"),
            Some(true),
        );
        check(
            r#"{"id":5,"type":"response","command":"abort","success":false}"#,
            "response",
            None,
            Some("abort"),
            Some(false),
        );
        check(
            r#"{"type":"message_update","message":{"content":[{"type":"text","text":"\u00e9"}]}}"#,
            "message_update",
            None,
            None,
            None,
        );
        check(r#"{}"#, "", None, None, None);
        check(r#"{"id":[1,{"a":[]}],"type":"x"}"#, "x", None, None, None);
        check(r#"{"id":null,"type":"x","id2":{}}"#, "x", None, None, None);
        check(r#"{"id":"\u0041","type":"x"}"#, "x", Some("A"), None, None);
    }

    #[test]
    fn rejects_what_is_not_one_json_object() {
        for bad in ["", "hello", "{", r#"{"type":1}"#, "[1]", r#"{"type":"a"} x"#, "{\"a\":\"\u{0}\"}"] {
            assert!(inspect(bad.as_bytes()).is_err(), "{bad:?}");
        }
        assert!(inspect(b"{\"type\":\"a\xff\"}").is_err());
        // Found by the envelope_inspect fuzz target: invalid UTF-8 in a member that is skipped.
        assert!(inspect(b"{\"\":{\"\":{\"\x80\":0}}}").is_err());
        assert!(inspect(b"{\"type\":\"a\",\"x\":\"\xc3\"}").is_err());
        assert!(inspect(b"\t[]").is_err());
        assert!(inspect(br#"["message_update"]"#).is_err());
    }
}
