//! The `batch` method: up to 50 named commands in one HTTP request, later ones referring to
//! earlier results through `$result[name][…]`.
//!
//! Each command is `method?query` with the query in PHP bracket syntax, URL-encoded once
//! (references included: the server decodes the query first, then substitutes). The answer
//! holds `result`, `result_error`, `result_total`, `result_next`, `result_time` sections; PHP
//! encodes an empty section as `[]` and a section with keys 0..n-1 as a list, so both shapes
//! are read. Command names are never numeric, which keeps the sections objects.
use super::envelope::{Response, TimeInfo, as_map, as_u64, text};
use super::error::BitrixError;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Most commands one batch may carry (`CRestUtil::BATCH_MAX_LENGTH`).
pub const MAX_COMMANDS: usize = 50;

#[derive(Debug, Clone)]
struct Command {
    name: String,
    method: String,
    params: Value,
}

/// A batch under construction.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    commands: Vec<Command>,
    halt: bool,
}

impl Batch {
    pub fn new() -> Self {
        Self::default()
    }

    /// Stop at the first failing command (`halt=1`).
    pub fn halt(mut self, halt: bool) -> Self {
        self.halt = halt;
        self
    }

    /// Adds a command. Names must be unique, non-empty and not purely numeric.
    pub fn push(
        &mut self,
        name: impl Into<String>,
        method: &str,
        params: Value,
    ) -> Result<(), BitrixError> {
        let name = name.into();
        if self.commands.len() >= MAX_COMMANDS {
            return Err(BitrixError::Usage(format!(
                "a batch holds at most {MAX_COMMANDS} commands"
            )));
        }
        if name.is_empty()
            || name.chars().all(|c| c.is_ascii_digit())
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(BitrixError::Usage(format!(
                "bad batch command name `{name}`: use letters, digits, `_`, not only digits"
            )));
        }
        if self.commands.iter().any(|c| c.name == name) {
            return Err(BitrixError::Usage(format!(
                "duplicate batch command name `{name}`"
            )));
        }
        if method.eq_ignore_ascii_case("batch") {
            return Err(BitrixError::Usage("nested batch is not allowed".into()));
        }
        self.commands.push(Command {
            name,
            method: method.to_string(),
            params,
        });
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.commands.len()
    }

    pub fn is_empty(&self) -> bool {
        self.commands.is_empty()
    }

    /// Command names in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.commands.iter().map(|c| c.name.as_str())
    }

    /// The method of a command.
    pub fn method_of(&self, name: &str) -> Option<&str> {
        self.commands
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.method.as_str())
    }

    /// `(name, method)` of every command, in order.
    pub fn commands(&self) -> impl Iterator<Item = (&str, &str)> {
        self.commands
            .iter()
            .map(|c| (c.name.as_str(), c.method.as_str()))
    }

    /// The governor's kind of a command (method + digest of its `select`).
    pub fn kind_of(&self, name: &str) -> Option<String> {
        self.commands
            .iter()
            .find(|c| c.name == name)
            .map(|c| super::governor::command_kind(&c.method, &c.params))
    }

    /// `(method, kind)` of every command, in order.
    pub fn commands_with_kinds(&self) -> impl Iterator<Item = (&str, String)> {
        self.commands.iter().map(|c| {
            (
                c.method.as_str(),
                super::governor::command_kind(&c.method, &c.params),
            )
        })
    }

    /// Whether the batch halts at the first failing command.
    pub fn halts(&self) -> bool {
        self.halt
    }

    /// `(name, method, params)` of every command, in order.
    pub fn commands_with_params(&self) -> impl Iterator<Item = (&str, &str, &Value)> {
        self.commands
            .iter()
            .map(|c| (c.name.as_str(), c.method.as_str(), &c.params))
    }

    /// Whether a command refers to an earlier one's result (`$result[…]`): such commands only
    /// work inside the batch.
    pub fn has_references(&self) -> bool {
        self.commands
            .iter()
            .any(|c| c.params.to_string().contains("$result["))
    }

    /// Distinct nested methods with their number of commands.
    pub fn method_counts(&self) -> BTreeMap<&str, u32> {
        let mut m: BTreeMap<&str, u32> = BTreeMap::new();
        for c in &self.commands {
            *m.entry(c.method.as_str()).or_default() += 1;
        }
        m
    }

    /// The parameters of the `batch` call itself.
    pub fn to_params(&self) -> Value {
        let cmd: Map<String, Value> = self
            .commands
            .iter()
            .map(|c| {
                let query = php_query(&c.params);
                let line = if query.is_empty() {
                    c.method.clone()
                } else {
                    format!("{}?{}", c.method, query)
                };
                (c.name.clone(), Value::String(line))
            })
            .collect();
        serde_json::json!({ "halt": if self.halt { 1 } else { 0 }, "cmd": cmd })
    }
}

