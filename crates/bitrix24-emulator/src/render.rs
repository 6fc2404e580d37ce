//! Rendering canonical values per API style: legacy CRM (stringly typed), crm.item (typed,
//! camelCase), user.get, and the ground-truth canonical form.

use chrono::{DateTime, FixedOffset, NaiveDate, Offset, Utc};
use serde_json::Value as SJ;

use super::config::RenderStyle;
use super::json_out::{J, fmt_float};
use super::model::{FieldDef, FmVal, Kind, Val};

/// Where a value lives (for file URLs).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cell<'a> {
    pub table: &'a str,
    pub entity_type_id: u32,
    pub id: u64,
    pub offset: i32,
    pub style: RenderStyle,
}

/// crm.item fields whose table column defaults to 0 (docs crm-item-get.md: `"companyId": 0`,
/// `"contactId": 0`, `"webformId": 0` next to `"parentId1222": null`).
const ITEM_ZERO_DEFAULT: &[&str] = &["COMPANY_ID", "CONTACT_ID", "MYCOMPANY_ID", "WEBFORM_ID"];

/// Types of single fields that hold the id of another object.
fn is_reference_type(t: &str) -> bool {
    matches!(
        t,
        "user"
            | "employee"
            | "crm_company"
            | "crm_contact"
            | "crm_lead"
            | "crm_deal"
            | "crm_quote"
            | "crm_entity"
    )
}

fn tz(offset: i32) -> FixedOffset {
    // Offsets are validated at start; fall back to UTC rather than panic.
    FixedOffset::east_opt(offset).unwrap_or_else(|| Utc.fix())
}

/// `date('c')` in the portal offset: `2024-08-30T14:29:00+03:00`.
pub(crate) fn iso_datetime(secs: i64, offset: i32) -> String {
    DateTime::from_timestamp(secs, 0)
        .map(|d| {
            d.with_timezone(&tz(offset))
                .format("%Y-%m-%dT%H:%M:%S%:z")
                .to_string()
        })
        .unwrap_or_default()
}

/// A datetime in the site's own format, without an offset (`18.07.2024 12:32:31`).
pub(crate) fn site_datetime(secs: i64, offset: i32) -> String {
    DateTime::from_timestamp(secs, 0)
        .map(|d| {
            d.with_timezone(&tz(offset))
                .format("%d.%m.%Y %H:%M:%S")
                .to_string()
        })
        .unwrap_or_default()
}

/// `ConvertDate`: midnight UTC of the date, printed in the portal offset.
pub(crate) fn iso_date(d: NaiveDate, offset: i32) -> String {
    let secs = d
        .and_hms_opt(0, 0, 0)
        .map_or(0, |dt| dt.and_utc().timestamp());
    iso_datetime(secs, offset)
}

/// Float `time` values use the same date format.
pub(crate) fn iso_from_f64(secs: f64, offset: i32) -> String {
    iso_datetime(secs.floor() as i64, offset)
}

fn amount_str(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", cents.abs() / 100, cents.abs() % 100)
}

