//! Filters, ordering, select masks and paging over a table.

use std::cmp::Ordering;

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone};

use super::model::{FieldDef, Kind, LegacyVis, Table, Val};
use super::params::PVal;
use super::store::PortalData;

/// The page size of every list method (`IRestService::LIST_LIMIT`).
pub(crate) const PAGE: usize = 50;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    In,
    NotIn,
    /// `%`: substring.
    Contains,
    NotContains,
    /// `=%` / `%=`: SQL LIKE with wildcards in the value.
    Like,
    NotLike,
}

/// Split a filter key into its operation prefix and the field name.
pub(crate) fn split_op(key: &str) -> (Op, &str) {
    const PREFIXES: [(&str, Op); 15] = [
        ("!=%", Op::NotLike),
        ("!%=", Op::NotLike),
        ("!@", Op::NotIn),
        ("!%", Op::NotContains),
        ("=%", Op::Like),
        ("%=", Op::Like),
        (">=", Op::Ge),
        ("<=", Op::Le),
        ("!=", Op::Ne),
        ("@", Op::In),
        (">", Op::Gt),
        ("<", Op::Lt),
        ("=", Op::Eq),
        ("!", Op::Ne),
        ("%", Op::Contains),
    ];
    for (p, op) in PREFIXES {
        if let Some(rest) = key.strip_prefix(p) {
            return (op, rest);
        }
    }
    (Op::Eq, key)
}

/// A comparable form of a value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Key {
    Num(f64),
    Text(String),
}

impl Key {
    fn cmp(&self, other: &Key) -> Option<Ordering> {
        match (self, other) {
            (Key::Num(a), Key::Num(b)) => a.partial_cmp(b),
            (Key::Text(a), Key::Text(b)) => Some(a.to_lowercase().cmp(&b.to_lowercase())),
            (Key::Num(a), Key::Text(b)) => b.parse::<f64>().ok().and_then(|b| a.partial_cmp(&b)),
            (Key::Text(a), Key::Num(b)) => a.parse::<f64>().ok().and_then(|a| a.partial_cmp(b)),
        }
    }
}

fn val_keys(v: &Val) -> Vec<Key> {
    match v {
        Val::Null => vec![],
        Val::Int(i) => vec![Key::Num(*i as f64)],
        Val::Amount(c) => vec![Key::Num(*c as f64 / 100.0)],
        Val::Float(f) => vec![Key::Num(*f)],
        Val::Bool(b) => vec![Key::Num(if *b { 1.0 } else { 0.0 })],
        Val::Str(s) | Val::Binding(s) => vec![Key::Text(s.clone())],
        Val::Date(d) => vec![Key::Num(
            d.and_hms_opt(0, 0, 0)
                .map_or(0, |x| x.and_utc().timestamp()) as f64,
        )],
        Val::DateTime(s) => vec![Key::Num(*s as f64)],
        Val::Enum(e) | Val::File(e) => vec![Key::Num(*e as f64)],
        Val::Money { cents, .. } => vec![Key::Num(*cents as f64 / 100.0)],
        Val::List(items) => items.iter().flat_map(val_keys).collect(),
        Val::Fm(items) => items.iter().map(|f| Key::Text(f.value.clone())).collect(),
    }
}

/// Parse a date/datetime filter value: ISO 8601 (with or without offset), `Y-m-d H:i:s`,
/// `Y-m-d`, or the portal format `d.m.Y H:i:s` / `d.m.Y`. Naive values are in the portal offset.
pub(crate) fn parse_datetime(s: &str, offset: i32) -> Option<i64> {
    let s = s.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Some(d.timestamp());
    }
    if let Ok(d) = DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%z") {
        return Some(d.timestamp());
    }
    let tz = chrono::FixedOffset::east_opt(offset)?;
    for fmt in [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S",
        "%d.%m.%Y %H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(n) = NaiveDateTime::parse_from_str(s, fmt) {
            return tz.from_local_datetime(&n).single().map(|d| d.timestamp());
        }
    }
    for fmt in ["%Y-%m-%d", "%d.%m.%Y"] {
        if let Ok(d) = NaiveDate::parse_from_str(s, fmt) {
            let n = d.and_hms_opt(0, 0, 0)?;
            return tz.from_local_datetime(&n).single().map(|d| d.timestamp());
        }
    }
    None
}

