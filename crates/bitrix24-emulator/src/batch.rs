//! The `batch` method (rest_provider.php `methodsBatch`): up to 50 sub-commands, `$result[..]`
//! references, `halt`, per-command errors inside an HTTP 200, PHP list-vs-object sections.

use super::billing::{
    bill, call_scaled, finish_of, key_figure, operating_blocked, time_with_figure,
};
use super::config::NestedFigures;
use super::faults;
use super::json_out::J;
use super::methods::{self, Ctx, MethodError, Outcome};
use super::params::{self, PVal, from_j};
use super::state::State;

/// Max sub-commands (`CRestUtil::BATCH_MAX_LENGTH`).
pub(crate) const MAX_CMDS: usize = 50;

/// Accumulated sections, keyed by command name.
#[derive(Default)]
struct Acc {
    result: Vec<(String, J)>,
    error: Vec<(String, J)>,
    total: Vec<(String, J)>,
    next: Vec<(String, J)>,
    time: Vec<(String, J)>,
}

impl Acc {
    fn section(&self, name: &str) -> Option<&[(String, J)]> {
        match name {
            "result" => Some(&self.result),
            "error" => Some(&self.error),
            "total" => Some(&self.total),
            "next" => Some(&self.next),
            "time" => Some(&self.time),
            _ => None,
        }
    }

    /// Resolve `$result[a][0][ID]`; stops at the deepest existing value (as the server does).
    fn lookup(&self, section: &str, keys: &[String]) -> Option<J> {
        let sec = self.section(section)?;
        let (first, rest) = keys.split_first()?;
        let mut cur = sec.iter().find(|(k, _)| k == first).map(|(_, v)| v)?;
        for k in rest {
            match cur.get(k) {
                Some(next) => cur = next,
                None => break,
            }
        }
        Some(cur.clone())
    }
}

/// Find `$section[k1][k2]…` references in `s`: (start, end, section, keys).
fn find_refs(s: &str) -> Vec<(usize, usize, String, Vec<String>)> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(pos) = s[i..].find('$') {
        let at = i + pos;
        let rest = &s[at + 1..];
        let sec = ["result", "error", "total", "next", "time"]
            .into_iter()
            .find(|n| rest.starts_with(n));
        let Some(sec) = sec else {
            i = at + 1;
            continue;
        };
        let mut j = at + 1 + sec.len();
        let mut keys = Vec::new();
        while s[j..].starts_with('[') {
            let Some(close) = s[j..].find(']') else { break };
            keys.push(s[j + 1..j + close].to_string());
            j += close + 1;
        }
        if keys.is_empty() {
            i = at + 1;
            continue;
        }
        out.push((at, j, sec.to_string(), keys));
        i = j;
    }
    out
}

fn substitute(v: &PVal, acc: &Acc) -> PVal {
    match v {
        PVal::Arr(items) => PVal::Arr(
            items
                .iter()
                .map(|(k, x)| (k.clone(), substitute(x, acc)))
                .collect(),
        ),
        PVal::Str(s) => {
            let refs = find_refs(s);
            if refs.is_empty() {
                return v.clone();
            }
            // A whole-parameter reference takes the raw value (it can be an array).
            if let [(0, end, sec, keys)] = refs.as_slice()
                && *end == s.len()
            {
                return acc
                    .lookup(sec, keys)
                    .map_or_else(|| v.clone(), |j| from_j(&j));
            }
            let mut out = String::new();
            let mut last = 0;
            for (a, b, sec, keys) in refs {
                out.push_str(&s[last..a]);
                match acc.lookup(&sec, &keys).and_then(|j| j.scalar_string()) {
                    Some(x) => out.push_str(&x),
                    None => out.push_str(&s[a..b]),
                }
                last = b;
            }
            out.push_str(&s[last..]);
            PVal::Str(out)
        }
        other => other.clone(),
    }
}

fn err_j(e: &MethodError) -> J {
    J::obj([
        ("error", super::json_out::error_code(&e.code)),
        ("error_description", J::Str(e.description.clone())),
    ])
}

