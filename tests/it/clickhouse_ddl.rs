//! Generated DDL runs on a real ClickHouse, is idempotent, and hostile portal names stay data.
use crate::common;

use b24ch::clickhouse::ddl::{self, ColumnDef, TablePlan, Target};
use b24ch::config::{Schedule, Secret};
use b24ch::encode::Format;

fn col(name: &str, t: &str) -> ColumnDef {
    ColumnDef {
        name: name.into(),
        sql_type: t.into(),
    }
}

fn plan(entity: &str) -> TablePlan {
    TablePlan {
        entity: entity.into(),
        columns: vec![
            col("ID", "Int64"),
            col("TITLE", "Nullable(String)"),
            col("DATE_MODIFY", "Nullable(DateTime64(0, 'UTC'))"),
            col("UF_CRM_MULTI", "Array(UInt64)"),
            col("x`; DROP TABLE y; --", "Nullable(String)"),
            col("Поле 'с' кавычками\n", "Nullable(String)"),
            col("dt_inserted", "DateTime64(3, 'UTC')"),
            col("_version", "UInt64"),
            col("_is_deleted", "UInt8"),
            col("_invalid", "Map(String, String)"),
        ],
        primary_key: "ID".into(),
        numeric_key: true,
        cursor: Some("DATE_MODIFY".into()),
        schedule: Schedule::parse("1 HOUR").unwrap(),
        reconcile_schedule: Schedule::parse("1 DAY").unwrap(),
        reconcile_safety_ms: ddl::RECONCILE_SAFETY_MS,
        retry_backoff_ms: 5_000,
        delete_guard: b24ch::config::DeleteGuard::DEFAULT,
        format: Format::Parquet,
        renamed_from: Vec::new(),
    }
}

async fn run_all(ch: &local_clickhouse::LocalClickHouse, stmts: &[ddl::Statement]) {
    for s in stmts {
        if let Err(e) = ch.query(&s.sql).await {
            panic!("statement failed: {e}\n{}", s.sql);
        }
    }
}

#[tokio::test]
async fn entity_ddl_runs_twice_and_current_view_hides_watermark_and_tombstones() {
    let (ch, db) = common::fresh_database("ddl").await;
    let t = Target {
        database: db.clone(),
        cluster: None,
    };
    let endpoint = ddl::ProxyEndpoint {
        // Nothing listens here: the first refresh fails, which this test does not need.
        public_url: "http://127.0.0.1:9".into(),
        token: Secret::new("0123456789abcdef-token"),
    };
    let mut stmts = vec![ddl::database(&t)];
    stmts.extend(ddl::proxy(&t, &endpoint));
    stmts.extend(ddl::endpoints(&t, &endpoint, &plan("crm_deal")));
    stmts.extend(ddl::entity(&t, &plan("crm_deal")));
    stmts.push(ddl::enum_labels_table(&t));
    // The shared test server's passwordless `default` stands in for the dictionary's user
    // (clickhouse-local has no writable access storage; see `dictionary_user.rs`).
    stmts.push(ddl::enum_labels_dictionary(&t, "default"));
    run_all(ch, &stmts).await;
    run_all(ch, &stmts).await; // idempotent

    let tables = ch
        .query(&format!(
            "SELECT name FROM system.tables WHERE database = '{db}' ORDER BY name"
        ))
        .await
        .unwrap();
    assert_eq!(
        tables.lines().collect::<Vec<_>>(),
        [
            "crm_deal",
            "crm_deal_current",
            "crm_deal_load",
            "crm_deal_reconcile",
            "enum_labels",
            "enum_labels_dict"
        ]
    );
    let cols = ch
        .query(&format!(
            "SELECT name FROM system.columns WHERE database = '{db}' AND table = 'crm_deal' ORDER BY position"
        ))
        .await
        .unwrap();
    assert!(cols.contains("x`; DROP TABLE y; --"), "{cols}");
    let quoted = ch
        .query(&format!(
            "SELECT count() FROM system.columns WHERE database = '{db}' AND table = 'crm_deal' AND name = 'Поле \\'с\\' кавычками\\n'"
        ))
        .await
        .unwrap();
    assert_eq!(quoted.trim(), "1", "{cols}");

    // A live row, a deleted row (newer version wins) and a watermark row.
    ch.query(&format!(
        "INSERT INTO `{db}`.crm_deal (ID, TITLE, DATE_MODIFY, _version, _is_deleted) VALUES \
         (1, 'a', '2024-01-01 00:00:00', 1, 0), (2, 'b', '2024-01-02 00:00:00', 1, 0), \
         (2, 'b', '2024-01-02 00:00:00', 2, 1), (0, NULL, '2024-05-05 05:05:05', 3, 0)"
    ))
    .await
    .unwrap();
    let current = ch
        .query(&format!(
            "SELECT ID, TITLE FROM `{db}`.crm_deal_current ORDER BY ID"
        ))
        .await
        .unwrap();
    assert_eq!(current.trim(), "1\ta");

    // The cursor expression the load view uses reads the watermark row.
    let cursor = ch
        .query(&format!(
            "SELECT toUnixTimestamp((SELECT max(DATE_MODIFY) FROM `{db}`.crm_deal WHERE ID = 0))"
        ))
        .await
        .unwrap();
    assert_eq!(cursor.trim(), "1714885505");
}

