//! Encoders: Parquet read back with the parquet crate equals the cells; JSONEachRow lines
//! parse back to the ClickHouse text forms; both stream with bounded buffering.
use crate::common::field;
use arrow_array::{
    Array, BooleanArray, Date32Array, Decimal128Array, Int64Array, ListArray, MapArray,
    StringArray, StructArray, TimestampMillisecondArray, TimestampSecondArray, UInt8Array,
    UInt64Array,
};
use arrow_schema::{DataType, TimeUnit};
use b24ch::catalog::{Entity, EntityKind};
use b24ch::encode::{
    EncodeError, Format, JsonEachRowEncoder, ParquetEncoder, ParquetOptions, RowEncoder,
    arrow_schema, to_record_batch,
};
use b24ch::schema::{Cell, Column, table_columns};
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::{Value, json};

/// One column of every ClickHouse type the schema produces.
fn columns() -> Vec<Column> {
    table_columns(&Entity {
        name: "crm_deal".into(),
        kind: EntityKind::Crm,
        title: "Deal".into(),
        method: "crm.deal".into(),
        entity_type_id: None,
        companion: None,
        fields: vec![
            field("ID", "integer", false),
            field("TITLE", "string", false),
            field("STAGE_ID", "crm_status", false),
            field("OPPORTUNITY", "double", false),
            field("PROBABILITY", "double", false),
            field("CLOSED", "char", false),
            field("ASSIGNED_BY_ID", "user", false),
            field("BEGINDATE", "date", false),
            field("DATE_MODIFY", "datetime", false),
            field("PHONE", "crm_multifield", true),
            field("UF_ENUM", "enumeration", true),
            field("UF_MONEY", "money", false),
            field("UF_DATES", "date", true),
        ],
    })
}

const MODIFIED: i64 = 1_725_020_940; // 2024-08-30 12:29:00 UTC
const BEGIN: i32 = 19_965; // 2024-08-30

fn full_row(id: i64) -> Vec<Cell> {
    vec![
        Cell::Int(id),
        Cell::Str(format!("Deal \"{id}\"\nline2 ✓")),
        Cell::Str("C1:NEW".into()),
        Cell::Decimal(1_999_999),
        Cell::Float(0.25),
        Cell::Bool(true),
        Cell::UInt(6),
        Cell::Date(BEGIN),
        Cell::DateTime(MODIFIED),
        Cell::Pairs(vec![
            ("+15454777777".into(), "WORK".into()),
            ("+1".into(), "HOME".into()),
        ]),
        Cell::Array(vec![Cell::UInt(3157), Cell::UInt(3159)]),
        Cell::Decimal(-30_005),
        Cell::Str("RUB".into()),
        Cell::Array(vec![Cell::Date(BEGIN), Cell::Date(-25_567)]),
        Cell::DateTime(1_725_020_940_123),
        Cell::UInt(1_725_020_940_123),
        Cell::UInt(0),
        Cell::Map(vec![("PROBABILITY".into(), "\"high\"".into())]),
    ]
}

fn empty_row(id: i64) -> Vec<Cell> {
    let mut row = vec![Cell::Int(id)];
    row.extend(std::iter::repeat_n(Cell::Null, 8));
    row.extend([
        Cell::Pairs(vec![]),
        Cell::Array(vec![]),
        Cell::Null,
        Cell::Null,
    ]);
    row.extend([
        Cell::Array(vec![]),
        Cell::DateTime(0),
        Cell::UInt(1),
        Cell::UInt(1),
    ]);
    row.push(Cell::Map(vec![]));
    row
}

fn parquet_bytes(
    columns: &[Column],
    pages: &[Vec<Vec<Cell>>],
    options: ParquetOptions,
) -> (Vec<Bytes>, Bytes) {
    let mut enc = ParquetEncoder::with_options(columns, options).unwrap();
    let chunks = pages.iter().map(|p| enc.write_rows(p).unwrap()).collect();
    (chunks, enc.finish().unwrap())
}

fn concat(chunks: &[Bytes], tail: &Bytes) -> Bytes {
    let mut all = Vec::new();
    chunks.iter().for_each(|c| all.extend_from_slice(c));
    all.extend_from_slice(tail);
    Bytes::from(all)
}