fn filter_key(f: &FieldDef, raw: &str, offset: i32) -> Option<Key> {
    match f.kind {
        Kind::Date | Kind::DateTime | Kind::OrmObject => {
            let secs = parse_datetime(raw, offset)?;
            if f.kind == Kind::Date {
                // Date columns compare by calendar date: midnight UTC of the date in the offset.
                let local = secs + i64::from(offset);
                Some(Key::Num((local - local.rem_euclid(86_400)) as f64))
            } else {
                Some(Key::Num(secs as f64))
            }
        }
        Kind::YesNo | Kind::UfBool | Kind::JsonBool => Some(Key::Num(match raw {
            "Y" | "y" | "1" | "true" => 1.0,
            _ => 0.0,
        })),
        Kind::Int | Kind::Amount | Kind::Float | Kind::Enum | Kind::Money | Kind::File => Some(
            raw.trim()
                .parse::<f64>()
                .map_or(Key::Text(raw.to_string()), Key::Num),
        ),
        _ => Some(Key::Text(raw.to_string())),
    }
}

/// One filter condition on a field.
#[derive(Debug, Clone)]
pub(crate) struct Cond {
    pub field: usize,
    pub op: Op,
    /// Parsed operands; `None` = unparseable (matches nothing).
    pub values: Vec<Option<Key>>,
    pub raw: Vec<String>,
}

fn like_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let t: Vec<char> = text.to_lowercase().chars().collect();
    let (mut pi, mut ti, mut star, mut mark) = (0usize, 0usize, None, 0usize);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '_' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '%' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '%' {
        pi += 1;
    }
    pi == p.len()
}

impl Cond {
    pub(crate) fn new(f: &FieldDef, field: usize, op: Op, value: &PVal, offset: i32) -> Cond {
        let raw: Vec<String> = value
            .values()
            .into_iter()
            .filter_map(PVal::to_text)
            .collect();
        let values = raw.iter().map(|r| filter_key(f, r, offset)).collect();
        Cond {
            field,
            op,
            values,
            raw,
        }
    }

    pub(crate) fn matches(&self, v: &Val) -> bool {
        let keys = val_keys(v);
        let is_empty = keys.is_empty();
        let eq_any = |want: &Option<Key>, raw: &str| -> bool {
            match want {
                None => false,
                Some(w) => {
                    if is_empty {
                        raw.is_empty()
                    } else {
                        keys.iter().any(|k| k.cmp(w) == Some(Ordering::Equal))
                    }
                }
            }
        };
        let any_eq = || self.values.iter().zip(&self.raw).any(|(w, r)| eq_any(w, r));
        let cmp = |ord: &[Ordering]| -> bool {
            match self.values.first() {
                Some(Some(w)) => keys
                    .iter()
                    .any(|k| k.cmp(w).is_some_and(|o| ord.contains(&o))),
                _ => false,
            }
        };
        let texts = || {
            keys.iter().map(|k| match k {
                Key::Text(t) => t.clone(),
                Key::Num(n) => n.to_string(),
            })
        };
        match self.op {
            Op::Eq | Op::In => any_eq(),
            Op::Ne | Op::NotIn => !any_eq(),
            Op::Gt => cmp(&[Ordering::Greater]),
            Op::Ge => cmp(&[Ordering::Greater, Ordering::Equal]),
            Op::Lt => cmp(&[Ordering::Less]),
            Op::Le => cmp(&[Ordering::Less, Ordering::Equal]),
            Op::Contains => self
                .raw
                .iter()
                .any(|r| texts().any(|t| t.to_lowercase().contains(&r.to_lowercase()))),
            Op::NotContains => !self
                .raw
                .iter()
                .any(|r| texts().any(|t| t.to_lowercase().contains(&r.to_lowercase()))),
            Op::Like => self.raw.iter().any(|r| texts().any(|t| like_match(r, &t))),
            Op::NotLike => !self.raw.iter().any(|r| texts().any(|t| like_match(r, &t))),
        }
    }
}

/// A list query over one table.
#[derive(Debug, Clone, Default)]
pub(crate) struct Query {
    pub conds: Vec<Cond>,
    /// (field index, ascending)
    pub order: Vec<(usize, bool)>,
    /// Negative = no COUNT (`start=-1`).
    pub start: i64,
    /// Legacy/controller methods floor `start` to a page boundary; `user.get` does not.
    pub exact_offset: bool,
}

