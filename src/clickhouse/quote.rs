//! Quoting for generated SQL: every portal-provided name or label goes through here, so
//! no field code, title or enumeration label can change a statement (docs/architecture.md,
//! invariant 6).

/// A ClickHouse identifier in backquotes, with backslashes and backquotes escaped.
pub fn ident(name: &str) -> String {
    quoted(name, '`')
}

/// A ClickHouse string literal in single quotes.
pub fn literal(value: &str) -> String {
    quoted(value, '\'')
}

/// `text` between `quote` characters, escaped as ClickHouse's lexer reads it back.
fn quoted(text: &str, quote: char) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push(quote);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\0' => out.push_str("\\0"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// `db`.`name`
pub fn qualified(db: &str, name: &str) -> String {
    format!("{}.{}", ident(db), ident(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_escape_backquotes_and_control_chars() {
        assert_eq!(ident("TITLE"), "`TITLE`");
        assert_eq!(ident("a`b"), "`a\\`b`");
        assert_eq!(ident("x\\`; DROP"), "`x\\\\\\`; DROP`");
        assert_eq!(ident("a\nb"), "`a\\nb`");
        assert_eq!(ident("Сделка"), "`Сделка`");
    }

    #[test]
    fn literals_escape_quotes() {
        assert_eq!(literal("it's"), "'it\\'s'");
        assert_eq!(literal("'; DROP TABLE x; --"), "'\\'; DROP TABLE x; --'");
        assert_eq!(literal("a\\'b"), "'a\\\\\\'b'");
        assert_eq!(literal("🙂\n"), "'🙂\\n'");
    }
}
