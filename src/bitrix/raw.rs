//! Answers parsed without a `Value` DOM for the rows: the row path's shape.
//!
//! A listing batch answer is megabytes of rows. Parsing it into `serde_json::Value` (an
//! `IndexMap` of owned strings per row, then clones per section and per row) was most of the
//! cost of moving a row. Here one pass over the body keeps every command's result one level
//! deep: a list or object of raw JSON texts ([`RawResult`]). Rows stay JSON text
//! ([`RawRow`]) until normalisation reads only the keys its columns need.
//!
//! The checks are those of [`super::envelope::parse_answer`] and
//! [`super::batch::BatchResponse::parse`]: a body that is not complete JSON, an error envelope,
//! an error status, a missing `result` and a section of the wrong shape are errors, never an
//! empty page.
use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::batch::{Batch, BatchResponse, CommandOutcome};
use super::envelope::{Response, TimeInfo, as_map, as_u64, parse_answer, text};
use super::error::BitrixError;

/// A command's `result`, split one level deep.
#[derive(Debug, Clone)]
pub enum RawResult {
    /// A JSON array: its elements, as text.
    List(Vec<Box<RawValue>>),
    /// A JSON object: its members (a repeated key keeps its first place and last value).
    Object(Vec<(String, Box<RawValue>)>),
    /// Anything else.
    Scalar(Value),
}

impl RawResult {
    /// The full `Value` (for callers that want the DOM).
    pub fn to_value(&self) -> Value {
        let parse = |r: &RawValue| serde_json::from_str(r.get()).unwrap_or(Value::Null);
        match self {
            RawResult::List(items) => Value::Array(items.iter().map(|r| parse(r)).collect()),
            RawResult::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, v)| (k.clone(), parse(v)))
                    .collect::<Map<String, Value>>(),
            ),
            RawResult::Scalar(v) => v.clone(),
        }
    }
}

impl<'de> serde::Deserialize<'de> for RawResult {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RawResultVisitor)
    }
}

struct RawResultVisitor;

/// Scalars become [`Value`]s; `$map` handles objects, `$seq` arrays.
macro_rules! scalar_visits {
    ($out:expr) => {
        fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
            Ok($out(Value::Bool(v)))
        }
        fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
            Ok($out(Value::from(v)))
        }
        fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
            Ok($out(Value::from(v)))
        }
        fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
            Ok($out(
                serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number),
            ))
        }
        fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
            Ok($out(Value::String(v.to_string())))
        }
        fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
            Ok($out(Value::String(v)))
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok($out(Value::Null))
        }
        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok($out(Value::Null))
        }
    };
}

