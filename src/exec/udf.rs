//! `b24ch exec udf-call`: the `b24_call(method String, params_json String) -> String`
//! executable UDF.
//!
//! ClickHouse (`type executable_pool`) keeps the process alive and writes blocks of rows to
//! its stdin. With `send_chunk_header` each block starts with a line holding its row count;
//! the process answers with exactly that many rows, in order, and flushes. The rows of one
//! block are packed into Bitrix24 `batch` calls of up to 50 commands, so a block of 200 rows
//! costs 4 HTTP requests. Without chunk headers the block boundary is unknown, so each line
//! is answered on its own (one request per row): keep `send_chunk_header` on.
//!
//! Each answer is the JSON `result` of the call, or `{"error": CODE, "error_description": …}`
//! for a call the portal rejected (or b24ch refused: bad method name, params that are not a
//! JSON object, a method outside the allow-list without `--allow-write`). A batch that fails as a whole (after
//! the governor's retries) stops the process with a non-zero exit: ClickHouse's query fails
//! rather than returning rows that are not there.
use super::{Context, ExecError, tsv};
use crate::bitrix::batch::MAX_COMMANDS;
use crate::bitrix::{Batch, Client, CommandOutcome};
use clap::Args;
use serde_json::{Map, Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

#[derive(Debug, Args)]
pub struct UdfArgs {
    /// The function's `<format>`: TabSeparated or JSONEachRow.
    #[arg(long, default_value = "TabSeparated")]
    pub format: String,
    /// The function's `<return_name>` (JSONEachRow output key).
    #[arg(long, default_value = "result")]
    pub result_name: String,
    /// Answer `{"result":…, "total":…, "next":…}` instead of the bare result (list paging).
    #[arg(long)]
    pub envelope: bool,
    /// Allow any method, including those that change data (`*.add`, `*.update`, `*.delete`).
    /// Off by default: without it only the methods of `exec.call_methods` (by default a
    /// built-in list of read methods) are called. The `b24ch-call` wrapper never passes it.
    #[arg(long)]
    pub allow_write: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UdfFormat {
    TabSeparated,
    JsonEachRow,
}

/// One input row, parsed.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    Ok {
        method: String,
        params: Value,
    },
    /// Refused before any request: the answer is this error object.
    Refused(Value),
}

fn refused(code: &str, description: impl Into<String>) -> Call {
    Call::Refused(json!({"error": code, "error_description": description.into()}))
}

/// Which methods a `b24_call` process runs: an explicit list, or anything (`--allow-write`).
#[derive(Debug, Clone)]
pub enum CallPolicy {
    /// Only these methods (lower-case), the read methods of `exec.call_methods`.
    Only(Vec<String>),
    /// `--allow-write`: any method (an administrator's explicit choice in the XML).
    Any,
}

impl CallPolicy {
    pub fn new(config: &crate::config::Config, allow_write: bool) -> Self {
        if allow_write {
            Self::Any
        } else {
            Self::Only(config.call_methods.clone().unwrap_or_else(|| {
                crate::bitrix::methods::DEFAULT_CALL_METHODS
                    .iter()
                    .map(|m| m.to_string())
                    .collect()
            }))
        }
    }

    fn allows(&self, method: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Only(list) => list.iter().any(|m| m.eq_ignore_ascii_case(method)),
        }
    }
}

/// Validates the method and parses the params of one row.
pub fn parse_call(method: &str, params: &str, policy: &CallPolicy) -> Call {
    let method = method.trim();
    let valid = !method.is_empty()
        && method.len() <= 128
        && method
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_');
    if !valid {
        return refused(
            "B24CH_BAD_METHOD",
            format!(
                "{:?} is not a Bitrix24 method name (letters, digits, `.` and `_`)",
                method.chars().take(64).collect::<String>()
            ),
        );
    }
    if method.eq_ignore_ascii_case("batch") {
        return refused(
            "B24CH_BAD_METHOD",
            "b24_call already packs rows into batch calls; call the methods themselves",
        );
    }
    if !policy.allows(method) {
        return refused(
            "B24CH_METHOD_NOT_ALLOWED",
            format!(
                "{method} is not in the allow-list of read methods b24_call runs; if it only reads, add it to exec.call_methods in the config"
            ),
        );
    }
    let params = params.trim();
    let params = if params.is_empty() || params == "\\N" {
        Value::Object(Map::new())
    } else {
        match serde_json::from_str::<Value>(params) {
            Ok(v @ Value::Object(_)) => v,
            Ok(_) => return refused("B24CH_BAD_PARAMS", "params_json must be a JSON object"),
            Err(e) => {
                return refused("B24CH_BAD_PARAMS", format!("params_json is not JSON: {e}"));
            }
        }
    };
    Call::Ok {
        method: method.to_string(),
        params,
    }
}

