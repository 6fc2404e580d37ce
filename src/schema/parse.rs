//! Text → typed value parsers for the encodings of `docs/bitrix24-api.md` §6.3.
//!
//! Pure functions on `&str`: no allocation on the hot path, no panics on any input.
//! JSON-level concerns (`null`, `false`, `{}`) are handled in `normalize`.
use chrono::{DateTime, NaiveDate};

/// First and last day ClickHouse `Date32` / `DateTime64` can hold (1900-01-01, 2299-12-31).
pub const MIN_DAY: i32 = -25_567;
pub const MAX_DAY: i32 = 120_529;
const SECS_PER_DAY: i64 = 86_400;
/// Days from 0001-01-01 (CE day 1) to 1970-01-01.
const UNIX_EPOCH_CE_DAYS: i32 = 719_163;

/// A decimal parsed to `scale` digits after the point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScaledDecimal {
    pub unscaled: i128,
    /// More non-zero digits than the scale were given; the value was rounded half-even.
    pub rounded: bool,
}

/// Exact decimal text (`"19999.99"`, `"-0.5"`, `"1e3"`, `"999.9"`) → unscaled integer.
///
/// No float is involved, so `"19999.99"` is exactly `1999999` at scale 2. Digits beyond
/// `scale` are rounded half-even and flagged: the caller keeps the raw text in `_invalid`,
/// so the typed column stays usable and nothing is lost. Values needing more than
/// `precision` digits give `None`.
pub fn parse_decimal(text: &str, precision: u8, scale: u8) -> Option<ScaledDecimal> {
    let s = text.trim();
    let (negative, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], body[i + 1..].parse::<i64>().ok()?),
        None => (body, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let is_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if (int_part.is_empty() && frac_part.is_empty())
        || !is_digits(int_part)
        || !is_digits(frac_part)
    {
        return None;
    }
    if exponent.abs() > 400 {
        return None;
    }
    let frac_len = i64::try_from(frac_part.len()).ok()?;
    // value * 10^scale = digits * 10^shift
    let shift = exponent - frac_len + i64::from(scale);
    let digits = || int_part.bytes().chain(frac_part.bytes());
    let total = int_part.len() + frac_part.len();
    let drop = usize::try_from((-shift).max(0)).ok()?;
    let keep = total.saturating_sub(drop);

    let mut value: i128 = 0;
    for b in digits().take(keep) {
        value = value.checked_mul(10)?.checked_add(i128::from(b - b'0'))?;
    }
    if shift > 0 && value != 0 {
        value = value.checked_mul(10i128.checked_pow(u32::try_from(shift).ok()?)?)?;
    }
    // Dropped digits, with the implicit leading zeros when more are dropped than exist.
    let first_dropped = if drop > total {
        Some(b'0')
    } else {
        digits().nth(keep)
    };
    let rounded = digits().skip(keep).any(|b| b != b'0');
    if rounded && round_up_half_even(value, first_dropped, digits().skip(keep + 1)) {
        value = value.checked_add(1)?;
    }
    if value >= 10i128.checked_pow(u32::from(precision))? {
        return None;
    }
    let unscaled = if negative { -value } else { value };
    Some(ScaledDecimal { unscaled, rounded })
}

/// Half-even: above half rounds up, exactly half rounds to the even neighbour.
fn round_up_half_even(kept: i128, first: Option<u8>, mut rest: impl Iterator<Item = u8>) -> bool {
    match first {
        Some(d) if d > b'5' => true,
        Some(b'5') => rest.any(|b| b != b'0') || kept % 2 == 1,
        _ => false,
    }
}

