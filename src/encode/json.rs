//! JSONEachRow straight from cells (no Arrow): one object per line, in the text forms
//! ClickHouse's JSONEachRow input reads into the column types exactly.
//!
//! Decimals are JSON strings (`"19999.99"`) so no JSON reader turns them into floats;
//! Date32 is `"YYYY-MM-DD"`; DateTime64 is `"YYYY-MM-DD hh:mm:ss[.fff]"` in UTC (the
//! columns are declared `'UTC'`); multifields are named-tuple objects; Map is an object.
use std::io::Write;

use bytes::Bytes;

use super::error::{EncodeError, cell_kind};
use crate::schema::parse::format_decimal;
use crate::schema::{Cell, ChType, Column};

/// JSONEachRow writer.
pub struct JsonEachRowEncoder {
    /// `"NAME":` of each column, pre-escaped.
    keys: Vec<Vec<u8>>,
    types: Vec<ChType>,
    names: Vec<String>,
    scratch: String,
}

impl JsonEachRowEncoder {
    pub fn new(columns: &[Column]) -> Self {
        let keys = columns
            .iter()
            .map(|c| {
                let mut k = Vec::with_capacity(c.name.len() + 3);
                write_json_str(&mut k, &c.name);
                k.push(b':');
                k
            })
            .collect();
        JsonEachRowEncoder {
            keys,
            types: columns.iter().map(|c| c.ch_type.clone()).collect(),
            names: columns.iter().map(|c| c.name.clone()).collect(),
            scratch: String::new(),
        }
    }

    /// Encodes rows, one line each.
    pub fn write_rows(&mut self, rows: &[Vec<Cell>]) -> Result<Bytes, EncodeError> {
        let mut out = Vec::with_capacity(rows.len() * 64 * self.keys.len().max(1));
        for (r, row) in rows.iter().enumerate() {
            if row.len() != self.keys.len() {
                return Err(EncodeError::RowWidth {
                    row: r,
                    got: row.len(),
                    expected: self.keys.len(),
                });
            }
            out.push(b'{');
            for (i, cell) in row.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(&self.keys[i]);
                write_cell(&mut out, &mut self.scratch, &self.types[i], cell).map_err(|c| {
                    EncodeError::CellType {
                        column: self.names[i].clone(),
                        expected: self.types[i].sql(),
                        cell: c,
                    }
                })?;
            }
            out.extend_from_slice(b"}\n");
        }
        Ok(Bytes::from(out))
    }

    /// JSONEachRow has no trailer.
    pub fn finish(self) -> Result<Bytes, EncodeError> {
        Ok(Bytes::new())
    }
}

/// Writes one cell as JSON; the error names the cell kind that did not match.
fn write_cell(
    out: &mut Vec<u8>,
    scratch: &mut String,
    t: &ChType,
    cell: &Cell,
) -> Result<(), &'static str> {
    let (t, _) = t.strip_nullable();
    // Writing into a Vec cannot fail; the io::Result of write! is therefore ignored.
    match (t, cell) {
        (_, Cell::Null) => match t {
            ChType::Array(_) | ChType::MultiField => out.extend_from_slice(b"[]"),
            ChType::Map => out.extend_from_slice(b"{}"),
            _ => out.extend_from_slice(b"null"),
        },
        (ChType::Bool, Cell::Bool(b)) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        (ChType::UInt8, Cell::Bool(b)) => out.push(if *b { b'1' } else { b'0' }),
        (ChType::Int64, Cell::Int(v)) => {
            out.extend_from_slice(itoa::Buffer::new().format(*v).as_bytes())
        }
        (ChType::UInt64 | ChType::UInt8, Cell::UInt(v)) => {
            out.extend_from_slice(itoa::Buffer::new().format(*v).as_bytes())
        }
        (ChType::Float64, Cell::Float(v)) if v.is_finite() => {
            let _ = write!(out, "{v}");
        }
        // ClickHouse reads quoted nan/inf into Float64; they are not JSON numbers.
        (ChType::Float64, Cell::Float(v)) => {
            let text = if v.is_nan() {
                "nan"
            } else if *v > 0.0 {
                "inf"
            } else {
                "-inf"
            };
            write_json_str(out, text);
        }
        (ChType::Decimal { scale, .. }, Cell::Decimal(v)) => {
            scratch.clear();
            format_decimal(*v, *scale, scratch);
            out.push(b'"');
            out.extend_from_slice(scratch.as_bytes());
            out.push(b'"');
        }
        (ChType::Date32, Cell::Date(d)) => {
            let (y, m, dd) = civil_from_days(i64::from(*d));
            out.push(b'"');
            write_date(out, y, m, dd);
            out.push(b'"');
        }
        (ChType::DateTime64 { precision }, Cell::DateTime(v)) => {
            write_datetime(out, *v, *precision)
        }
        (ChType::String | ChType::LowCardinalityString, Cell::Str(s)) => write_json_str(out, s),
        (ChType::Array(elem), Cell::Array(items)) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_cell(out, scratch, elem, item)?;
            }
            out.push(b']');
        }
        (ChType::MultiField, Cell::Pairs(pairs)) => {
            out.push(b'[');
            for (i, (value, value_type)) in pairs.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(b"{\"value\":");
                write_json_str(out, value);
                out.extend_from_slice(b",\"value_type\":");
                write_json_str(out, value_type);
                out.push(b'}');
            }
            out.push(b']');
        }
        (ChType::Map, Cell::Map(pairs)) => {
            out.push(b'{');
            for (i, (k, v)) in pairs.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json_str(out, k);
                out.push(b':');
                write_json_str(out, v);
            }
            out.push(b'}');
        }
        (_, other) => return Err(cell_kind(other)),
    }
    Ok(())
}