/// Run a batch; returns the `result` object and the total simulated processing seconds.
pub(crate) fn run(ctx: &mut Ctx, params: &PVal, auth: &[(String, PVal)], now: f64) -> (J, f64) {
    let halt = params.get_ci("halt").is_some_and(PVal::truthy);
    let cmds: Vec<(String, PVal)> = params
        .get_ci("cmd")
        .map(|c| c.entries().to_vec())
        .unwrap_or_default();
    let billing = ctx.st.billing;
    let per_method = billing.batch_billing.bills_nested_methods();
    let whole = billing.batch_billing.bills_batch_key();
    let mut acc = Acc::default();
    let mut spent = 0.0;
    for (n, (name, cmd)) in cmds.iter().enumerate() {
        let Some(cmd) = cmd.as_str() else { continue }; // non-string commands are skipped silently
        let error = |e: MethodError, acc: &mut Acc, st: &mut State| {
            *st.counters
                .errors_by_code
                .entry(e.code.clone())
                .or_default() += 1;
            acc.error.push((name.clone(), err_j(&e)));
        };
        if n >= MAX_CMDS {
            error(
                MethodError::new(
                    400,
                    "ERROR_BATCH_LENGTH_EXCEEDED",
                    "Max batch length exceeded",
                ),
                &mut acc,
                ctx.st,
            );
            if halt {
                break;
            }
            continue;
        }
        let (path, query) = cmd.split_once('?').unwrap_or((cmd, ""));
        let method = path.trim().trim_start_matches('/').to_lowercase();
        let method = method.strip_suffix(".json").unwrap_or(&method).to_string();
        *ctx.st
            .counters
            .per_method
            .entry(method.clone())
            .or_default() += 1;
        if matches!(method.as_str(), "batch" | "download" | "upload") {
            error(
                MethodError::new(
                    405,
                    "ERROR_BATCH_METHOD_NOT_ALLOWED",
                    "Method is not allowed for batch usage",
                ),
                &mut acc,
                ctx.st,
            );
            if halt {
                break;
            }
            continue;
        }
        if !methods::exists(&method) {
            error(
                MethodError::new(404, "ERROR_METHOD_NOT_FOUND", "Method not found!"),
                &mut acc,
                ctx.st,
            );
            if halt {
                break;
            }
            continue;
        }
        if let Some(e) = ctx.st.refusal(&method, true, !auth.is_empty()) {
            error(e, &mut acc, ctx.st);
            if halt {
                break;
            }
            continue;
        }
        if let Some(e) = faults::take_nested(ctx.st, &method) {
            error(e, &mut acc, ctx.st);
            if halt {
                break;
            }
            continue;
        }
        if per_method && operating_blocked(ctx, &method, now + spent) {
            ctx.st.counters.operation_time_limit += 1;
            error(
                MethodError::new(
                    429,
                    "OPERATION_TIME_LIMIT",
                    "Method is blocked due to operation time limit.",
                ),
                &mut acc,
                ctx.st,
            );
            if halt {
                break;
            }
            continue;
        }
        let mut sub = substitute(&params::parse_str(query), &acc);
        for (k, v) in auth {
            sub = params::merge(sub, PVal::Arr(vec![(k.clone(), v.clone())]));
        }
        let started = now + spent;
        let Some(out) = call_scaled(ctx, &method, &sub) else {
            continue;
        };
        let Outcome {
            result,
            cost,
            count_ran,
            rows,
        } = out;
        spent += cost;
        let bill_to = per_method.then_some(method.as_str());
        bill(ctx, &method, bill_to, started + cost, cost, count_ran, rows);
        match result {
            Ok(s) => {
                acc.result.push((name.clone(), s.result));
                if let Some(t) = s.total {
                    acc.total.push((name.clone(), J::Int(t as i64)));
                }
                if let Some(nx) = s.next {
                    acc.next.push((name.clone(), J::Int(nx as i64)));
                }
                let finish = finish_of(started, cost);
                let figure = match billing.nested_figures {
                    NestedFigures::Own => key_figure(ctx, &method, finish, 0.0),
                    // The whole batch is billed once it ends: what it spent so far is pending.
                    NestedFigures::BatchTotal => {
                        key_figure(ctx, "batch", finish, if whole { spent } else { 0.0 })
                    }
                    NestedFigures::Absent => None,
                };
                acc.time
                    .push((name.clone(), time_with_figure(ctx, started, cost, figure)));
            }
            Err(e) => {
                error(e, &mut acc, ctx.st);
                if halt {
                    break;
                }
            }
        }
    }
    let out = J::obj([
        ("result", J::php_array(acc.result)),
        ("result_error", J::php_array(acc.error)),
        ("result_total", J::php_array(acc.total)),
        ("result_next", J::php_array(acc.next)),
        ("result_time", J::php_array(acc.time)),
    ]);
    (out, spent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_parsing_and_substitution() {
        let refs = find_refs("x$result[a][0][ID]y $total[b]");
        assert_eq!(refs.len(), 2);
        assert_eq!(refs[0].2, "result");
        assert_eq!(refs[0].3, vec!["a", "0", "ID"]);
        let acc = Acc {
            result: vec![("a".into(), J::List(vec![J::obj([("ID", J::str("7"))])]))],
            total: vec![("b".into(), J::Int(3))],
            ..Acc::default()
        };
        let v = substitute(&PVal::Str("x$result[a][0][ID]y $total[b]".into()), &acc);
        assert_eq!(v, PVal::Str("x7y 3".into()));
        let whole = substitute(&PVal::Str("$result[a]".into()), &acc);
        assert!(whole.is_arr());
        // A missing index resolves to the deepest existing value (here the whole list).
        let partial = substitute(&PVal::Str("$result[a][49][ID]".into()), &acc);
        assert!(partial.is_arr());
        let unknown = substitute(&PVal::Str("$result[zz][0]".into()), &acc);
        assert_eq!(unknown, PVal::Str("$result[zz][0]".into()));
    }
}
