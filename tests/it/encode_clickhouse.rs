//! Real ClickHouse round trip: a table created from `Column::ch_type.sql()` accepts our
//! Parquet and JSONEachRow output and gives back identical values.
use crate::common;
use crate::common::field;

use b24ch::catalog::{Entity, EntityKind};
use b24ch::encode::{JsonEachRowEncoder, ParquetEncoder};
use b24ch::schema::{Cell, Column, RowNormalizer, ServiceValues, ValueStyle, table_columns};
use b24ch::sync::ChunkedInsert;
use local_clickhouse::{LocalClickHouse, LocalClickHouseOptions};
use serde_json::{Value, json};

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
            field("UF_LINKS", "crm", true),
            field("UF_FILE", "file", false),
        ],
    })
}

/// Raw legacy rows, normalised as in production (one has a value that does not fit).
fn rows(columns: &[Column]) -> Vec<Vec<Cell>> {
    let raws = [
        json!({
            "ID": "1", "TITLE": "Deal \"1\"\n\ttab ✓ 'q' \\", "STAGE_ID": "C1:NEW",
            "OPPORTUNITY": "19999.99", "PROBABILITY": "0.25", "CLOSED": "Y", "ASSIGNED_BY_ID": "6",
            "BEGINDATE": "2024-08-29T21:00:00-03:00", "DATE_MODIFY": "2024-08-30T14:29:00+02:00",
            "PHONE": [{"ID": "1", "VALUE_TYPE": "WORK", "VALUE": "+15454777777", "TYPE_ID": "PHONE"}],
            "UF_ENUM": ["3157", "3159"], "UF_MONEY": "-300.05|RUB",
            "UF_DATES": ["1900-01-01T00:00:00+00:00", "2299-12-31T02:00:00+02:00"],
            "UF_LINKS": ["D_12", "CO_3"], "UF_FILE": {"id": 5, "showUrl": "/x"}
        }),
        json!({
            "ID": "2", "TITLE": null, "OPPORTUNITY": "lots", "CLOSED": "N", "BEGINDATE": "",
            "UF_ENUM": false, "UF_MONEY": "", "UF_DATES": false, "UF_LINKS": false
        }),
    ];
    let n = RowNormalizer::new(columns, ValueStyle::Legacy, "crm_deal");
    let service = ServiceValues {
        loaded_at_ms: 1_725_020_940_123,
        version: 1_725_020_940_123,
        is_deleted: false,
    };
    raws.iter()
        .map(|r| n.normalize(r.as_object().unwrap(), &service).cells)
        .collect()
}

async fn create_table(ch: &LocalClickHouse, db: &str, table: &str, columns: &[Column]) {
    let cols: Vec<String> = columns
        .iter()
        .map(|c| format!("`{}` {}", c.name, c.ch_type.sql()))
        .collect();
    ch.query(&format!(
        "CREATE TABLE `{db}`.`{table}` ({}) ENGINE = MergeTree ORDER BY ID",
        cols.join(", ")
    ))
    .await
    .unwrap();
}