fn parse_line(line: &str, format: UdfFormat, policy: &CallPolicy) -> Call {
    match format {
        UdfFormat::TabSeparated => {
            let fields = tsv::split_row(line);
            let method = fields.first().map(String::as_str).unwrap_or("");
            let params = fields.get(1).map(String::as_str).unwrap_or("");
            parse_call(method, params, policy)
        }
        UdfFormat::JsonEachRow => match serde_json::from_str::<Map<String, Value>>(line) {
            Ok(obj) => {
                let mut values = obj.into_iter().map(|(_, v)| v);
                let text = |v: Option<Value>| match v {
                    Some(Value::String(s)) => s,
                    Some(Value::Null) | None => String::new(),
                    Some(other) => other.to_string(),
                };
                let method = text(values.next());
                let params = text(values.next());
                parse_call(&method, &params, policy)
            }
            Err(e) => refused(
                "B24CH_BAD_ROW",
                format!("input row is not a JSON object: {e}"),
            ),
        },
    }
}

/// Answers the calls of one block, packing them into batches of up to 50.
pub async fn answer_block(
    client: &Client,
    calls: Vec<Call>,
    envelope: bool,
) -> Result<Vec<Value>, ExecError> {
    let mut answers: Vec<Option<Value>> = vec![None; calls.len()];
    let mut pending: Vec<(usize, String, Value)> = Vec::new();
    for (i, call) in calls.into_iter().enumerate() {
        match call {
            Call::Refused(v) => answers[i] = Some(v),
            Call::Ok { method, params } => pending.push((i, method, params)),
        }
    }
    for chunk in pending.chunks(MAX_COMMANDS) {
        let mut batch = Batch::new();
        for (i, method, params) in chunk {
            batch.push(format!("r{i}"), method, params.clone())?;
        }
        let mut resp = client.batch(&batch).await?;
        for (i, _, _) in chunk {
            let answer = match resp.take(&format!("r{i}")) {
                CommandOutcome::Ok(r) if envelope => {
                    json!({"result": r.result, "total": r.total, "next": r.next})
                }
                CommandOutcome::Ok(r) => r.result,
                CommandOutcome::Err(e) => {
                    let class = serde_json::to_value(e.class())
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_ascii_uppercase))
                        .unwrap_or_default();
                    // Legacy methods answer with an empty code: name the class instead.
                    let code = e.code().filter(|c| !c.is_empty()).map(str::to_string);
                    json!({
                        "error": code.unwrap_or_else(|| class.clone()),
                        "error_class": class,
                        "error_description": e.to_string(),
                    })
                }
                CommandOutcome::Missing => json!({
                    "error": "B24CH_NOT_EXECUTED",
                    "error_description": "the portal did not run this command of the batch",
                }),
            };
            answers[*i] = Some(answer);
        }
    }
    Ok(answers
        .into_iter()
        .map(|a| a.unwrap_or(Value::Null))
        .collect())
}

fn render(answers: &[Value], format: UdfFormat, result_name: &str) -> String {
    let mut out = String::new();
    for a in answers {
        let text = a.to_string();
        match format {
            UdfFormat::TabSeparated => tsv::escape(&text, &mut out),
            UdfFormat::JsonEachRow => {
                out.push_str(&json!({ result_name: text }).to_string());
            }
        }
        out.push('\n');
    }
    out
}

/// A line that is a chunk header: the row count alone.
fn chunk_header(line: &str) -> Option<usize> {
    let t = line.trim_end_matches(['\n', '\r']);
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    t.parse().ok()
}

