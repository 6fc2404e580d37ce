//! Request parameters the way the Bitrix24 REST server sees them.
//!
//! `CRestUtil::getRequestData` takes the query string, then the POST body (JSON when the content
//! type says so, form fields otherwise, `parse_str` of the raw body as a fallback) and merges with
//! `array_replace($query, $post)`: POST wins per top-level key. A broken JSON body is ignored.

use super::json_out::J;

/// A PHP request value: a scalar or an ordered associative array.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PVal {
    Null,
    Bool(bool),
    Str(String),
    Arr(Vec<(String, PVal)>),
}

impl PVal {
    pub(crate) fn get(&self, key: &str) -> Option<&PVal> {
        match self {
            PVal::Arr(items) => items.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Case-insensitive key lookup (batch `cmd`/`halt`, legacy `FILTER`/`filter`).
    pub(crate) fn get_ci(&self, key: &str) -> Option<&PVal> {
        match self {
            PVal::Arr(items) => items
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    pub(crate) fn entries(&self) -> &[(String, PVal)] {
        match self {
            PVal::Arr(items) => items,
            _ => &[],
        }
    }

    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            PVal::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Scalar cast to string as PHP would (`true` → "1", `false`/null → "").
    pub(crate) fn to_text(&self) -> Option<String> {
        match self {
            PVal::Null => Some(String::new()),
            PVal::Bool(b) => Some(if *b { "1".into() } else { String::new() }),
            PVal::Str(s) => Some(s.clone()),
            PVal::Arr(_) => None,
        }
    }

    /// PHP `intval` of a scalar: leading integer part, 0 otherwise.
    pub(crate) fn as_i64(&self) -> Option<i64> {
        let s = self.to_text()?;
        let t = s.trim();
        if let Ok(i) = t.parse::<i64>() {
            return Some(i);
        }
        if let Ok(f) = t.parse::<f64>() {
            return Some(f as i64);
        }
        let end = t
            .char_indices()
            .find(|(i, c)| !(c.is_ascii_digit() || (*i == 0 && (*c == '-' || *c == '+'))))
            .map_or(t.len(), |(i, _)| i);
        Some(t[..end].parse::<i64>().unwrap_or(0))
    }

    /// PHP truthiness.
    pub(crate) fn truthy(&self) -> bool {
        match self {
            PVal::Null => false,
            PVal::Bool(b) => *b,
            PVal::Str(s) => !(s.is_empty() || s == "0"),
            PVal::Arr(a) => !a.is_empty(),
        }
    }

    pub(crate) fn is_arr(&self) -> bool {
        matches!(self, PVal::Arr(_))
    }

    /// Values of an array (or the scalar itself as a one-element list).
    pub(crate) fn values(&self) -> Vec<&PVal> {
        match self {
            PVal::Arr(items) => items.iter().map(|(_, v)| v).collect(),
            other => vec![other],
        }
    }

    fn set_key(&mut self, key: String, value: PVal) {
        if !self.is_arr() {
            *self = PVal::Arr(Vec::new());
        }
        if let PVal::Arr(items) = self {
            if let Some(slot) = items.iter_mut().find(|(k, _)| *k == key) {
                slot.1 = value;
            } else {
                items.push((key, value));
            }
        }
    }

    fn next_index(&self) -> String {
        let max = self
            .entries()
            .iter()
            .filter_map(|(k, _)| k.parse::<i64>().ok())
            .max();
        max.map_or(0, |m| m + 1).max(0).to_string()
    }

    /// Walk/create the nested path and assign the value at its end.
    fn assign(&mut self, path: &[Option<String>], value: PVal) {
        let Some((first, rest)) = path.split_first() else {
            *self = value;
            return;
        };
        if !self.is_arr() {
            *self = PVal::Arr(Vec::new());
        }
        let key = first.clone().unwrap_or_else(|| self.next_index());
        if rest.is_empty() {
            self.set_key(key, value);
            return;
        }
        if let PVal::Arr(items) = self {
            let idx = match items.iter().position(|(k, _)| *k == key) {
                Some(i) => i,
                None => {
                    items.push((key, PVal::Arr(Vec::new())));
                    items.len() - 1
                }
            };
            items[idx].1.assign(rest, value);
        }
    }
}

/// Convert a `J` (a batch sub-result) back into a parameter value (whole-param substitution).
pub(crate) fn from_j(v: &J) -> PVal {
    match v {
        J::Null => PVal::Null,
        J::Bool(b) => PVal::Bool(*b),
        J::Int(_) | J::Float(_) | J::Str(_) => PVal::Str(v.scalar_string().unwrap_or_default()),
        J::List(items) => PVal::Arr(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| (i.to_string(), from_j(v)))
                .collect(),
        ),
        J::Obj(pairs) => PVal::Arr(pairs.iter().map(|(k, v)| (k.clone(), from_j(v))).collect()),
    }
}

/// Convert a decoded JSON body into parameters. Numbers become strings as PHP code casts them.
pub(crate) fn from_json(v: &serde_json::Value) -> PVal {
    use serde_json::Value as V;
    match v {
        V::Null => PVal::Null,
        V::Bool(b) => PVal::Bool(*b),
        V::Number(n) => PVal::Str(n.to_string()),
        V::String(s) => PVal::Str(s.clone()),
        V::Array(a) => PVal::Arr(
            a.iter()
                .enumerate()
                .map(|(i, v)| (i.to_string(), from_json(v)))
                .collect(),
        ),
        V::Object(m) => PVal::Arr(m.iter().map(|(k, v)| (k.clone(), from_json(v))).collect()),
    }
}

/// Percent-decoding with `+` as space (PHP `urldecode`). Invalid escapes stay literal.
pub(crate) fn urldecode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Split `name[a][b][]` into the base name and the bracket path. `None` = `[]` (append).
fn split_key(raw: &str) -> (String, Vec<Option<String>>) {
    let Some(open) = raw.find('[') else {
        return (php_base_name(raw), Vec::new());
    };
    if open == 0 {
        return (raw.to_string(), Vec::new());
    }
    let base = php_base_name(&raw[..open]);
    let mut path = Vec::new();
    let mut rest = &raw[open..];
    while let Some(stripped) = rest.strip_prefix('[') {
        let Some(close) = stripped.find(']') else {
            break;
        };
        let seg = &stripped[..close];
        path.push(if seg.is_empty() {
            None
        } else {
            Some(seg.to_string())
        });
        rest = &stripped[close + 1..];
    }
    if path.is_empty() {
        // `a[b` is not an array key in PHP: the bracket becomes an underscore.
        return (php_base_name(&raw.replacen('[', "_", 1)), Vec::new());
    }
    (base, path)
}

/// PHP replaces spaces and dots in top-level variable names with underscores.
fn php_base_name(s: &str) -> String {
    s.chars()
        .map(|c| if c == '.' || c == ' ' { '_' } else { c })
        .collect()
}

/// PHP `parse_str` of a query string or form body.
pub(crate) fn parse_str(input: &str) -> PVal {
    let mut root = PVal::Arr(Vec::new());
    for pair in input.split('&') {
        if pair.is_empty() {
            continue;
        }
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let key = urldecode(k);
        if key.is_empty() {
            continue;
        }
        let (base, mut path) = split_key(&key);
        let mut full = vec![Some(base)];
        full.append(&mut path);
        root.assign(&full, PVal::Str(urldecode(v)));
    }
    root
}

/// Add one multipart/form field by its (possibly bracketed) name.
pub(crate) fn add_field(root: &mut PVal, name: &str, value: String) {
    let (base, mut path) = split_key(name);
    let mut full = vec![Some(base)];
    full.append(&mut path);
    root.assign(&full, PVal::Str(value));
}

/// `array_replace($query, $post)`: top-level keys of `post` win.
pub(crate) fn merge(query: PVal, post: PVal) -> PVal {
    let mut out = match query {
        PVal::Arr(_) => query,
        _ => PVal::Arr(Vec::new()),
    };
    for (k, v) in post.entries().iter().cloned() {
        out.set_key(k, v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> PVal {
        PVal::Str(v.into())
    }

    #[test]
    fn brackets_nested_and_append() {
        let p = parse_str(
            "filter%5B%3EDATE_MODIFY%5D=2024-01-01T00%3A00%3A00%2B03%3A00&select[]=ID&select[]=UF_*&order[ID]=ASC&fields[PHONE][0][VALUE]=%2B1+2&start=-1",
        );
        assert_eq!(
            p.get("filter").and_then(|f| f.get(">DATE_MODIFY")),
            Some(&s("2024-01-01T00:00:00+03:00"))
        );
        let sel: Vec<_> = p.get("select").map(|x| x.values()).unwrap_or_default();
        assert_eq!(sel, vec![&s("ID"), &s("UF_*")]);
        assert_eq!(p.get("order").and_then(|o| o.get("ID")), Some(&s("ASC")));
        let phone = p
            .get("fields")
            .and_then(|f| f.get("PHONE"))
            .and_then(|f| f.get("0"))
            .and_then(|f| f.get("VALUE"));
        assert_eq!(phone, Some(&s("+1 2")));
        assert_eq!(p.get("start").and_then(PVal::as_i64), Some(-1));
    }

    #[test]
    fn append_after_explicit_index_and_base_name_rules() {
        let p = parse_str("a[5]=x&a[]=y&b.c=1&d[e=2&empty=&=skip");
        let a = p.get("a").map(|a| a.entries().to_vec()).unwrap_or_default();
        assert_eq!(a, vec![("5".into(), s("x")), ("6".into(), s("y"))]);
        assert_eq!(p.get("b_c"), Some(&s("1")));
        assert_eq!(p.get("d_e"), Some(&s("2")));
        assert_eq!(p.get("empty"), Some(&s("")));
        assert_eq!(p.entries().len(), 4);
    }

    #[test]
    fn later_value_overwrites_and_merge_post_wins() {
        let q = parse_str("x=1&x=2&keep=q&over=q");
        assert_eq!(q.get("x"), Some(&s("2")));
        let post = from_json(&serde_json::json!({"over": "p", "n": 5, "b": true}));
        let m = merge(q, post);
        assert_eq!(m.get("over"), Some(&s("p")));
        assert_eq!(m.get("keep"), Some(&s("q")));
        assert_eq!(m.get("n"), Some(&s("5")));
        assert!(m.get("b").is_some_and(PVal::truthy));
    }

    #[test]
    fn truthiness_and_intval() {
        assert!(!s("0").truthy());
        assert!(s("false").truthy());
        assert_eq!(s("120abc").as_i64(), Some(120));
        assert_eq!(s("abc").as_i64(), Some(0));
        assert_eq!(urldecode("%zz%41"), "%zzA");
    }
}