async fn insert(ch: &LocalClickHouse, db: &str, table: &str, format: &str, body: Vec<u8>) {
    let mut req = reqwest::Client::new()
        .post(format!("{}/", ch.http_url()))
        .query(&[(
            "query",
            format!("INSERT INTO `{db}`.`{table}` FORMAT {format}"),
        )])
        .body(body);
    if let Some((user, password)) = ch.user() {
        req = req.basic_auth(user, Some(password));
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert!(status.is_success(), "{format} insert failed: {text}");
}

async fn select(ch: &LocalClickHouse, db: &str, table: &str) -> Vec<Value> {
    let out = ch
        .query(&format!(
            "SELECT * FROM `{db}`.`{table}` ORDER BY ID FORMAT JSONEachRow \
             SETTINGS output_format_json_quote_64bit_integers = 0, \
             output_format_json_quote_decimals = 1"
        ))
        .await
        .unwrap();
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn parquet_and_json_each_row_round_trip_through_clickhouse() {
    let (ch, db) = common::fresh_database("encode").await;
    let columns = columns();
    let rows = rows(&columns);

    let mut parquet = ParquetEncoder::new(&columns).unwrap();
    let mut body = parquet.write_rows(&rows).unwrap().to_vec();
    body.extend_from_slice(&parquet.finish().unwrap());
    create_table(ch, &db, "t_parquet", &columns).await;
    insert(ch, &db, "t_parquet", "Parquet", body).await;

    let json = JsonEachRowEncoder::new(&columns)
        .write_rows(&rows)
        .unwrap()
        .to_vec();
    create_table(ch, &db, "t_json", &columns).await;
    insert(ch, &db, "t_json", "JSONEachRow", json).await;

    let from_parquet = select(ch, &db, "t_parquet").await;
    let from_json = select(ch, &db, "t_json").await;
    assert_eq!(from_parquet, from_json);
    assert_eq!(
        from_parquet[0],
        json!({
            "ID": 1,
            "TITLE": "Deal \"1\"\n\ttab ✓ 'q' \\",
            "STAGE_ID": "C1:NEW",
            "OPPORTUNITY": "19999.99",
            "PROBABILITY": 0.25,
            "CLOSED": true,
            "ASSIGNED_BY_ID": 6,
            "BEGINDATE": "2024-08-30",
            "DATE_MODIFY": "2024-08-30 12:29:00",
            "PHONE": [{"value": "+15454777777", "value_type": "WORK"}],
            "UF_ENUM": [3157, 3159],
            "UF_MONEY": "-300.05",
            "UF_MONEY_CURRENCY": "RUB",
            "UF_DATES": ["1900-01-01", "2299-12-31"],
            "UF_LINKS": ["D_12", "CO_3"],
            "UF_FILE": 5,
            "UF_FILE_URL": "/x",
            "dt_inserted": "2024-08-30 12:29:00.123",
            "_version": 1_725_020_940_123u64,
            "_is_deleted": 0,
            "_invalid": {}
        })
    );
    assert_eq!(
        from_parquet[1],
        json!({
            "ID": 2,
            "TITLE": null,
            "STAGE_ID": null,
            "OPPORTUNITY": null,
            "PROBABILITY": null,
            "CLOSED": false,
            "ASSIGNED_BY_ID": null,
            "BEGINDATE": null,
            "DATE_MODIFY": null,
            "PHONE": [],
            "UF_ENUM": [],
            "UF_MONEY": null,
            "UF_MONEY_CURRENCY": null,
            "UF_DATES": [],
            "UF_LINKS": [],
            "UF_FILE": null,
            "UF_FILE_URL": null,
            "dt_inserted": "2024-08-30 12:29:00.123",
            "_version": 1_725_020_940_123u64,
            "_is_deleted": 0,
            "_invalid": {"OPPORTUNITY": "\"lots\""}
        })
    );

    // The stored types are exactly the declared ones (no silent widening on insert).
    let types = ch
        .query(&format!(
            "SELECT name, type FROM system.columns WHERE database = '{db}' AND table = 't_parquet' \
             ORDER BY position FORMAT TSV"
        ))
        .await
        .unwrap();
    let declared: Vec<String> = columns
        .iter()
        .map(|c| format!("{}\t{}", c.name, c.ch_type.sql().replace("\\'", "'")))
        .collect();
    let got: Vec<String> = types.lines().map(|l| l.replace("\\'", "'")).collect();
    assert_eq!(got, declared);
}

/// ClickHouse closes an INSERT whose body stays idle for `http_receive_timeout` (30 s by
/// default; 1 s on this test's own server), and a load may wait minutes for the portal's limits
/// between two pages. A streamed INSERT held open across such a wait is cut; `ChunkedInsert`
/// sends each INSERT whole, so the same wait costs nothing.
#[tokio::test]
async fn an_insert_is_never_held_open_across_a_wait_for_the_portal() {
    const DB: &str = "impatient";
    let ch = LocalClickHouse::start(LocalClickHouseOptions {
        database: Some(DB.into()),
        settings: vec![("http_receive_timeout".into(), "1".into())],
        ..LocalClickHouseOptions::new(common::test_data_dir("impatient"))
    })
    .await
    .unwrap();
    let columns = columns();
    let rows = rows(&columns);
    create_table(&ch, DB, "t", &columns).await;
    let config = b24ch::config::from_toml_str(&format!(
        "[clickhouse]\nurl = \"{}\"\ndatabase = \"{DB}\"\n",
        ch.http_url()
    ))
    .unwrap();
    let conn = b24ch::clickhouse::Connection::connect(&config.clickhouse).unwrap();
    let table = format!("`{DB}`.`t`");
    let wait = std::time::Duration::from_millis(2_500);

    // The hazard: a streamed INSERT left idle across the wait is cut by ClickHouse.
    let mut parquet = ParquetEncoder::new(&columns).unwrap();
    let mut whole = parquet.write_rows(&rows).unwrap().to_vec();
    whole.extend_from_slice(&parquet.finish().unwrap());
    let (head, tail) = whole.split_at(whole.len() / 2);
    let mut streamed = conn.insert_formatted(&format!("INSERT INTO {table} FORMAT Parquet"));
    streamed
        .send(bytes::Bytes::copy_from_slice(head))
        .await
        .unwrap();
    tokio::time::sleep(wait).await;
    let cut = async {
        streamed.send(bytes::Bytes::copy_from_slice(tail)).await?;
        streamed.end().await
    }
    .await;
    assert!(
        cut.is_err(),
        "ClickHouse kept an INSERT idle for {wait:?} open: the premise of this test no longer holds"
    );
    assert!(select(&ch, DB, "t").await.is_empty());

    // A chunk sent, the wait, the rest: every row lands.
    let mut insert = ChunkedInsert::new(&conn, &table, &columns).with_chunk_rows(1);
    insert.write(&rows[..1]).await.unwrap();
    assert_eq!(insert.sent, 1, "the first chunk went before the wait");
    tokio::time::sleep(wait).await;
    insert.write(&rows[1..]).await.unwrap();
    insert.flush().await.unwrap();
    assert_eq!(insert.sent, 2);
    assert_eq!(select(&ch, DB, "t").await.len(), 2);
    ch.stop().await.unwrap();
}