impl<'de> Visitor<'de> for RawResultVisitor {
    type Value = RawResult;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    scalar_visits!(RawResult::Scalar);
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawResult, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(item) = seq.next_element::<Box<RawValue>>()? {
            items.push(item);
        }
        Ok(RawResult::List(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawResult, A::Error> {
        let mut members: Vec<(String, Box<RawValue>)> = Vec::new();
        while let Some(k) = map.next_key::<String>()? {
            let v: Box<RawValue> = map.next_value()?;
            match members.iter_mut().find(|(m, _)| *m == k) {
                Some(slot) => slot.1 = v,
                None => members.push((k, v)),
            }
        }
        Ok(RawResult::Object(members))
    }
}

/// One row as the portal printed it: a JSON object, kept as text.
#[derive(Debug, Clone)]
pub struct RawRow(Box<RawValue>);

impl PartialEq for RawRow {
    fn eq(&self, other: &Self) -> bool {
        self.0.get() == other.0.get()
    }
}

impl RawRow {
    /// A row from its JSON text; `None` unless it is one JSON object.
    pub fn from_json(text: &str) -> Option<Self> {
        let raw: Box<RawValue> = serde_json::from_str(text).ok()?;
        Self::from_raw(raw)
    }

    pub(crate) fn from_raw(raw: Box<RawValue>) -> Option<Self> {
        raw.get().starts_with('{').then_some(RawRow(raw))
    }

    /// A row from a parsed map (tests, callers that built rows themselves).
    pub fn from_map(map: &Map<String, Value>) -> Self {
        let text = serde_json::to_string(map).unwrap_or_else(|_| "{}".into());
        match RawValue::from_string(text) {
            Ok(raw) => RawRow(raw),
            Err(_) => RawRow(RawValue::NULL.to_owned()),
        }
    }

    /// The row's JSON text.
    pub fn json(&self) -> &str {
        self.0.get()
    }

    /// The row as a `Map` (parses the text).
    pub fn to_map(&self) -> Map<String, Value> {
        serde_json::from_str(self.0.get()).unwrap_or_default()
    }

    /// The row with `key: value` appended (a later duplicate key wins when the row is read,
    /// so a portal that some day sends `key` itself is overridden consistently); `None` if
    /// the row is not an object.
    pub fn with_field(&self, key: &str, value: &Value) -> Option<RawRow> {
        let text = self.json().trim_end();
        let body = text.strip_suffix('}')?.trim_end();
        let sep = if body.ends_with('{') { "" } else { "," };
        let key = serde_json::to_string(key).ok()?;
        RawRow::from_json(&format!("{body}{sep}{key}:{value}}}"))
    }

    /// The value of one key (the last, if the key repeats), without building the row.
    pub fn get(&self, key: &str) -> Option<Value> {
        let mut de = serde_json::Deserializer::from_str(self.0.get());
        FindKey { key }.deserialize(&mut de).ok().flatten()
    }
}

struct FindKey<'k> {
    key: &'k str,
}

impl<'de> DeserializeSeed<'de> for FindKey<'_> {
    type Value = Option<Value>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for FindKey<'_> {
    type Value = Option<Value>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a row object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(k) = map.next_key_seed(KeySeed)? {
            if k == self.key {
                found = Some(map.next_value::<Value>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

/// The `result` of a `batch` answer: its sections, commands' results split one level deep.
#[derive(Debug)]
pub enum RawBatchResult {
    NotObject,
    Sections(Box<Sections>),
}

/// The sections of a batch `result`.
#[derive(Debug)]
pub struct Sections {
    /// Empty when absent or `null`; `Err(())` when neither an object nor a list.
    result: Result<Vec<(String, RawResult)>, ()>,
    result_error: Option<Value>,
    result_total: Option<Value>,
    result_next: Option<Value>,
    result_time: Option<Value>,
}

impl<'de> serde::Deserialize<'de> for RawBatchResult {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(BatchVisitor)
    }
}

struct BatchVisitor;

impl<'de> Visitor<'de> for BatchVisitor {
    type Value = RawBatchResult;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    scalar_visits!(|_v: Value| RawBatchResult::NotObject);
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(RawBatchResult::NotObject)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut result = Ok(Vec::new());
        let (mut error, mut total, mut next, mut time) = (None, None, None, None);
        while let Some(k) = map.next_key_seed(KeySeed)? {
            match k.as_ref() {
                "result" => result = map.next_value::<Section>()?.0,
                "result_error" => error = Some(map.next_value::<Value>()?),
                "result_total" => total = Some(map.next_value::<Value>()?),
                "result_next" => next = Some(map.next_value::<Value>()?),
                "result_time" => time = Some(map.next_value::<Value>()?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(RawBatchResult::Sections(Box::new(Sections {
            result,
            result_error: error,
            result_total: total,
            result_next: next,
            result_time: time,
        })))
    }
}

/// The `result` section: commands by name (a PHP list is keyed "0", "1", …).
struct Section(Result<Vec<(String, RawResult)>, ()>);

impl<'de> serde::Deserialize<'de> for Section {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SectionVisitor)
    }
}

struct SectionVisitor;

impl<'de> Visitor<'de> for SectionVisitor {
    type Value = Section;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    scalar_visits!(|v: Value| Section(if v.is_null() { Ok(Vec::new()) } else { Err(()) }));
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(r) = seq.next_element::<RawResult>()? {
            out.push((out.len().to_string(), r));
        }
        Ok(Section(Ok(out)))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out: Vec<(String, RawResult)> = Vec::new();
        while let Some(k) = map.next_key::<String>()? {
            let v: RawResult = map.next_value()?;
            match out.iter_mut().find(|(m, _)| *m == k) {
                Some(slot) => slot.1 = v,
                None => out.push((k, v)),
            }
        }
        Ok(Section(Ok(out)))
    }
}

/// [`BatchResponse::parse`] for a raw batch answer.
pub fn split_batch(
    batch: &Batch,
    outer: Response<RawBatchResult>,
) -> Result<BatchResponse<RawResult>, BitrixError> {
    let malformed = |message: String| BitrixError::Malformed {
        method: "batch".into(),
        status: 200,
        message,
    };
    let RawBatchResult::Sections(sections) = outer.result else {
        return Err(malformed("batch result is not an object".into()));
    };
    let Sections {
        result,
        result_error,
        result_total,
        result_next,
        result_time,
    } = *sections;
    let section = |key: &str, v: Option<Value>| -> Result<Map<String, Value>, BitrixError> {
        match v {
            None | Some(Value::Null) => Ok(Map::new()),
            Some(v) => as_map(&v).ok_or_else(|| {
                malformed(format!("section `{key}` is neither an object nor a list"))
            }),
        }
    };
    let mut results = result
        .map_err(|()| malformed("section `result` is neither an object nor a list".into()))?;
    let errors = section("result_error", result_error)?;
    let totals = section("result_total", result_total)?;
    let nexts = section("result_next", result_next)?;
    let times = section("result_time", result_time)?;
    let outcomes = batch
        .commands()
        .map(|(name, method)| {
            let outcome = if let Some(err) = errors.get(name) {
                CommandOutcome::Err(BitrixError::api(
                    method,
                    0,
                    &text(err.get("error")),
                    &text(err.get("error_description")),
                ))
            } else if let Some(i) = results.iter().position(|(n, _)| n == name) {
                let (_, result) = results.swap_remove(i);
                CommandOutcome::Ok(Response {
                    result,
                    total: totals.get(name).and_then(as_u64),
                    next: nexts.get(name).and_then(as_u64),
                    time: times.get(name).map(TimeInfo::parse).unwrap_or_default(),
                })
            } else {
                CommandOutcome::Missing
            };
            (name.to_string(), outcome)
        })
        .collect();
    Ok(BatchResponse::from_parts(outcomes, outer.time))
}

/// Parses a `batch` answer body straight into per-command raw results (one pass).
pub fn parse_batch_answer(
    batch: &Batch,
    status: u16,
    body: &[u8],
) -> Result<BatchResponse<RawResult>, BitrixError> {
    split_batch(batch, parse_answer("batch", status, body)?)
}

/// An object key, borrowed when it has no escapes.
pub struct Key<'de>(pub Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(KeyVisitor)
    }
}