/// `$result[cmd][a][b]`: a reference to an earlier command's result.
pub fn result_ref(command: &str, path: &[&str]) -> String {
    let mut s = format!("$result[{command}]");
    for p in path {
        s.push('[');
        s.push_str(p);
        s.push(']');
    }
    s
}

/// Encodes parameters as a PHP query string (`filter[>ID]=5&select[0]=*`), URL-encoded.
pub fn php_query(params: &Value) -> String {
    let mut pairs = Vec::new();
    if let Value::Object(map) = params {
        for (k, v) in map {
            flatten(&encode_component(k), v, &mut pairs);
        }
    }
    pairs.join("&")
}

fn flatten(prefix: &str, value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                flatten(&format!("{prefix}%5B{}%5D", encode_component(k)), v, out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                flatten(&format!("{prefix}%5B{i}%5D"), v, out);
            }
        }
        Value::Null => out.push(format!("{prefix}=")),
        Value::Bool(b) => out.push(format!("{prefix}={}", if *b { "1" } else { "0" })),
        Value::Number(n) => out.push(format!("{prefix}={n}")),
        Value::String(s) => out.push(format!("{prefix}={}", encode_component(s))),
    }
}

/// RFC 3986 unreserved characters stay, everything else is percent-encoded (so `+` in a
/// time zone offset survives form decoding).
fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// What one command produced.
#[derive(Debug)]
pub enum CommandOutcome<R = Value> {
    Ok(Response<R>),
    Err(BitrixError),
    /// No entry at all: the batch halted before it, or the server skipped it.
    Missing,
}

/// A parsed batch answer.
#[derive(Debug)]
pub struct BatchResponse<R = Value> {
    outcomes: Vec<(String, CommandOutcome<R>)>,
    /// The outer `time` (its `operating` grows if the portal bills the whole batch).
    pub time: TimeInfo,
}

impl BatchResponse {
    /// Splits the `result` of a `batch` call into per-command outcomes, in command order.
    pub fn parse(batch: &Batch, outer: Response) -> Result<Self, BitrixError> {
        let section = |key: &str| -> Result<Map<String, Value>, BitrixError> {
            match outer.result.get(key) {
                None | Some(Value::Null) => Ok(Map::new()),
                Some(v) => as_map(v).ok_or_else(|| BitrixError::Malformed {
                    method: "batch".into(),
                    status: 200,
                    message: format!("section `{key}` is neither an object nor a list"),
                }),
            }
        };
        if !outer.result.is_object() {
            return Err(BitrixError::Malformed {
                method: "batch".into(),
                status: 200,
                message: "batch result is not an object".into(),
            });
        }
        let mut results = section("result")?;
        let errors = section("result_error")?;
        let totals = section("result_total")?;
        let nexts = section("result_next")?;
        let times = section("result_time")?;
        let outcomes = batch
            .commands
            .iter()
            .map(|c| {
                let outcome = if let Some(err) = errors.get(&c.name) {
                    CommandOutcome::Err(BitrixError::api(
                        &c.method,
                        0,
                        &text(err.get("error")),
                        &text(err.get("error_description")),
                    ))
                } else if let Some(result) = results.remove(&c.name) {
                    CommandOutcome::Ok(Response {
                        result,
                        total: totals.get(&c.name).and_then(as_u64),
                        next: nexts.get(&c.name).and_then(as_u64),
                        time: times.get(&c.name).map(TimeInfo::parse).unwrap_or_default(),
                    })
                } else {
                    CommandOutcome::Missing
                };
                (c.name.clone(), outcome)
            })
            .collect();
        Ok(Self {
            outcomes,
            time: outer.time,
        })
    }
}

impl<R> BatchResponse<R> {
    pub(crate) fn from_parts(outcomes: Vec<(String, CommandOutcome<R>)>, time: TimeInfo) -> Self {
        Self { outcomes, time }
    }

    /// Takes the outcome of a command out of the answer.
    pub fn take(&mut self, name: &str) -> CommandOutcome<R> {
        self.outcomes
            .iter_mut()
            .find(|(n, _)| n == name)
            .map(|(_, o)| std::mem::replace(o, CommandOutcome::Missing))
            .unwrap_or(CommandOutcome::Missing)
    }