/// The result of a list query.
#[derive(Debug, Clone)]
pub(crate) struct Page {
    pub ids: Vec<u64>,
    /// Rows matching the filter when COUNT ran.
    pub total: Option<u64>,
    pub next: Option<u64>,
}

fn row_matches(data: &PortalData, t: &Table, id: u64, conds: &[Cond]) -> bool {
    conds.iter().all(|c| {
        t.fields
            .get(c.field)
            .is_some_and(|f| c.matches(&data.value(t, id, f)))
    })
}

fn sort_key(data: &PortalData, t: &Table, id: u64, idx: usize) -> Option<Key> {
    t.fields
        .get(idx)
        .and_then(|f| val_keys(&data.value(t, id, f)).into_iter().next())
}

/// Run a query: filter, order, page; COUNT only when `start >= 0`.
pub(crate) fn run(data: &PortalData, t: &Table, q: &Query) -> Page {
    let counting = q.start >= 0;
    let offset = if !counting {
        0
    } else if q.exact_offset {
        q.start as usize
    } else {
        (q.start as usize / PAGE) * PAGE
    };
    let id_idx = t.field_index("ID");
    let by_id_only = q.order.iter().all(|(i, _)| Some(*i) == id_idx);
    let desc = q.order.first().is_some_and(|(_, asc)| !asc);
    if by_id_only && !counting {
        // Fast path (the documented start=-1 technique): stop after one page.
        // Candidates narrowed by the ID conditions themselves (every condition is still
        // checked below): the listed ids of an `@ID` filter, from the cursor on. Without this
        // a chained listing rescans the table from id 1 for every page.
        let (listed, lower, upper) = id_hints(q, id_idx);
        let base: Box<dyn DoubleEndedIterator<Item = u64> + '_> = match listed {
            Some(ids) => Box::new(ids.into_iter().filter(|id| t.exists(*id))),
            None => t.ids(),
        };
        let base =
            base.filter(move |id| lower.is_none_or(|l| *id >= l) && upper.is_none_or(|u| *id <= u));
        let iter: Box<dyn Iterator<Item = u64>> = if desc {
            Box::new(base.rev())
        } else {
            Box::new(base)
        };
        let ids = iter
            .filter(|id| row_matches(data, t, *id, &q.conds))
            .take(PAGE)
            .collect();
        return Page {
            ids,
            total: None,
            next: None,
        };
    }
    let mut ids: Vec<u64> = t
        .ids()
        .filter(|id| row_matches(data, t, *id, &q.conds))
        .collect();
    if by_id_only {
        if desc {
            ids.reverse();
        }
    } else {
        let mut keyed: Vec<(Vec<Option<Key>>, u64)> = ids
            .iter()
            .map(|id| {
                (
                    q.order
                        .iter()
                        .map(|(i, _)| sort_key(data, t, *id, *i))
                        .collect(),
                    *id,
                )
            })
            .collect();
        keyed.sort_by(|a, b| {
            for (n, (_, asc)) in q.order.iter().enumerate() {
                let o = match (&a.0[n], &b.0[n]) {
                    (Some(x), Some(y)) => x.cmp(y).unwrap_or(Ordering::Equal),
                    (None, Some(_)) => Ordering::Less,
                    (Some(_), None) => Ordering::Greater,
                    (None, None) => Ordering::Equal,
                };
                let o = if *asc { o } else { o.reverse() };
                if o != Ordering::Equal {
                    return o;
                }
            }
            a.1.cmp(&b.1)
        });
        ids = keyed.into_iter().map(|(_, id)| id).collect();
    }
    let total = ids.len();
    let page: Vec<u64> = ids.into_iter().skip(offset).take(PAGE).collect();
    let end = offset + page.len();
    Page {
        next: (counting && end < total).then_some(end as u64),
        total: counting.then_some(total as u64),
        ids: page,
    }
}