#[test]
fn arrow_types_match_clickhouse_columns() {
    let schema = arrow_schema(&columns());
    let dt = |name: &str| schema.field_with_name(name).unwrap().clone();
    assert_eq!(dt("ID").data_type(), &DataType::Int64);
    assert!(!dt("ID").is_nullable());
    assert_eq!(dt("OPPORTUNITY").data_type(), &DataType::Decimal128(18, 2));
    assert!(dt("OPPORTUNITY").is_nullable());
    assert_eq!(dt("BEGINDATE").data_type(), &DataType::Date32);
    assert_eq!(
        dt("DATE_MODIFY").data_type(),
        &DataType::Timestamp(TimeUnit::Second, Some("UTC".into()))
    );
    assert_eq!(
        dt("dt_inserted").data_type(),
        &DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
    );
    assert_eq!(dt("STAGE_ID").data_type(), &DataType::Utf8);
    assert_eq!(dt("_is_deleted").data_type(), &DataType::UInt8);
    assert!(
        matches!(dt("PHONE").data_type(), DataType::List(f) if matches!(f.data_type(), DataType::Struct(s) if s.len() == 2 && s[0].name() == "value" && s[1].name() == "value_type"))
    );
    assert!(
        matches!(dt("UF_ENUM").data_type(), DataType::List(f) if f.data_type() == &DataType::UInt64 && !f.is_nullable())
    );
    assert!(matches!(
        dt("_invalid").data_type(),
        DataType::Map(_, false)
    ));
}

#[test]
fn parquet_reads_back_equal_to_the_cells() {
    let columns = columns();
    let rows = vec![full_row(1), empty_row(2), full_row(3)];
    let (chunks, tail) = parquet_bytes(
        &columns,
        std::slice::from_ref(&rows),
        ParquetOptions::default(),
    );
    let bytes = concat(&chunks, &tail);
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .unwrap()
        .build()
        .unwrap();
    let batches: Vec<_> = reader.collect::<Result<_, _>>().unwrap();
    assert_eq!(batches.len(), 1);
    let got = &batches[0];
    let want = to_record_batch(&columns, &rows).unwrap();
    assert_eq!(got.schema(), want.schema());
    assert_eq!(got, &want);

    // And concrete values, not just self-consistency.
    let col = |name: &str| got.column(got.schema().index_of(name).unwrap()).clone();
    let ids = col("ID");
    let ids = ids.as_any().downcast_ref::<Int64Array>().unwrap();
    assert_eq!(ids.values(), &[1, 2, 3]);
    let opp = col("OPPORTUNITY");
    let opp = opp.as_any().downcast_ref::<Decimal128Array>().unwrap();
    assert_eq!(opp.value(0), 1_999_999);
    assert_eq!(opp.value_as_string(0), "19999.99");
    assert!(opp.is_null(1));
    let money = col("UF_MONEY");
    let money = money.as_any().downcast_ref::<Decimal128Array>().unwrap();
    assert_eq!(money.value_as_string(0), "-300.05");
    let title = col("TITLE");
    assert_eq!(
        title
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap()
            .value(0),
        "Deal \"1\"\nline2 ✓"
    );
    let closed = col("CLOSED");
    let closed = closed.as_any().downcast_ref::<BooleanArray>().unwrap();
    assert!(closed.value(0) && closed.is_null(1));
    let assigned = col("ASSIGNED_BY_ID");
    assert_eq!(
        assigned
            .as_any()
            .downcast_ref::<UInt64Array>()
            .unwrap()
            .value(2),
        6
    );
    let begin = col("BEGINDATE");
    assert_eq!(
        begin
            .as_any()
            .downcast_ref::<Date32Array>()
            .unwrap()
            .value(0),
        BEGIN
    );
    let modified = col("DATE_MODIFY");
    assert_eq!(
        modified
            .as_any()
            .downcast_ref::<TimestampSecondArray>()
            .unwrap()
            .value(0),
        MODIFIED
    );
    let inserted = col("dt_inserted");
    assert_eq!(
        inserted
            .as_any()
            .downcast_ref::<TimestampMillisecondArray>()
            .unwrap()
            .value(0),
        1_725_020_940_123
    );
    let deleted = col("_is_deleted");
    assert_eq!(
        deleted
            .as_any()
            .downcast_ref::<UInt8Array>()
            .unwrap()
            .values(),
        &[0, 1, 0]
    );
    let phone = col("PHONE");
    let phone = phone.as_any().downcast_ref::<ListArray>().unwrap();
    let first = phone.value(0);
    let first = first.as_any().downcast_ref::<StructArray>().unwrap();
    let values = first
        .column(0)
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap()
        .clone();
    assert_eq!(values.value(0), "+15454777777");
    assert_eq!(phone.value(1).len(), 0);
    let invalid = col("_invalid");
    let invalid = invalid.as_any().downcast_ref::<MapArray>().unwrap();
    let keys = invalid.value(0);
    assert_eq!(
        keys.column(0)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap()
            .value(0),
        "PROBABILITY"
    );
    assert_eq!(invalid.value(1).len(), 0);
}