/// `"YYYY-MM-DD hh:mm:ss[.fff…]"` from units of 10^-precision seconds.
fn write_datetime(out: &mut Vec<u8>, value: i64, precision: u8) {
    let precision = u32::from(precision.min(9));
    let per_sec = 10i64.pow(precision);
    let secs = value.div_euclid(per_sec);
    let frac = value.rem_euclid(per_sec);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    out.push(b'"');
    write_date(out, y, m, d);
    out.push(b' ');
    push_padded(out, sod / 3600, 2);
    out.push(b':');
    push_padded(out, sod % 3600 / 60, 2);
    out.push(b':');
    push_padded(out, sod % 60, 2);
    if precision > 0 {
        out.push(b'.');
        push_padded(out, frac, precision as usize);
    }
    out.push(b'"');
}

/// `YYYY-MM-DD` (as `{y:04}-{m:02}-{d:02}` prints it).
fn write_date(out: &mut Vec<u8>, y: i64, m: i64, d: i64) {
    push_padded(out, y, 4);
    out.push(b'-');
    push_padded(out, m, 2);
    out.push(b'-');
    push_padded(out, d, 2);
}

/// `v` zero-padded to `width` digits, as `{v:0width$}` prints it.
fn push_padded(out: &mut Vec<u8>, v: i64, width: usize) {
    let mut buf = itoa::Buffer::new();
    let digits = buf.format(v.unsigned_abs());
    if v < 0 {
        out.push(b'-');
    }
    let sign = usize::from(v < 0);
    out.extend(std::iter::repeat_n(
        b'0',
        width.saturating_sub(digits.len() + sign),
    ));
    out.extend_from_slice(digits.as_bytes());
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's algorithm;
/// cheaper than going through chrono for every cell).
pub(crate) fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// A JSON string literal: escapes `"`, `\` and control characters, copies the rest
/// (valid UTF-8 already) in runs.
fn write_json_str(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if escape.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(escape);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    #[test]
    fn padded_digits_match_format() {
        for v in [-12345i64, -5, 0, 7, 42, 999, 2024, 12345, i64::MIN + 1] {
            for width in [2usize, 3, 4, 9] {
                let mut out = Vec::new();
                super::push_padded(&mut out, v, width);
                assert_eq!(String::from_utf8(out).unwrap(), format!("{v:0width$}"));
            }
        }
    }

    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_965), (2024, 8, 30));
        assert_eq!(civil_from_days(-25_567), (1900, 1, 1));
        assert_eq!(civil_from_days(120_529), (2299, 12, 31));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }

    #[test]
    fn strings_are_escaped() {
        let mut out = Vec::new();
        write_json_str(&mut out, "a\"b\\c\nd\u{1}é");
        assert_eq!(String::from_utf8(out).unwrap(), r#""a\"b\\c\nd\u0001é""#);
    }

    #[test]
    fn datetimes_in_utc_text() {
        let mut out = Vec::new();
        write_datetime(&mut out, 1_725_295_038, 0);
        write_datetime(&mut out, 1_725_295_038_123, 3);
        write_datetime(&mut out, -1, 0);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#""2024-09-02 16:37:18""2024-09-02 16:37:18.123""1969-12-31 23:59:59""#
        );
    }
}
