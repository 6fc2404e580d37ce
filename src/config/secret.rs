//! Secrets: values that must never reach logs, errors or HTTP responses.
use serde::{Deserialize, Deserializer};
use std::fmt;

/// A secret string (token, password, webhook URL). `Debug` and `Display` print `***`;
/// the value is reachable only through [`Secret::expose`], so leaking it takes intent.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself: call only where it is sent to its one legitimate consumer.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

/// Replaces every occurrence of the given secrets in `text` with `***`; used on
/// anything built from URLs or upstream bodies before it is logged or returned.
pub fn redact(text: &str, secrets: &[&Secret]) -> String {
    secrets
        .iter()
        .filter(|s| s.0.len() >= 4)
        .fold(text.to_string(), |acc, s| acc.replace(&s.0, "***"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_hide_the_value() {
        let s = Secret::new("hunter2-token");
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert_eq!(format!("{s}"), "***");
        assert_eq!(s.expose(), "hunter2-token");
    }

    #[test]
    fn redact_replaces_every_occurrence() {
        let s = Secret::new("abcd1234");
        let out = redact("https://x/rest/1/abcd1234/m?auth=abcd1234", &[&s]);
        assert!(!out.contains("abcd1234"));
        assert_eq!(out.matches("***").count(), 2);
    }
}