#[test]
fn parquet_streams_row_groups_with_bounded_buffering() {
    let columns = columns();
    let options = ParquetOptions {
        row_group_rows: 1_000,
        ..ParquetOptions::default()
    };
    let mut enc = ParquetEncoder::with_options(&columns, options).unwrap();
    let mut emitted = Vec::new();
    for page in 0..50 {
        let rows: Vec<Vec<Cell>> = (0..250).map(|i| full_row(page * 250 + i)).collect();
        let chunk = enc.write_rows(&rows).unwrap();
        assert!(enc.buffered_rows() < 1_000);
        emitted.push(chunk);
    }
    // 12,500 rows in 1,000-row groups: bytes leave long before the end (the writer's 8 KiB
    // BufWriter may hold back a small group until the next one).
    let non_empty = emitted.iter().filter(|c| !c.is_empty()).count();
    assert!(non_empty >= 5, "only {non_empty} chunks had bytes");
    let tail = enc.finish().unwrap();
    let streamed: usize = emitted.iter().map(Bytes::len).sum();
    assert!(streamed > 10_000, "streamed {streamed}");
    let bytes = concat(&emitted, &tail);
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).unwrap();
    assert_eq!(builder.metadata().num_row_groups(), 13);
    let total: usize = builder
        .build()
        .unwrap()
        .map(|b| b.unwrap().num_rows())
        .sum();
    assert_eq!(total, 12_500);
}

#[test]
fn empty_stream_is_a_valid_parquet_file() {
    let (chunks, tail) = parquet_bytes(&columns(), &[vec![]], ParquetOptions::default());
    let bytes = concat(&chunks, &tail);
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).unwrap();
    assert_eq!(builder.metadata().file_metadata().num_rows(), 0);
}

#[test]
fn json_each_row_lines_parse_back() {
    let columns = columns();
    let mut enc = JsonEachRowEncoder::new(&columns);
    let bytes = enc.write_rows(&[full_row(1), empty_row(2)]).unwrap();
    assert!(enc.finish().unwrap().is_empty());
    let text = std::str::from_utf8(&bytes).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(
        lines[0],
        json!({
            "ID": 1,
            "TITLE": "Deal \"1\"\nline2 ✓",
            "STAGE_ID": "C1:NEW",
            "OPPORTUNITY": "19999.99",
            "PROBABILITY": 0.25,
            "CLOSED": true,
            "ASSIGNED_BY_ID": 6,
            "BEGINDATE": "2024-08-30",
            "DATE_MODIFY": "2024-08-30 12:29:00",
            "PHONE": [{"value": "+15454777777", "value_type": "WORK"}, {"value": "+1", "value_type": "HOME"}],
            "UF_ENUM": [3157, 3159],
            "UF_MONEY": "-300.05",
            "UF_MONEY_CURRENCY": "RUB",
            "UF_DATES": ["2024-08-30", "1900-01-01"],
            "dt_inserted": "2024-08-30 12:29:00.123",
            "_version": 1_725_020_940_123u64,
            "_is_deleted": 0,
            "_invalid": {"PROBABILITY": "\"high\""}
        })
    );
    assert_eq!(lines[1]["OPPORTUNITY"], Value::Null);
    assert_eq!(lines[1]["PHONE"], json!([]));
    assert_eq!(lines[1]["dt_inserted"], "1970-01-01 00:00:00.000");
    // Column order is the table's.
    assert!(text.starts_with("{\"ID\":1,\"TITLE\":"));
}

#[test]
fn mismatched_cells_are_errors_not_garbage() {
    let columns = columns();
    let mut bad = full_row(1);
    bad[3] = Cell::Str("19999.99".into());
    let err = to_record_batch(&columns, &[bad.clone()]).unwrap_err();
    assert!(
        matches!(&err, EncodeError::CellType { column, .. } if column == "OPPORTUNITY"),
        "{err}"
    );
    let err = JsonEachRowEncoder::new(&columns)
        .write_rows(&[bad])
        .unwrap_err();
    assert!(
        matches!(&err, EncodeError::CellType { column, .. } if column == "OPPORTUNITY"),
        "{err}"
    );
    let short = vec![Cell::Int(1)];
    assert!(matches!(
        to_record_batch(&columns, &[short]),
        Err(EncodeError::RowWidth { row: 0, got: 1, .. })
    ));
}

#[test]
fn row_encoder_dispatches_by_format() {
    assert_eq!(Format::parse("jsoneachrow"), Some(Format::JsonEachRow));
    assert_eq!(Format::parse("Parquet"), Some(Format::Parquet));
    assert_eq!(Format::parse("csv"), None);
    let columns = columns();
    let mut enc = RowEncoder::new(Format::JsonEachRow, &columns).unwrap();
    let out = enc.write_rows(&[full_row(5)]).unwrap();
    assert!(out.starts_with(b"{\"ID\":5,"));
    let mut enc = RowEncoder::new(Format::Parquet, &columns).unwrap();
    let mut all = enc.write_rows(&[full_row(5)]).unwrap().to_vec();
    all.extend_from_slice(&enc.finish().unwrap());
    assert!(all.starts_with(b"PAR1") && all.ends_with(b"PAR1"));
}