/// Formats an unscaled decimal as text (`1999999`, 2 → `"19999.99"`).
pub fn format_decimal(unscaled: i128, scale: u8, out: &mut String) {
    use std::fmt::Write;
    let scale = u32::from(scale);
    if scale == 0 {
        let _ = write!(out, "{unscaled}");
        return;
    }
    let Some(factor) = 10u128.checked_pow(scale) else {
        let _ = write!(out, "{unscaled}e-{scale}");
        return;
    };
    if unscaled < 0 {
        out.push('-');
    }
    let abs = unscaled.unsigned_abs();
    // `itoa`, not `fmt`: this runs for every decimal cell of JSONEachRow.
    let mut buf = itoa::Buffer::new();
    out.push_str(buf.format(abs / factor));
    out.push('.');
    let frac = buf.format(abs % factor);
    out.extend(std::iter::repeat_n(
        '0',
        (scale as usize).saturating_sub(frac.len()),
    ));
    out.push_str(frac);
}

/// A `date` value → days since 1970-01-01.
///
/// Bitrix24 prints a date as midnight UTC in the portal's offset
/// (`"2024-08-30T02:00:00+02:00"`, `"2024-08-29T21:00:00-03:00"`), so the date is the UTC
/// date of the instant; the local date would be a day early for negative offsets. If the
/// instant is not UTC midnight but the local clock reads midnight, the portal meant the
/// local date (the other plausible convention), so that date is taken instead.
/// Also accepts `YYYY-MM-DD` and `DD.MM.YYYY`.
pub fn parse_date(text: &str) -> Option<i32> {
    let s = text.trim();
    let day = if let Some(d) = plain_date(s) {
        d
    } else {
        let (utc, offset) = parse_instant(s)?;
        let utc_day = utc.div_euclid(SECS_PER_DAY);
        let local = utc + i64::from(offset);
        if utc.rem_euclid(SECS_PER_DAY) != 0 && local.rem_euclid(SECS_PER_DAY) == 0 {
            local.div_euclid(SECS_PER_DAY)
        } else {
            utc_day
        }
    };
    let day = i32::try_from(day).ok()?;
    (MIN_DAY..=MAX_DAY).contains(&day).then_some(day)
}

/// A `datetime` value (ISO 8601 with offset) → Unix seconds, UTC.
pub fn parse_datetime(text: &str) -> Option<i64> {
    let (utc, _) = parse_instant(text.trim())?;
    let min = i64::from(MIN_DAY) * SECS_PER_DAY;
    let max = (i64::from(MAX_DAY) + 1) * SECS_PER_DAY - 1;
    (min..=max).contains(&utc).then_some(utc)
}

/// `YYYY-MM-DD` or `DD.MM.YYYY` → days since the epoch.
fn plain_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let (y, m, d) = match b.len() {
        10 if b[4] == b'-' && b[7] == b'-' => (num(&b[0..4])?, num(&b[5..7])?, num(&b[8..10])?),
        10 if b[2] == b'.' && b[5] == b'.' => (num(&b[6..10])?, num(&b[3..5])?, num(&b[0..2])?),
        _ => return None,
    };
    days_from_civil(y, m, d).map(i64::from)
}

/// ISO 8601 instant with an offset → (UTC seconds, offset seconds). A fast path covers the
/// exact shape Bitrix24 prints (`2024-08-30T14:29:00+02:00`); chrono covers the rest
/// (fractions, `Z`, `+0200`, a space instead of `T`). Text without an offset is rejected:
/// its zone is unknown, and guessing would invent data.
fn parse_instant(s: &str) -> Option<(i64, i32)> {
    if let Some(r) = fast_instant(s) {
        return Some(r);
    }
    let parsed = DateTime::parse_from_rfc3339(s)
        .or_else(|_| DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .or_else(|_| DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f%z"))
        .ok()?;
    Some((parsed.timestamp(), parsed.offset().local_minus_utc()))
}

fn fast_instant(s: &str) -> Option<(i64, i32)> {
    let b = s.as_bytes();
    if b.len() != 25 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' {
        return None;
    }
    if b[13] != b':' || b[16] != b':' || b[22] != b':' || !matches!(b[19], b'+' | b'-') {
        return None;
    }
    let day = days_from_civil(num(&b[0..4])?, num(&b[5..7])?, num(&b[8..10])?)?;
    let (h, mi, se) = (num(&b[11..13])?, num(&b[14..16])?, num(&b[17..19])?);
    let (oh, om) = (num(&b[20..22])?, num(&b[23..25])?);
    if h > 23 || mi > 59 || se > 59 || oh > 23 || om > 59 {
        return None;
    }
    let sign = if b[19] == b'-' { -1 } else { 1 };
    let offset = sign * i32::try_from(oh * 3600 + om * 60).ok()?;
    let local = i64::from(day) * SECS_PER_DAY + i64::from(h * 3600 + mi * 60 + se);
    Some((local - i64::from(offset), offset))
}

/// ASCII digits → number (at most 4 digits are ever passed).
fn num(b: &[u8]) -> Option<u32> {
    b.iter().try_fold(0u32, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
    })
}

