//! The times of ClickHouse's `update_field` protocol and of `--modified-since`.

/// Parses a `--modified-since` / update-field value: unix seconds, `YYYY-MM-DD hh:mm:ss`,
/// `YYYY-MM-DD` or RFC 3339. Naive values are read at `offset` (UTC when `None`). `0` or
/// empty means "everything".
pub fn parse_since(
    text: &str,
    offset: Option<chrono::FixedOffset>,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, String> {
    use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
    let t = text.trim();
    if t.is_empty() || t == "0" {
        return Ok(None);
    }
    let offset = offset.unwrap_or_else(|| chrono::Offset::fix(&Utc));
    let naive = |n: NaiveDateTime| {
        offset
            .from_local_datetime(&n)
            .single()
            .map(|d| d.with_timezone(&Utc))
    };
    let parsed = if let Ok(secs) = t.parse::<i64>() {
        DateTime::from_timestamp(secs, 0)
    } else if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        Some(d.with_timezone(&Utc))
    } else if let Ok(n) = NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S") {
        naive(n)
    } else if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        d.and_hms_opt(0, 0, 0).and_then(naive)
    } else {
        None
    };
    let bad = || {
        format!(
            "modified_since {t:?} is not a date between 2000 and 2100; give unix seconds, `YYYY-MM-DD hh:mm:ss`, `YYYY-MM-DD` or RFC 3339"
        )
    };
    let d = parsed.ok_or_else(bad)?;
    let year: i32 = d.format("%Y").to_string().parse().unwrap_or(0);
    if !(2000..=2100).contains(&year) {
        return Err(bad());
    }
    Ok(Some(d))
}

/// Parses `+03:00` / `-05:30` / `Z`.
pub fn parse_offset(text: &str) -> Result<chrono::FixedOffset, String> {
    let t = text.trim();
    let bad = || format!("{t:?} is not a UTC offset; write it like +03:00 or -05:30");
    if t.eq_ignore_ascii_case("z") || t.eq_ignore_ascii_case("utc") {
        return chrono::FixedOffset::east_opt(0).ok_or_else(bad);
    }
    let (sign, rest) = match t.as_bytes().first() {
        Some(b'+') => (1, &t[1..]),
        Some(b'-') => (-1, &t[1..]),
        _ => return Err(bad()),
    };
    let (h, m) = rest.split_once(':').unwrap_or((rest, "0"));
    let h: i32 = h.parse().map_err(|_| bad())?;
    let m: i32 = m.parse().map_err(|_| bad())?;
    if !(0..=14).contains(&h) || !(0..60).contains(&m) {
        return Err(bad());
    }
    chrono::FixedOffset::east_opt(sign * (h * 3600 + m * 60)).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_forms() {
        let a = parse_since("1714885505", None).unwrap().unwrap();
        let b = parse_since("2024-05-05 05:05:05", None).unwrap().unwrap();
        let c = parse_since("2024-05-05T08:05:05+03:00", None)
            .unwrap()
            .unwrap();
        let d = parse_since("2024-05-05 08:05:05", Some(parse_offset("+03:00").unwrap()))
            .unwrap()
            .unwrap();
        assert_eq!((a, b, c), (b, c, d));
        assert_eq!(parse_since("", None).unwrap(), None);
        assert!(parse_since("yesterday", None).is_err());
        assert!(parse_since("1800-01-01", None).is_err());
        assert!(parse_offset("3").is_err());
    }
}
