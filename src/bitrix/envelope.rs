//! The envelope of every Bitrix24 answer, in one place: `result`, `error` +
//! `error_description`, `total`, `next` and `time` (see `docs/bitrix24-api.md` §1.5 and §1.6).
use serde::Deserialize;
use serde::de::Deserializer;
use serde_json::{Map, Value};

use super::error::BitrixError;

/// The `time` object of an answer. Any field may be missing; numbers may be int or float.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct TimeInfo {
    pub start: Option<f64>,
    pub finish: Option<f64>,
    pub duration: Option<f64>,
    pub processing: Option<f64>,
    /// Accumulated operating time of the billed method in the current window.
    pub operating: Option<f64>,
    /// Unix time when the oldest basket of the window drops out.
    pub operating_reset_at: Option<f64>,
    pub date_start: Option<String>,
    pub date_finish: Option<String>,
}

impl TimeInfo {
    pub fn parse(v: &Value) -> Self {
        let num = |k: &str| match v.get(k) {
            Some(Value::Number(n)) => n.as_f64(),
            Some(Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        };
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        Self {
            start: num("start"),
            finish: num("finish"),
            duration: num("duration"),
            processing: num("processing"),
            operating: num("operating"),
            operating_reset_at: num("operating_reset_at"),
            date_start: s("date_start"),
            date_finish: s("date_finish"),
        }
    }
}

/// A successful answer.
#[derive(Debug, Clone)]
pub struct Response<R = Value> {
    pub result: R,
    pub total: Option<u64>,
    pub next: Option<u64>,
    pub time: TimeInfo,
}

/// The outer body of an answer: `result` (shape `R`) and the envelope fields.
#[derive(Deserialize)]
#[serde(bound = "R: Deserialize<'de>")]
struct Body<R> {
    #[serde(default = "none", deserialize_with = "present")]
    result: Option<R>,
    #[serde(default, deserialize_with = "present")]
    error: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    error_description: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    total: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    next: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    time: Option<Value>,
}

fn none<R>() -> Option<R> {
    None
}

/// A field that is present (even as `null`) is `Some`.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// Parses one HTTP answer: an error envelope (classified by code), or `result` (of shape `R`:
/// a `Value`, or [`super::raw::RawResult`] to keep rows as text) with its paging and `time`.
/// A body that is not complete JSON, an error status without an error body, or an answer
/// without `result` is malformed, never an empty result.
pub fn parse_answer<R: for<'de> Deserialize<'de>>(
    method: &str,
    status: u16,
    body: &[u8],
) -> Result<Response<R>, BitrixError> {
    let b: Body<R> = serde_json::from_slice(body).map_err(|e| BitrixError::Malformed {
        method: method.to_string(),
        status,
        message: format!("body of {} bytes is not complete JSON: {e}", body.len()),
    })?;
    if let Some(code) = &b.error {
        let code = code.as_str().unwrap_or_default();
        let desc = b
            .error_description
            .as_ref()
            .and_then(Value::as_str)
            .unwrap_or_default();
        return Err(BitrixError::api(method, status, code, desc));
    }
    if !(200..300).contains(&status) {
        return Err(BitrixError::Malformed {
            method: method.to_string(),
            status,
            message: "error status without an error body".into(),
        });
    }
    let Some(result) = b.result else {
        return Err(BitrixError::Malformed {
            method: method.to_string(),
            status,
            message: "answer has no `result`".into(),
        });
    };
    Ok(Response {
        result,
        total: b.total.as_ref().and_then(as_u64),
        next: b.next.as_ref().and_then(as_u64),
        time: b.time.as_ref().map(TimeInfo::parse).unwrap_or_default(),
    })
}

/// A PHP array as a map: objects as they are, lists keyed "0", "1", …
pub fn as_map(v: &Value) -> Option<Map<String, Value>> {
    match v {
        Value::Object(m) => Some(m.clone()),
        Value::Array(a) => Some(
            a.iter()
                .enumerate()
                .map(|(i, v)| (i.to_string(), v.clone()))
                .collect(),
        ),
        _ => None,
    }
}

pub fn as_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64().or_else(|| n.as_f64().map(|f| f as u64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

pub fn text(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}