#[test]
fn secrets_are_masked_in_the_displayed_sql() {
    let t = Target {
        database: "b24".into(),
        cluster: None,
    };
    let endpoint = ddl::ProxyEndpoint {
        public_url: "http://b24ch:8480".into(),
        token: Secret::new("super-secret-token-123"),
    };
    let mut stmts = ddl::proxy(&t, &endpoint);
    stmts.extend(ddl::endpoints(&t, &endpoint, &plan("crm_deal")));
    let shown: String = stmts.iter().map(|s| s.display.clone()).collect();
    assert!(!shown.contains("super-secret-token-123"));
    let real: String = stmts.iter().map(|s| s.sql.clone()).collect();
    assert!(real.contains("Bearer super-secret-token-123"));
}

#[test]
fn cluster_ddl_uses_on_cluster_and_replicated_engines() {
    let t = Target {
        database: "b24".into(),
        cluster: Some("main".into()),
    };
    let sql = ddl::table(&t, &plan("crm_deal")).sql;
    assert!(sql.contains("ON CLUSTER `main`"), "{sql}");
    assert!(sql.contains("ReplicatedReplacingMergeTree("), "{sql}");
}

/// Portal text stays data: every string, quoted as a literal or an identifier, reads back
/// from a real ClickHouse exactly as it was (nothing can end the quote early).
#[tokio::test]
async fn quoted_portal_text_round_trips_through_clickhouse() {
    use b24ch::clickhouse::quote::{ident, literal};
    use rand::{RngExt, SeedableRng};
    let (ch, db) = common::fresh_database("quote").await;
    let mut samples: Vec<String> = [
        "'; DROP TABLE x; --",
        "`; DROP TABLE x; --",
        "a\\'b",
        "a\\`b",
        "\\",
        "line\nbreak\r\ttab",
        "Сделка «Ёлка» 🚀",
        "quote\"double",
        "nul\0byte",
        "{param:String}",
        "?",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let alphabet: Vec<char> = "ab'`\\\"\n\r\t;-{}?$Ё🚀 \u{7f}".chars().collect();
    for _ in 0..60 {
        let len = rng.random_range(1..12);
        samples.push(
            (0..len)
                .map(|_| alphabet[rng.random_range(0..alphabet.len())])
                .collect(),
        );
    }
    for (i, s) in samples.iter().enumerate() {
        let back = ch
            .query(&format!("SELECT {} AS v FORMAT JSONEachRow", literal(s)))
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(back.trim()).unwrap();
        assert_eq!(v["v"].as_str(), Some(s.as_str()), "literal {s:?}");
        let table = format!("`{db}`.q{i}");
        ch.query(&format!(
            "CREATE TABLE {table} ({} String) ENGINE = Memory",
            ident(s)
        ))
        .await
        .unwrap();
        let name = ch
            .query(&format!(
                "SELECT name FROM system.columns WHERE database = '{db}' AND table = 'q{i}' FORMAT JSONEachRow"
            ))
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(name.trim()).unwrap();
        assert_eq!(v["name"].as_str(), Some(s.as_str()), "identifier {s:?}");
    }
}
