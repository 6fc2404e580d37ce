//! Properties of normalisation: it never panics and its output always encodes; decimals
//! round-trip exactly; dates survive any portal UTC offset (the negative-offset trap).
use crate::common::field;
use b24ch::catalog::{Entity, EntityKind};
use b24ch::encode::{JsonEachRowEncoder, ParquetEncoder, to_record_batch};
use b24ch::schema::parse::{format_decimal, parse_date, parse_datetime, parse_decimal};
use b24ch::schema::{Cell, RowNormalizer, ServiceValues, ValueStyle, table_columns};
use chrono::{DateTime, FixedOffset};
use proptest::prelude::*;
use serde_json::{Map, Number, Value};

/// Every Bitrix24 type the mapping knows, plus unknown and app-defined ones.
const TYPES: &[&str] = &[
    "integer",
    "double",
    "string",
    "text",
    "char",
    "boolean",
    "date",
    "datetime",
    "user",
    "employee",
    "crm_status",
    "crm_category",
    "crm_currency",
    "crm_company",
    "crm_entity",
    "crm_multifield",
    "enumeration",
    "money",
    "url",
    "address",
    "file",
    "location",
    "crm",
    "iblock_section",
    "rest_12_custom",
    "never_seen_before",
];

/// One single and one multiple field per type; OPPORTUNITY makes a Decimal column.
fn entity() -> Entity {
    let mut fields = vec![
        field("ID", "integer", false),
        field("OPPORTUNITY", "double", false),
    ];
    for (i, t) in TYPES.iter().enumerate() {
        fields.push(field(&format!("F{i}"), t, false));
        fields.push(field(&format!("M{i}"), t, true));
    }
    Entity {
        name: "crm_deal".into(),
        kind: EntityKind::Crm,
        title: "Deal".into(),
        method: "crm.deal".into(),
        entity_type_id: None,
        companion: None,
        fields,
    }
}