/// `b24ch exec udf-call`: answers blocks until stdin closes.
pub async fn run(ctx: &Context, args: UdfArgs) -> Result<(), ExecError> {
    let policy = CallPolicy::new(&ctx.config, args.allow_write);
    let format = if args.format.eq_ignore_ascii_case("TabSeparated")
        || args.format.eq_ignore_ascii_case("TSV")
    {
        UdfFormat::TabSeparated
    } else if args.format.eq_ignore_ascii_case("JSONEachRow") {
        UdfFormat::JsonEachRow
    } else {
        return Err(ExecError::BadInput(format!(
            "b24ch: --format {:?} is not supported by udf-call; use TabSeparated or JSONEachRow",
            args.format
        )));
    };
    let client = ctx.client();
    let mut input = BufReader::new(tokio::io::stdin());
    let mut out = tokio::io::stdout();
    let mut line = String::new();
    loop {
        line.clear();
        if input.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let mut lines = Vec::new();
        match chunk_header(&line) {
            Some(n) => {
                for _ in 0..n {
                    let mut row = String::new();
                    if input.read_line(&mut row).await? == 0 {
                        return Err(ExecError::BadInput(format!(
                            "b24ch: stdin ended inside a block ({} of {n} rows read)",
                            lines.len()
                        )));
                    }
                    lines.push(row);
                }
            }
            None => lines.push(line.clone()),
        }
        let calls = lines
            .iter()
            .map(|l| parse_line(l.trim_end_matches(['\n', '\r']), format, &policy))
            .collect();
        let answers = answer_block(&client, calls, args.envelope).await?;
        out.write_all(render(&answers, format, &args.result_name).as_bytes())
            .await?;
        out.flush().await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reads() -> CallPolicy {
        CallPolicy::Only(
            crate::bitrix::methods::DEFAULT_CALL_METHODS
                .iter()
                .map(|m| m.to_string())
                .collect(),
        )
    }

    #[test]
    fn only_listed_methods_run_never_by_name_prefix() {
        for m in ["crm.deal.get", "CRM.DEAL.LIST", "user.get"] {
            assert!(
                matches!(parse_call(m, "{}", &reads()), Call::Ok { .. }),
                "{m}"
            );
        }
        // Names a prefix rule would have admitted.
        for m in [
            "crm.deal.getandremove",
            "listeners.reset",
            "im.notify.get.delete",
            "crm.deal.delete",
        ] {
            assert!(
                matches!(parse_call(m, "{}", &reads()), Call::Refused(_)),
                "{m}"
            );
        }
        let only = CallPolicy::Only(vec!["crm.deal.get".into()]);
        assert!(matches!(
            parse_call("crm.deal.list", "{}", &only),
            Call::Refused(_)
        ));
        assert!(matches!(
            parse_call("crm.deal.delete", "{}", &CallPolicy::Any),
            Call::Ok { .. }
        ));
    }

    #[test]
    fn rows_are_parsed_and_checked() {
        assert_eq!(
            parse_line(
                "crm.deal.get\t{\"id\":5}",
                UdfFormat::TabSeparated,
                &reads()
            ),
            Call::Ok {
                method: "crm.deal.get".into(),
                params: json!({"id": 5})
            }
        );
        assert!(matches!(
            parse_line(
                "crm.deal.delete\t{\"id\":5}",
                UdfFormat::TabSeparated,
                &reads()
            ),
            Call::Refused(_)
        ));
        assert!(matches!(
            parse_line(
                "crm.deal.delete\t{\"id\":5}",
                UdfFormat::TabSeparated,
                &CallPolicy::Any
            ),
            Call::Ok { .. }
        ));
        assert!(matches!(
            parse_line("crm.deal.get?x=1\t{}", UdfFormat::TabSeparated, &reads()),
            Call::Refused(_)
        ));
        assert!(matches!(
            parse_line("crm.deal.get\t[1]", UdfFormat::TabSeparated, &reads()),
            Call::Refused(_)
        ));
        assert_eq!(
            parse_line(
                r#"{"method":"user.get","params":"{\"ID\":1}"}"#,
                UdfFormat::JsonEachRow,
                &reads()
            ),
            Call::Ok {
                method: "user.get".into(),
                params: json!({"ID": 1})
            }
        );
        assert_eq!(chunk_header("200\n"), Some(200));
        assert_eq!(chunk_header("crm.deal.get\t{}\n"), None);
    }

    #[test]
    fn answers_are_one_line_each() {
        let a = vec![json!({"TITLE": "a\tb\nc"}), json!({"error": "X"})];
        let tsv = render(&a, UdfFormat::TabSeparated, "result");
        assert_eq!(tsv.lines().count(), 2);
        let js = render(&a, UdfFormat::JsonEachRow, "result");
        let first: Value = serde_json::from_str(js.lines().next().unwrap()).unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(first["result"].as_str().unwrap()).unwrap(),
            a[0]
        );
    }
}