/// Seed form of [`Key`] (for `MapAccess::next_key_seed`).
pub struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(KeyVisitor).map(|k| k.0)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Key<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Key(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Key(Cow::Owned(v.to_string())))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Key(Cow::Owned(v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bitrix::envelope::parse_answer;

    #[test]
    fn same_outcomes_as_the_value_path() {
        let mut batch = Batch::new();
        for name in ["a", "b", "c", "d"] {
            batch
                .push(name, "crm.deal.list", serde_json::json!({}))
                .unwrap();
        }
        let body = br#"{"result":{"result":{"a":[{"ID":"1","X":{"y":[1,2]}},{"ID":"2"}],"b":{"items":[{"id":3}]},"d":[]},
            "result_error":{"c":{"error":"QUERY_LIMIT_EXCEEDED","error_description":"Too many"}},
            "result_total":{"a":2},"result_next":[],"result_time":{"a":{"operating":1.5}}},"time":{"start":1.0}}"#;
        let raw = parse_batch_answer(&batch, 200, body).unwrap();
        let val = BatchResponse::parse(&batch, parse_answer("batch", 200, body).unwrap()).unwrap();
        for (name, o) in val.outcomes() {
            match (o, raw.get(name)) {
                (CommandOutcome::Ok(v), Some(CommandOutcome::Ok(r))) => {
                    assert_eq!(v.result, r.result.to_value());
                    assert_eq!((v.total, v.next, &v.time), (r.total, r.next, &r.time));
                }
                (CommandOutcome::Err(a), Some(CommandOutcome::Err(b))) => {
                    assert_eq!(a.to_string(), b.to_string())
                }
                (CommandOutcome::Missing, Some(CommandOutcome::Missing)) => {}
                other => panic!("{name}: {other:?}"),
            }
        }
        assert_eq!(raw.time, val.time);
        for bad in [
            &br#"{"result":[1]}"#[..],
            br#"{"result":{"result":5}}"#,
            br#"{"result":{"result":{},"result_error":"x"}}"#,
            br#"{"error":"INVALID","result":{}}"#,
            br#"{"time":{}}"#,
            br#"{"result":{"result":{"a":[{"#,
        ] {
            assert!(parse_batch_answer(&batch, 200, bad).is_err());
            let v = parse_answer("batch", 200, bad).and_then(|o| BatchResponse::parse(&batch, o));
            assert!(v.is_err());
        }
    }

    #[test]
    fn raw_row_reads_one_key() {
        let row = RawRow::from_json(r#"{"ID":"7","A":{"ID":"x"},"ID":"8"}"#).unwrap();
        assert_eq!(row.get("ID"), Some(Value::String("8".into())));
        assert_eq!(row.get("B"), None);
        assert!(RawRow::from_json("[1]").is_none());
    }
}