/// Money UF amounts are stored as typed by the user: no trailing zeros (`1.5|RUB`, `300|RUB`).
fn money_amount(cents: i64) -> String {
    let s = amount_str(cents);
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

fn amount_number(cents: i64) -> J {
    if cents % 100 == 0 {
        J::Int(cents / 100)
    } else {
        J::Float(cents as f64 / 100.0)
    }
}

/// Legacy file objects carry portal-relative URLs (as `tryExternalizeFileField` builds them),
/// which also keeps the ground-truth text independent of the listening port.
/// The legacy download path of a file (what the ground truth's `…_URL` holds).
fn download_url(c: &Cell, code: &str, fid: u64) -> String {
    legacy_file(c, code, fid)
        .to_serde()
        .get("downloadUrl")
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn legacy_file(c: &Cell, code: &str, fid: u64) -> J {
    let show = format!(
        "/bitrix/components/bitrix/crm.{}.show/show_file.php?ownerId={}&fieldName={code}&fileId={fid}",
        c.table, c.id
    );
    J::obj([
        ("id", J::Int(fid as i64)),
        ("showUrl", J::Str(show.clone())),
        ("downloadUrl", J::Str(format!("{show}&dynamic=Y"))),
    ])
}

fn item_file(c: &Cell, code: &str, fid: u64) -> J {
    J::obj([
        ("id", J::Int(fid as i64)),
        (
            "url",
            J::Str(format!(
                "/bitrix/services/main/ajax.php?action=crm.controller.item.getFile&SITE_ID=s1&entityTypeId={}&id={}&fieldName={code}&fileId={fid}",
                c.entity_type_id, c.id
            )),
        ),
    ])
}

pub(crate) fn legacy_fm(v: &[FmVal]) -> J {
    J::List(
        v.iter()
            .map(|f| {
                J::obj([
                    ("ID", J::Str(f.id.to_string())),
                    ("VALUE_TYPE", J::Str(f.value_type.clone())),
                    ("VALUE", J::Str(f.value.clone())),
                    ("TYPE_ID", J::Str(f.type_id.clone())),
                ])
            })
            .collect(),
    )
}

pub(crate) fn item_fm(v: &[FmVal]) -> J {
    J::List(
        v.iter()
            .map(|f| {
                J::obj([
                    ("id", J::Int(f.id as i64)),
                    ("valueType", J::Str(f.value_type.clone())),
                    ("value", J::Str(f.value.clone())),
                    ("typeId", J::Str(f.type_id.clone())),
                ])
            })
            .collect(),
    )
}

fn legacy_scalar(f: &FieldDef, v: &Val, c: &Cell) -> J {
    match v {
        Val::Null if c.style.legacy_zero_refs && !f.multiple && is_reference_type(&f.api_type) => {
            J::str("0")
        }
        Val::Null => match f.kind {
            Kind::Date | Kind::DateTime => J::str(""),
            _ => J::Null,
        },
        Val::Int(i) => J::Str(i.to_string()),
        Val::Amount(cents) => J::Str(amount_str(*cents)),
        Val::Float(x) => J::Str(fmt_float(*x)),
        Val::Bool(b) => match f.kind {
            Kind::UfBool => J::str(if *b { "1" } else { "0" }),
            Kind::JsonBool => J::Bool(*b),
            _ => J::str(if *b { "Y" } else { "N" }),
        },
        Val::Str(s) if f.kind == Kind::Json => json_text_value(s),
        Val::Str(s) => J::Str(s.clone()),
        Val::Date(d) => J::Str(iso_date(*d, c.offset)),
        Val::DateTime(s) if f.kind == Kind::OrmObject => {
            let _ = s;
            J::Obj(vec![])
        }
        Val::DateTime(s) => J::Str(iso_datetime(*s, c.offset)),
        Val::Enum(e) => J::Str(e.to_string()),
        Val::Money { cents, currency } => J::Str(format!("{}|{currency}", money_amount(*cents))),
        Val::Binding(b) => J::Str(b.clone()),
        Val::File(fid) => legacy_file(c, &f.code, *fid),
        Val::Fm(items) => legacy_fm(items),
        Val::List(items) => J::List(items.iter().map(|x| legacy_scalar(f, x, c)).collect()),
    }
}

/// A field kept as JSON text, printed as the JSON value it holds (text that is not JSON
/// stays a string).
fn json_text_value(text: &str) -> J {
    serde_json::from_str::<SJ>(text)
        .map_or_else(|_| J::Str(text.to_string()), |v| J::from_serde(&v))
}

/// Legacy `crm.*.list` rendering. `get_mode`: `*.get` (UF NULL → "").
pub(crate) fn legacy(f: &FieldDef, v: &Val, c: &Cell, get_mode: bool) -> J {
    if f.api_type == "attached_diskfile" {
        // Timeline-comment files: an object keyed by file id (`{}` without files).
        let items = match v {
            Val::List(items) => items.as_slice(),
            _ => &[],
        };
        return super::timeline::files_json(items, |fid| download_url(c, &f.code, fid));
    }
    match v {
        // CDBResult::AfterFetch turns an empty multiple UF into false.
        Val::List(items) if items.is_empty() && f.is_uf() => J::Bool(false),
        Val::Null if f.is_uf() && f.multiple => J::Bool(false),
        Val::Null if f.is_uf() && get_mode => J::str(""),
        _ => legacy_scalar(f, v, c),
    }
}

/// user.get rendering: like legacy but ints in UF_DEPARTMENT, `""` for empty strings/dates.
pub(crate) fn user(f: &FieldDef, v: &Val, c: &Cell) -> J {
    match (f.code.as_str(), v) {
        ("UF_DEPARTMENT", Val::List(items)) => J::List(
            items
                .iter()
                .map(|x| x.as_i64().map_or(J::Null, J::Int))
                .collect(),
        ),
        (_, Val::Null) => J::str(""),
        _ => legacy_scalar(f, v, c),
    }
}

/// Typed rendering used by crm.item and other controller methods.
pub(crate) fn item(f: &FieldDef, v: &Val, c: &Cell) -> J {
    match v {
        Val::Null
            if c.style.item_zero_refs
                && !f.multiple
                && ITEM_ZERO_DEFAULT.contains(&f.item_upper.as_str()) =>
        {
            J::Int(0)
        }
        Val::Null => {
            if f.multiple {
                J::List(vec![])
            } else {
                J::Null
            }
        }
        Val::Int(i) => J::Int(*i),
        Val::Amount(cents) => amount_number(*cents),
        Val::Float(x) => J::Float(*x),
        Val::Bool(b) => J::str(if *b { "Y" } else { "N" }),
        Val::Str(s) => J::Str(s.clone()),
        Val::Date(d) => J::Str(iso_date(*d, c.offset)),
        Val::DateTime(s) => J::Str(iso_datetime(*s, c.offset)),
        Val::Enum(e) => J::Int(*e as i64),
        Val::Money { cents, currency } => J::Str(format!("{}|{currency}", money_amount(*cents))),
        Val::Binding(b) => J::Str(b.clone()),
        Val::File(fid) if c.style.files_as_text => {
            J::Str(item_file(c, &f.code, *fid).to_serde().to_string())
        }
        Val::File(fid) => item_file(c, &f.code, *fid),
        Val::Fm(items) => item_fm(items),
        Val::List(items) => J::List(items.iter().map(|x| item(f, x, c)).collect()),
    }
}

/// Canonical ground-truth form; returns one or two (key, value) pairs (money UF adds `_CURRENCY`).
pub(crate) fn truth(f: &FieldDef, v: &Val, c: &Cell) -> Vec<(String, SJ)> {
    if f.kind == Kind::Money {
        let (amount, cur) = match v {
            Val::Money { cents, currency } => {
                (SJ::String(amount_str(*cents)), SJ::String(currency.clone()))
            }
            _ => (SJ::Null, SJ::Null),
        };
        return vec![
            (f.code.clone(), amount),
            (format!("{}_CURRENCY", f.code), cur),
        ];
    }
    if f.kind == Kind::File {
        return truth_file(f, v, c);
    }
    let value = match v {
        Val::Null if f.multiple => SJ::Array(vec![]),
        _ => truth_value(f, v, c),
    };
    vec![(f.code.clone(), value)]
}

/// A file field: its id, and `…_URL` the download path (the legacy `downloadUrl`; the
/// crm.item `url` names the same owner, field and file).
fn truth_file(f: &FieldDef, v: &Val, c: &Cell) -> Vec<(String, SJ)> {
    let one = |v: &Val| match v {
        Val::File(fid) => {
            let url = legacy_file(c, &f.code, *fid)
                .to_serde()
                .get("downloadUrl")
                .cloned()
                .unwrap_or(SJ::Null);
            (SJ::from(*fid), url)
        }
        _ => (SJ::Null, SJ::Null),
    };
    let (id, url) = match v {
        Val::List(items) => {
            let (ids, urls): (Vec<SJ>, Vec<SJ>) = items.iter().map(one).unzip();
            (SJ::Array(ids), SJ::Array(urls))
        }
        Val::Null if f.multiple => (SJ::Array(vec![]), SJ::Array(vec![])),
        other => one(other),
    };
    vec![(f.code.clone(), id), (format!("{}_URL", f.code), url)]
}

fn truth_value(f: &FieldDef, v: &Val, c: &Cell) -> SJ {
    match v {
        Val::Null => SJ::Null,
        // REST prints the ORM object as `{}`: its value is never exposed, so none exists.
        Val::DateTime(_) if f.kind == Kind::OrmObject => SJ::Null,
        // Raw JSON is compared as text; an empty object/array is no value.
        Val::Str(s) if f.kind == Kind::Json => match serde_json::from_str::<SJ>(s) {
            Ok(SJ::Object(m)) if m.is_empty() => SJ::Null,
            Ok(SJ::Array(a)) if a.is_empty() => SJ::Null,
            _ => SJ::String(s.clone()),
        },
        Val::Int(i) => SJ::from(*i),
        Val::Amount(cents) => SJ::String(amount_str(*cents)),
        Val::Float(x) => serde_json::Number::from_f64(*x).map_or(SJ::Null, SJ::Number),
        Val::Bool(b) => SJ::Bool(*b),
        Val::Str(s) => SJ::String(s.clone()),
        Val::Date(d) => SJ::String(d.format("%Y-%m-%d").to_string()),
        Val::DateTime(s) => SJ::String(
            DateTime::from_timestamp(*s, 0)
                .map(|d| d.format("%Y-%m-%d %H:%M:%S").to_string())
                .unwrap_or_default(),
        ),
        Val::Enum(e) => SJ::from(*e),
        Val::Money { cents, currency } => SJ::String(format!("{}|{currency}", amount_str(*cents))),
        Val::Binding(b) => SJ::String(b.clone()),
        Val::File(fid) => SJ::String(legacy_file(c, &f.code, *fid).to_serde().to_string()),
        Val::Fm(items) => SJ::Array(
            items
                .iter()
                .map(|x| serde_json::json!({"value": x.value, "value_type": x.value_type}))
                .collect(),
        ),
        Val::List(items) => SJ::Array(items.iter().map(|x| truth_value(f, x, c)).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_midnight_utc_in_offset() {
        let d = NaiveDate::from_ymd_opt(2024, 8, 30).unwrap_or_default();
        assert_eq!(iso_date(d, 10_800), "2024-08-30T03:00:00+03:00");
        assert_eq!(iso_date(d, -18_000), "2024-08-29T19:00:00-05:00");
        assert_eq!(
            iso_datetime(1_725_020_940, 7200),
            "2024-08-30T14:29:00+02:00"
        );
    }

    #[test]
    fn money_and_amounts() {
        assert_eq!(money_amount(150), "1.5");
        assert_eq!(money_amount(30_000), "300");
        assert_eq!(amount_str(150_000), "1500.00");
        assert_eq!(amount_str(-5), "-0.05");
        assert_eq!(amount_number(1_900_000), J::Int(19_000));
        assert_eq!(amount_number(99_990), J::Float(999.9));
    }
}