/// A valid calendar date → days since 1970-01-01.
fn days_from_civil(y: u32, m: u32, d: u32) -> Option<i32> {
    use chrono::Datelike;
    let date = NaiveDate::from_ymd_opt(i32::try_from(y).ok()?, m, d)?;
    Some(date.num_days_from_ce() - UNIX_EPOCH_CE_DAYS)
}

/// Days since the epoch → `YYYY-MM-DD` (for encoders and tests).
pub fn date_from_days(days: i32) -> Option<NaiveDate> {
    NaiveDate::from_num_days_from_ce_opt(days.checked_add(UNIX_EPOCH_CE_DAYS)?)
}

/// A boolean in any Bitrix24 spelling: `Y`/`N`, `1`/`0`, `true`/`false`.
pub fn parse_bool_text(s: &str) -> Option<bool> {
    match s.trim() {
        "Y" | "y" | "1" | "true" | "TRUE" | "True" => Some(true),
        "N" | "n" | "0" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// An integer written as text. `"5.00"` is accepted (some numeric fields are stored as
/// decimals), `"5.5"` is not.
pub fn parse_i64_text(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(v) = s.parse::<i64>() {
        return Some(v);
    }
    let d = parse_decimal(s, 38, 0)?;
    if d.rounded {
        return None;
    }
    i64::try_from(d.unscaled).ok()
}

/// A non-negative integer written as text.
pub fn parse_u64_text(s: &str) -> Option<u64> {
    let s = s.trim();
    if let Ok(v) = s.parse::<u64>() {
        return Some(v);
    }
    let d = parse_decimal(s, 38, 0)?;
    if d.rounded {
        return None;
    }
    u64::try_from(d.unscaled).ok()
}

/// A finite float written as text (`"NaN"`/`"inf"` are not Bitrix24 values).
pub fn parse_f64_text(s: &str) -> Option<f64> {
    let s = s.trim();
    let bytes_ok = s
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'));
    if s.is_empty() || !bytes_ok {
        return None;
    }
    s.parse::<f64>().ok().filter(|v| v.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Option<(i128, bool)> {
        parse_decimal(s, 18, 2).map(|d| (d.unscaled, d.rounded))
    }

    #[test]
    fn decimals_are_exact() {
        assert_eq!(dec("19999.99"), Some((1_999_999, false)));
        assert_eq!(dec("0.00"), Some((0, false)));
        assert_eq!(dec("19000"), Some((1_900_000, false)));
        assert_eq!(dec("999.9"), Some((99_990, false)));
        assert_eq!(dec("-0.5"), Some((-50, false)));
        assert_eq!(dec("1e3"), Some((100_000, false)));
        assert_eq!(dec("1.5e-1"), Some((15, false)));
        assert_eq!(dec(".5"), Some((50, false)));
        assert_eq!(dec("1.2300000"), Some((123, false)));
        assert_eq!(
            dec("9999999999999999.99"),
            Some((999_999_999_999_999_999, false))
        );
        assert_eq!(dec("10000000000000000"), None);
        assert_eq!(dec("abc"), None);
        assert_eq!(dec(""), None);
        assert_eq!(dec("."), None);
        assert_eq!(dec("1.2.3"), None);
        assert_eq!(dec("1e999"), None);
    }

    #[test]
    fn extra_decimals_round_half_even_and_are_flagged() {
        assert_eq!(dec("0.125"), Some((12, true)));
        assert_eq!(dec("0.135"), Some((14, true)));
        assert_eq!(dec("0.1251"), Some((13, true)));
        assert_eq!(dec("0.124999"), Some((12, true)));
        assert_eq!(dec("-2.675"), Some((-268, true)));
        assert_eq!(dec("0.001"), Some((0, true)));
        assert_eq!(dec("1e-5"), Some((0, true)));
    }

    #[test]
    fn decimal_formatting() {
        let f = |v, s| {
            let mut out = String::new();
            format_decimal(v, s, &mut out);
            out
        };
        assert_eq!(f(1_999_999, 2), "19999.99");
        assert_eq!(f(-5, 2), "-0.05");
        assert_eq!(f(7, 0), "7");
    }

    fn ymd(days: i32) -> String {
        date_from_days(days)
            .map(|d| d.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn dates_are_the_utc_date_of_the_instant() {
        assert_eq!(
            parse_date("2024-08-30T02:00:00+02:00").map(ymd).as_deref(),
            Some("2024-08-30")
        );
        assert_eq!(
            parse_date("2024-04-19T03:00:00+03:00").map(ymd).as_deref(),
            Some("2024-04-19")
        );
        // Negative offset: the local date part is the day before.
        assert_eq!(
            parse_date("2024-08-29T21:00:00-03:00").map(ymd).as_deref(),
            Some("2024-08-30")
        );
        assert_eq!(
            parse_date("2018-07-14T00:00:00+00:00").map(ymd).as_deref(),
            Some("2018-07-14")
        );
        assert_eq!(
            parse_date("2024-08-30").map(ymd).as_deref(),
            Some("2024-08-30")
        );
        assert_eq!(
            parse_date("30.08.2024").map(ymd).as_deref(),
            Some("2024-08-30")
        );
        // Local midnight (not UTC midnight): the local date is meant.
        assert_eq!(
            parse_date("2024-04-19T00:00:00+03:00").map(ymd).as_deref(),
            Some("2024-04-19")
        );
        assert_eq!(parse_date("1899-12-31"), None);
        assert_eq!(parse_date("0000-00-00"), None);
        assert_eq!(parse_date("2024-02-30"), None);
        assert_eq!(parse_date(""), None);
    }

    #[test]
    fn datetimes_become_utc_seconds() {
        assert_eq!(
            parse_datetime("2024-09-02T18:37:18+02:00"),
            Some(1_725_295_038)
        );
        assert_eq!(parse_datetime("2024-09-02T16:37:18Z"), Some(1_725_295_038));
        assert_eq!(
            parse_datetime("2024-09-02T16:37:18.999+00:00"),
            Some(1_725_295_038)
        );
        assert_eq!(
            parse_datetime("2024-09-02T13:37:18-0300"),
            Some(1_725_295_038)
        );
        assert_eq!(
            parse_datetime("2024-09-02 18:37:18+02:00"),
            Some(1_725_295_038)
        );
        assert_eq!(parse_datetime("2024-09-02T18:37:18"), None);
        assert_eq!(parse_datetime("24.08.2023 13:19:39"), None);
        assert_eq!(parse_datetime("2024-13-02T18:37:18+02:00"), None);
    }

    #[test]
    fn scalars_in_every_spelling() {
        assert_eq!(parse_bool_text("Y"), Some(true));
        assert_eq!(parse_bool_text("0"), Some(false));
        assert_eq!(parse_bool_text("maybe"), None);
        assert_eq!(parse_i64_text("37"), Some(37));
        assert_eq!(parse_i64_text("-5.00"), Some(-5));
        assert_eq!(parse_i64_text("5.5"), None);
        assert_eq!(parse_u64_text("-1"), None);
        assert_eq!(parse_u64_text("18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_f64_text("1.5"), Some(1.5));
        assert_eq!(parse_f64_text("NaN"), None);
        assert_eq!(parse_f64_text("inf"), None);
    }
}