/// Strings Bitrix24 really sends, and near misses.
fn interesting_string() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("Y".to_string()),
        Just("N".to_string()),
        Just("1".to_string()),
        Just("0".to_string()),
        Just("-1".to_string()),
        Just("19999.99".to_string()),
        Just("0.125".to_string()),
        Just("1e400".to_string()),
        Just("99999999999999999999.99".to_string()),
        Just("300|RUB".to_string()),
        Just("|".to_string()),
        Just("abc|".to_string()),
        Just("2024-08-30T02:00:00+02:00".to_string()),
        Just("2024-08-29T21:00:00-03:00".to_string()),
        Just("0000-00-00".to_string()),
        Just("9999-12-31T23:59:59+14:00".to_string()),
        Just("18446744073709551616".to_string()),
        Just("D_12".to_string()),
        "[0-9.eE+-]{0,24}",
        "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}[+-][0-9]{2}:[0-9]{2}",
        ".{0,12}",
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| Number::from_f64(f).map_or(Value::Null, Value::Number)),
        interesting_string().prop_map(Value::String),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let keys = prop_oneof![
        Just("VALUE".to_string()),
        Just("VALUE_TYPE".to_string()),
        Just("value".to_string()),
        Just("valueType".to_string()),
        Just("typeId".to_string()),
        Just("id".to_string()),
        "[a-z]{1,3}",
    ];
    leaf().prop_recursive(3, 24, 4, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((keys.clone(), inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn raw_row(n_keys: usize) -> impl Strategy<Value = Map<String, Value>> {
    let names: Vec<String> = entity().fields.iter().map(|f| f.code.clone()).collect();
    prop::collection::vec((0..names.len(), json_value()), 0..n_keys).prop_map(move |kv| {
        kv.into_iter()
            .map(|(i, v)| (names[i].clone(), v))
            .collect::<Map<String, Value>>()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// Any JSON in any field: no panic, one cell per column, every issue in `_invalid`,
    /// and the row encodes to Arrow and JSONEachRow (so it also fits the table).
    #[test]
    fn normalisation_never_panics_and_always_encodes(
        raw in raw_row(60),
        typed in any::<bool>(),
        fm in prop::option::of(json_value()),
    ) {
        let mut raw = raw;
        if let Some(fm) = fm {
            raw.insert("fm".into(), fm);
        }
        let columns = table_columns(&entity());
        let style = if typed { ValueStyle::Typed } else { ValueStyle::Legacy };
        let normalizer = RowNormalizer::new(&columns, style, "crm_deal");
        let row = normalizer.normalize(&raw, &ServiceValues::default());
        prop_assert_eq!(row.cells.len(), columns.len());
        let Some(Cell::Map(invalid)) = row.cells.last() else {
            return Err(TestCaseError::fail("last cell is not _invalid"));
        };
        prop_assert_eq!(invalid.len(), row.issues.len());
        for issue in &row.issues {
            prop_assert!(invalid.iter().any(|(k, v)| *k == issue.field && *v == issue.raw));
        }
        let rows = vec![row.cells];
        prop_assert!(to_record_batch(&columns, &rows).is_ok());
        let mut json = JsonEachRowEncoder::new(&columns);
        let line = json.write_rows(&rows).unwrap();
        let parsed: Value = serde_json::from_slice(&line).unwrap();
        prop_assert_eq!(parsed.as_object().map(|o| o.len()), Some(columns.len()));
    }

    /// The row path (`normalize_json` over the row's JSON text, no `Value` DOM) gives
    /// exactly what `normalize` gives for the parsed row: cells, issues, `_invalid`.
    #[test]
    fn json_text_path_equals_map_path(
        raw in raw_row(60),
        typed in any::<bool>(),
        fm in prop::option::of(json_value()),
    ) {
        let mut raw = raw;
        if let Some(fm) = fm {
            raw.insert("fm".into(), fm);
        }
        let columns = table_columns(&entity());
        let style = if typed { ValueStyle::Typed } else { ValueStyle::Legacy };
        let normalizer = RowNormalizer::new(&columns, style, "crm_deal");
        let text = serde_json::to_string(&raw).unwrap();
        let from_map = normalizer.normalize(&raw, &ServiceValues::default());
        let from_text = normalizer.normalize_json(&text, &ServiceValues::default()).unwrap();
        prop_assert_eq!(from_map, from_text);
    }

    /// Parquet accepts whatever normalisation produced (fewer cases: it is slower).
    #[test]
    fn normalised_rows_always_write_parquet(raws in prop::collection::vec(raw_row(30), 1..4)) {
        let columns = table_columns(&entity());
        let normalizer = RowNormalizer::new(&columns, ValueStyle::Legacy, "crm_deal");
        let rows: Vec<Vec<Cell>> = raws
            .iter()
            .map(|r| normalizer.normalize(r, &ServiceValues::default()).cells)
            .collect();
        let mut enc = ParquetEncoder::new(&columns).unwrap();
        let mut bytes = enc.write_rows(&rows).unwrap().to_vec();
        bytes.extend_from_slice(&enc.finish().unwrap());
        prop_assert!(bytes.starts_with(b"PAR1") && bytes.ends_with(b"PAR1"));
    }

    /// Text → decimal → text is the identity for every Decimal(18,2) value.
    #[test]
    fn decimal_text_round_trip(v in -999_999_999_999_999_999i128..=999_999_999_999_999_999i128) {
        let mut text = String::new();
        format_decimal(v, 2, &mut text);
        let parsed = parse_decimal(&text, 18, 2).unwrap();
        prop_assert_eq!(parsed.unscaled, v);
        prop_assert!(!parsed.rounded);
    }

    /// Money as a JSON number (crm.item `"opportunity": 999.9`) is exact to the cent.
    #[test]
    fn decimal_from_json_number_is_exact(cents in -100_000_000_000_000i64..100_000_000_000_000i64) {
        let number = Number::from_f64(cents as f64 / 100.0).unwrap();
        let parsed = parse_decimal(&number.to_string(), 18, 2).unwrap();
        prop_assert_eq!(parsed.unscaled, i128::from(cents));
        prop_assert!(!parsed.rounded);
    }

    /// A date printed as midnight UTC in any offset (−12:00 … +14:00) is that date.
    #[test]
    fn date_offset_trap(day in -25_567i64..=120_529i64, quarter_hours in -48i32..=56i32) {
        let offset = FixedOffset::east_opt(quarter_hours * 900).unwrap();
        let text = DateTime::from_timestamp(day * 86_400, 0)
            .unwrap()
            .with_timezone(&offset)
            .to_rfc3339();
        prop_assert_eq!(parse_date(&text), Some(i32::try_from(day).unwrap()), "{}", text);
    }

    /// Datetimes in any offset give the same UTC instant.
    #[test]
    fn datetime_any_offset(secs in -2_208_988_800i64..7_258_118_399i64, quarter_hours in -48i32..=56i32) {
        let offset = FixedOffset::east_opt(quarter_hours * 900).unwrap();
        let text = DateTime::from_timestamp(secs, 0).unwrap().with_timezone(&offset).to_rfc3339();
        prop_assert_eq!(parse_datetime(&text), Some(secs), "{}", text);
    }
}