/// From the conditions on the ID field: the listed ids (`@ID`, sorted), and inclusive
/// lower/upper bounds (`>ID`, `>=ID`, `<ID`, `<=ID`, `=ID`). Only narrows; never widens.
fn id_hints(q: &Query, id_idx: Option<usize>) -> (Option<Vec<u64>>, Option<u64>, Option<u64>) {
    let (mut listed, mut lower, mut upper): (Option<Vec<u64>>, Option<u64>, Option<u64>) =
        (None, None, None);
    let Some(id_idx) = id_idx else {
        return (None, None, None);
    };
    for c in q.conds.iter().filter(|c| c.field == id_idx) {
        let nums: Option<Vec<u64>> = c.raw.iter().map(|r| r.trim().parse::<u64>().ok()).collect();
        let Some(nums) = nums else { continue };
        let first = nums.first().copied();
        match c.op {
            Op::In if !nums.is_empty() => {
                let mut v = nums;
                v.sort_unstable();
                v.dedup();
                listed = Some(v);
            }
            Op::Eq if nums.len() == 1 => {
                listed = Some(nums);
            }
            Op::Gt => lower = first.map(|f| f.saturating_add(1)).max(lower),
            Op::Ge => lower = first.max(lower),
            Op::Lt => {
                upper = first
                    .map(|f| f.saturating_sub(1))
                    .map(|f| upper.map_or(f, |u| u.min(f)))
            }
            Op::Le => upper = first.map(|f| upper.map_or(f, |u| u.min(f))),
            _ => {}
        }
    }
    (listed, lower, upper)
}

/// Parse an `order` param: `{FIELD: ASC|DESC}` with a resolver for field names.
pub(crate) fn parse_order(
    order: Option<&PVal>,
    resolve: impl Fn(&str) -> Option<usize>,
) -> Vec<(usize, bool)> {
    let Some(order) = order else { return vec![] };
    order
        .entries()
        .iter()
        .filter_map(|(k, v)| {
            let idx = resolve(k)?;
            let dir = v.to_text().unwrap_or_default();
            Some((idx, !dir.eq_ignore_ascii_case("DESC")))
        })
        .collect()
}

/// Legacy `select` resolution (`*`, `UF_*`, explicit names; empty → `*` without UFs).
pub(crate) fn legacy_select(t: &Table, select: Option<&PVal>) -> Vec<usize> {
    let names: Vec<String> = select
        .map(|s| s.values().into_iter().filter_map(PVal::to_text).collect())
        .unwrap_or_default();
    let names: Vec<String> = names.into_iter().filter(|n| !n.is_empty()).collect();
    let std_all = |f: &FieldDef| f.legacy == LegacyVis::List && !f.is_uf();
    let mut out: Vec<usize> = Vec::new();
    let push = |i: usize, out: &mut Vec<usize>| {
        if !out.contains(&i) {
            out.push(i);
        }
    };
    if let Some(id) = t.field_index("ID") {
        push(id, &mut out);
    }
    if names.is_empty() {
        for (i, f) in t.fields.iter().enumerate() {
            if std_all(f) {
                push(i, &mut out);
            }
        }
        return out;
    }
    for n in &names {
        for (i, f) in t.fields.iter().enumerate() {
            let hit = match n.as_str() {
                "*" => std_all(f),
                "UF_*" => f.is_uf(),
                // Product properties (`crm.product.list`).
                "PROPERTY_*" => f.code.starts_with("PROPERTY_") && f.legacy != LegacyVis::None,
                name => f.code == name && matches!(f.legacy, LegacyVis::List | LegacyVis::Explicit),
            };
            if hit {
                push(i, &mut out);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        assert_eq!(split_op(">=DATE_MODIFY"), (Op::Ge, "DATE_MODIFY"));
        assert_eq!(split_op("!@ID"), (Op::NotIn, "ID"));
        assert_eq!(split_op("=%TITLE"), (Op::Like, "TITLE"));
        assert_eq!(split_op("!ID"), (Op::Ne, "ID"));
        assert_eq!(split_op("ID"), (Op::Eq, "ID"));
    }

    #[test]
    fn date_parsing() {
        assert_eq!(
            parse_datetime("2024-01-01T00:00:00+03:00", 0),
            Some(1_704_056_400)
        );
        assert_eq!(
            parse_datetime("2024-01-01 00:00:00", 10_800),
            Some(1_704_056_400)
        );
        assert_eq!(parse_datetime("01.01.2024", 10_800), Some(1_704_056_400));
        assert_eq!(parse_datetime("yesterday", 0), None);
    }

    #[test]
    fn like() {
        assert!(like_match("%deal%", "My DEAL 1"));
        assert!(like_match("a_c", "abc"));
        assert!(!like_match("a%z", "abc"));
    }
}