    pub fn get(&self, name: &str) -> Option<&CommandOutcome<R>> {
        self.outcomes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, o)| o)
    }

    /// Command names with their outcomes, in command order.
    pub fn outcomes(&self) -> &[(String, CommandOutcome<R>)] {
        &self.outcomes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fixture(name: &str) -> Value {
        let path = format!(
            "{}/tests/fixtures/bitrix24/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn outer(v: Value) -> Response {
        Response {
            result: v["result"].clone(),
            total: None,
            next: None,
            time: TimeInfo::parse(&v["time"]),
        }
    }

    #[test]
    fn encodes_php_brackets_and_references() {
        let q = php_query(&json!({
            "filter": {">ID": "$result[cmd_0][49][ID]", ">=DATE_MODIFY": "2024-01-01T00:00:00+03:00"},
            "order": {"ID": "ASC"},
            "select": ["*", "UF_*"],
            "start": -1
        }));
        assert!(q.contains("filter%5B%3EID%5D=%24result%5Bcmd_0%5D%5B49%5D%5BID%5D"));
        assert!(q.contains("%2B03%3A00"), "{q}");
        assert!(q.contains("select%5B0%5D=%2A&select%5B1%5D=UF_%2A"));
        assert!(q.contains("start=-1"));
    }

    #[test]
    fn builder_enforces_limits() {
        let mut b = Batch::new();
        for i in 0..MAX_COMMANDS {
            b.push(format!("c{i}"), "crm.deal.list", json!({})).unwrap();
        }
        assert!(b.push("one_more", "crm.deal.list", json!({})).is_err());
        assert_eq!(
            b.method_counts().into_iter().collect::<Vec<_>>(),
            vec![("crm.deal.list", MAX_COMMANDS as u32)]
        );
        let mut b = Batch::new();
        assert!(b.push("7", "user.get", json!({})).is_err());
        assert!(b.push("x", "batch", json!({})).is_err());
        b.push("x", "user.get", json!({})).unwrap();
        assert!(b.push("x", "user.get", json!({})).is_err());
        assert_eq!(
            result_ref("x", &["items", "49", "id"]),
            "$result[x][items][49][id]"
        );
    }

    #[test]
    fn parses_docs_batch_with_list_shaped_empty_sections() {
        let mut b = Batch::new();
        b.push("get_user", "user.current", json!({})).unwrap();
        b.push(
            "get_department",
            "department.get",
            json!({"ID": "$result[get_user][UF_DEPARTMENT]"}),
        )
        .unwrap();
        let mut r = BatchResponse::parse(&b, outer(fixture("batch.json"))).unwrap();
        let CommandOutcome::Ok(dep) = r.take("get_department") else {
            panic!("department failed")
        };
        assert_eq!(dep.total, Some(1));
        assert_eq!(dep.result[0]["NAME"], "DEMO");
        assert!(dep.time.processing.is_some());
        assert!(matches!(r.get("get_user"), Some(CommandOutcome::Ok(_))));
    }

    #[test]
    fn per_command_errors_and_halt() {
        let mut b = Batch::new();
        b.push("get_user", "user.current", json!({})).unwrap();
        b.push("get_department", "department.get", json!({}))
            .unwrap();
        let mut r = BatchResponse::parse(&b, outer(fixture("batch.error-halt0.json"))).unwrap();
        for name in ["get_user", "get_department"] {
            let CommandOutcome::Err(e) = r.take(name) else {
                panic!("{name} should fail")
            };
            assert_eq!(e.code(), Some("insufficient_scope"));
            assert_eq!(e.class(), super::super::error::ErrorClass::Auth);
        }
        let r = BatchResponse::parse(&b, outer(fixture("batch.error-halt1.json"))).unwrap();
        assert!(matches!(r.get("get_user"), Some(CommandOutcome::Err(_))));
        assert!(matches!(
            r.get("get_department"),
            Some(CommandOutcome::Missing)
        ));
    }

    #[test]
    fn list_shaped_error_section_is_read() {
        // Numeric keys make PHP emit lists; our names are not numeric, but be robust anyway.
        let mut b = Batch::new();
        b.push("a", "crm.deal.get", json!({})).unwrap();
        let v = json!({"result": {"result": [], "result_error": {"a": {"error": "", "error_description": "Not found"}},
                        "result_total": [], "result_next": [], "result_time": []}, "time": {}});
        let mut r = BatchResponse::parse(&b, outer(v)).unwrap();
        let CommandOutcome::Err(e) = r.take("a") else {
            panic!()
        };
        assert_eq!(e.class(), super::super::error::ErrorClass::NotFound);
    }
}
