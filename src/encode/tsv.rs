//! ClickHouse's TabSeparated text escaping (the format ClickHouse writes to and reads from
//! executables by default).

/// Escapes one field: `\` `\t` `\n` and the other control escapes ClickHouse reads.
pub fn escape(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            c => out.push(c),
        }
    }
}

/// Unescapes one field as ClickHouse writes it. Unknown escapes keep the character.
pub fn unescape(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('0') => out.push('\0'),
            Some('b') => out.push('\x08'),
            Some('f') => out.push('\x0c'),
            Some('a') => out.push('\x07'),
            Some('v') => out.push('\x0b'),
            Some('N') => out.push_str("\\N"),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// Splits one line (without its `\n`) into unescaped fields.
pub fn split_row(line: &str) -> Vec<String> {
    line.split('\t').map(unescape).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for s in [
            "plain",
            "tab\there",
            "new\nline",
            "back\\slash",
            "{\"a\":\"b\\n\"}",
            "Сделка",
        ] {
            let mut e = String::new();
            escape(s, &mut e);
            assert!(!e.contains('\t') && !e.contains('\n'));
            assert_eq!(unescape(&e), s);
        }
        assert_eq!(
            split_row("crm.deal.get\t{\"id\":1}"),
            vec!["crm.deal.get", "{\"id\":1}"]
        );
    }
}
