//! Ordered JSON values and a PHP-compatible encoder.
//!
//! Bitrix24 encodes with `Json::encode` = `JSON_HEX_TAG|JSON_HEX_AMP|JSON_HEX_APOS|JSON_HEX_QUOT|
//! JSON_UNESCAPED_UNICODE`, and PHP escapes `/` by default. We keep our own value type so that
//! object keys keep insertion order (serde_json's default map sorts) and PHP array quirks
//! (empty array → `[]`, keys 0..n-1 → list) can be reproduced exactly.

use std::fmt::Write as _;

/// An ordered JSON value as the portal emits it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum J {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<J>),
    Obj(Vec<(String, J)>),
}

impl J {
    pub(crate) fn str(s: impl Into<String>) -> J {
        J::Str(s.into())
    }

    /// Build an object from pairs.
    pub(crate) fn obj<K: Into<String>>(pairs: impl IntoIterator<Item = (K, J)>) -> J {
        J::Obj(pairs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// A PHP associative array: encoded as a JSON list when empty or when its keys are exactly
    /// "0".."n-1" in order, otherwise as an object (PHP `json_encode` semantics).
    pub(crate) fn php_array(pairs: Vec<(String, J)>) -> J {
        let sequential = pairs
            .iter()
            .enumerate()
            .all(|(i, (k, _))| k.parse::<usize>().ok() == Some(i));
        if sequential {
            J::List(pairs.into_iter().map(|(_, v)| v).collect())
        } else {
            J::Obj(pairs)
        }
    }

    /// Look up a key in an object, or an index in a list.
    pub(crate) fn get(&self, key: &str) -> Option<&J> {
        match self {
            J::Obj(pairs) => pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            J::List(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        }
    }

    /// Scalar as PHP would cast it to string (used for batch `$result[..]` substitution).
    pub(crate) fn scalar_string(&self) -> Option<String> {
        match self {
            J::Null => Some(String::new()),
            J::Bool(b) => Some(if *b { "1".into() } else { String::new() }),
            J::Int(i) => Some(i.to_string()),
            J::Float(f) => Some(fmt_float(*f)),
            J::Str(s) => Some(s.clone()),
            _ => None,
        }
    }

    /// Encode with PHP `Json::encode` escaping.
    pub(crate) fn encode(&self) -> String {
        let mut out = String::with_capacity(256);
        write_value(&mut out, self);
        out
    }

    /// The ordered value of a serde value (object keys in the map's order).
    pub(crate) fn from_serde(v: &serde_json::Value) -> J {
        use serde_json::Value as V;
        match v {
            V::Null => J::Null,
            V::Bool(b) => J::Bool(*b),
            V::Number(n) => n
                .as_i64()
                .map_or_else(|| J::Float(n.as_f64().unwrap_or(0.0)), J::Int),
            V::String(s) => J::Str(s.clone()),
            V::Array(items) => J::List(items.iter().map(J::from_serde).collect()),
            V::Object(m) => J::Obj(
                m.iter()
                    .map(|(k, v)| (k.clone(), J::from_serde(v)))
                    .collect(),
            ),
        }
    }

    pub(crate) fn to_serde(&self) -> serde_json::Value {
        use serde_json::Value as V;
        match self {
            J::Null => V::Null,
            J::Bool(b) => V::Bool(*b),
            J::Int(i) => V::from(*i),
            J::Float(f) => serde_json::Number::from_f64(*f).map_or(V::Null, V::Number),
            J::Str(s) => V::String(s.clone()),
            J::List(items) => V::Array(items.iter().map(J::to_serde).collect()),
            J::Obj(pairs) => V::Object(
                pairs
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_serde()))
                    .collect(),
            ),
        }
    }
}

/// PHP (serialize_precision = -1) prints the shortest round-trip form; integral floats keep no
/// fraction in Bitrix24 samples (`"processing": 0`), which matches Rust's `Display`.
pub(crate) fn fmt_float(f: f64) -> String {
    if !f.is_finite() {
        return "0".into();
    }
    format!("{f}")
}

fn write_value(out: &mut String, v: &J) {
    match v {
        J::Null => out.push_str("null"),
        J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        J::Int(i) => {
            let _ = write!(out, "{i}");
        }
        J::Float(f) => out.push_str(&fmt_float(*f)),
        J::Str(s) => write_str(out, s),
        J::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        J::Obj(pairs) => {
            out.push('{');
            for (i, (k, item)) in pairs.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(out, k);
                out.push(':');
                write_value(out, item);
            }
            out.push('}');
        }
    }
}

fn write_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\u0022"),
            '\'' => out.push_str("\\u0027"),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '/' => out.push_str("\\/"),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0C}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The `error` value: a legacy `RestException` without a code may print it as the number 0
/// (crm-stage-history-list.md), spelled `"0"` inside the emulator.
pub(crate) fn error_code(code: &str) -> J {
    if code == "0" { J::Int(0) } else { J::str(code) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_php_json_encode() {
        let v = J::str("[B]x[/B] <a href='u'>&\"q\" Привет 🎉\n");
        assert_eq!(
            v.encode(),
            r#""[B]x[\/B] \u003Ca href=\u0027u\u0027\u003E\u0026\u0022q\u0022 Привет 🎉\n""#
        );
    }

    #[test]
    fn php_array_list_vs_object() {
        assert_eq!(J::php_array(vec![]).encode(), "[]");
        let seq = J::php_array(vec![("0".into(), J::Int(1)), ("1".into(), J::Int(2))]);
        assert_eq!(seq.encode(), "[1,2]");
        let named = J::php_array(vec![("a".into(), J::Int(1))]);
        assert_eq!(named.encode(), r#"{"a":1}"#);
        let gap = J::php_array(vec![("1".into(), J::Int(1))]);
        assert_eq!(gap.encode(), r#"{"1":1}"#);
    }

    #[test]
    fn floats_and_order() {
        let v = J::obj([
            ("z", J::Float(0.5)),
            ("a", J::Float(3.0)),
            ("m", J::Int(-2)),
        ]);
        assert_eq!(v.encode(), r#"{"z":0.5,"a":3,"m":-2}"#);
    }
}
