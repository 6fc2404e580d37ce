//! The local ClickHouse 26.9 server from chdb-core: version, tables, the Rust client,
//! isolation, refreshable MVs (the product's scheduler), auth, clean stop, start errors.
//! These run for real: a missing venv fails them with "run scripts/setup_clickhouse.sh".

use crate::common;

use std::time::{Duration, Instant};

use clickhouse::Row;
use local_clickhouse::{LocalClickHouse, LocalClickHouseError, LocalClickHouseOptions};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
struct Deal {
    id: u64,
    title: String,
    version: u64,
}

fn process_exists(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| s.split_whitespace().nth(2) == Some("Z"))
}

#[tokio::test]
async fn version_is_26_9_and_replacing_merge_tree_round_trips_through_the_rust_client() {
    let (ch, db) = common::fresh_database("rmt").await;
    let version = ch.query("SELECT version()").await.unwrap();
    assert!(version.starts_with("26.9"), "version {version:?}");

    let client = clickhouse::Client::default()
        .with_url(ch.http_url())
        .with_database(&db);
    client
        .query(
            "CREATE TABLE deals (id UInt64, title String, version UInt64) \
             ENGINE = ReplacingMergeTree(version) ORDER BY id",
        )
        .execute()
        .await
        .unwrap();
    let engine = ch
        .query(&format!(
            "SELECT engine FROM system.databases WHERE name = '{db}'"
        ))
        .await
        .unwrap();
    assert_eq!(engine.trim(), "Atomic");

    for batch in [
        vec![
            Deal {
                id: 1,
                title: "first".into(),
                version: 1,
            },
            Deal {
                id: 2,
                title: "second".into(),
                version: 1,
            },
        ],
        vec![Deal {
            id: 1,
            title: "first, renamed".into(),
            version: 2,
        }],
    ] {
        let mut insert = client.insert::<Deal>("deals").await.unwrap();
        for row in &batch {
            insert.write(row).await.unwrap();
        }
        insert.end().await.unwrap();
    }

    let rows = client
        .query("SELECT ?fields FROM deals FINAL ORDER BY id")
        .fetch_all::<Deal>()
        .await
        .unwrap();
    assert_eq!(
        rows,
        vec![
            Deal {
                id: 1,
                title: "first, renamed".into(),
                version: 2
            },
            Deal {
                id: 2,
                title: "second".into(),
                version: 1
            },
        ]
    );
    let tsv = ch
        .query(&format!(
            "SELECT id, title FROM `{db}`.deals FINAL ORDER BY id"
        ))
        .await
        .unwrap();
    assert_eq!(tsv, "1\tfirst, renamed\n2\tsecond\n");
}

#[tokio::test]
async fn fresh_databases_are_isolated() {
    let (ch, a) = common::fresh_database("iso").await;
    let (_, b) = common::fresh_database("iso").await;
    assert_ne!(a, b);
    ch.query(&format!(
        "CREATE TABLE `{a}`.t (x UInt8) ENGINE = MergeTree ORDER BY x"
    ))
    .await
    .unwrap();
    ch.query(&format!("INSERT INTO `{a}`.t VALUES (1), (2)"))
        .await
        .unwrap();
    assert_eq!(
        ch.query(&format!("SELECT count() FROM `{a}`.t"))
            .await
            .unwrap(),
        "2\n"
    );
    let err = ch
        .query(&format!("SELECT count() FROM `{b}`.t"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, LocalClickHouseError::Query { body, .. } if body.contains("UNKNOWN_TABLE")),
        "{err}"
    );
    let tables_b = ch
        .query(&format!(
            "SELECT count() FROM system.tables WHERE database = '{b}'"
        ))
        .await
        .unwrap();
    assert_eq!(tables_b, "0\n");
}

#[tokio::test]
async fn refreshable_materialized_view_with_append_runs_on_schedule() {
    let (ch, db) = common::fresh_database("rmv").await;
    for sql in [
        format!("CREATE TABLE `{db}`.src (id UInt64) ENGINE = MergeTree ORDER BY id"),
        format!("INSERT INTO `{db}`.src SELECT number FROM numbers(5)"),
        format!(
            "CREATE TABLE `{db}`.ticks (at DateTime64(3), c UInt64) ENGINE = MergeTree ORDER BY at"
        ),
        format!(
            "CREATE MATERIALIZED VIEW `{db}`.load REFRESH EVERY 1 SECOND APPEND TO `{db}`.ticks \
             AS SELECT now64(3) AS at, count() AS c FROM `{db}`.src"
        ),
    ] {
        ch.query(&sql).await.unwrap();
    }
    // A manual trigger works too (the analyst's "load now").
    ch.query(&format!("SYSTEM REFRESH VIEW `{db}`.load"))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = ch
            .query(&format!("SELECT count(), min(c), max(c) FROM `{db}`.ticks"))
            .await
            .unwrap();
        let n: u64 = out.split('\t').next().unwrap().parse().unwrap();
        if n >= 3 {
            assert!(out.ends_with("\t5\t5\n"), "{out}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "refreshable MV appended only {out:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let status = ch
        .query(&format!(
            "SELECT status FROM system.view_refreshes WHERE database = '{db}' AND view = 'load'"
        ))
        .await
        .unwrap();
    assert!(!status.trim().is_empty(), "no system.view_refreshes row");
}

#[tokio::test]
async fn own_server_with_user_persists_data_and_stops_cleanly() {
    let dir = common::test_data_dir("own");
    let opts = LocalClickHouseOptions {
        database: Some("app".into()),
        user: Some(("app".into(), "s3cret".into())),
        ..LocalClickHouseOptions::new(&dir)
    };
    let t0 = Instant::now();
    let ch = LocalClickHouse::start(opts.clone()).await.unwrap();
    let started = t0.elapsed();
    assert!(ch.tcp_port().is_some());
    assert!(ch.user_scripts_dir().is_dir());
    let pid = ch.pid();
    assert!(process_exists(pid));

    ch.query("CREATE TABLE kept (x UInt32) ENGINE = MergeTree ORDER BY x")
        .await
        .unwrap();
    ch.client()
        .query("INSERT INTO kept SELECT number FROM numbers(1000)")
        .execute()
        .await
        .unwrap();
    // The passwordless `default` is cut down when a user is configured.
    let anon = reqwest::Client::new()
        .post(ch.http_url())
        .header("Connection", "close")
        .body("SELECT count() FROM app.kept")
        .send()
        .await
        .unwrap();
    assert!(!anon.status().is_success());
    assert!(anon.text().await.unwrap().contains("ACCESS_DENIED"));

    let t1 = Instant::now();
    ch.stop().await.unwrap();
    let stopped = t1.elapsed();
    assert!(
        !process_exists(pid),
        "server pid {pid} still running after stop"
    );
    eprintln!("local ClickHouse: start {started:?}, stop {stopped:?}");

    // Data survives a restart on the same directory.
    let ch = LocalClickHouse::start(opts).await.unwrap();
    let n = ch.query("SELECT count(), sum(x) FROM kept").await.unwrap();
    assert_eq!(n, "1000\t499500\n");
    let pid = ch.pid();
    drop(ch); // Drop stops it too
    assert!(!process_exists(pid), "Drop left pid {pid} running");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn start_errors_are_clear() {
    // Port already taken by the shared server: the launcher's FAILED line reaches the error.
    let shared = common::clickhouse().await;
    let opts = LocalClickHouseOptions {
        http_port: shared.http_port(),
        ..LocalClickHouseOptions::new(common::test_data_dir("busy"))
    };
    let err = LocalClickHouse::start(opts).await.unwrap_err().to_string();
    assert!(err.contains("cannot bind"), "{err}");
    assert!(err.contains("scripts/setup_clickhouse.sh"), "{err}");

    let opts = LocalClickHouseOptions {
        python: Some("/nonexistent/python3".into()),
        ..LocalClickHouseOptions::new(common::test_data_dir("nopy"))
    };
    let err = LocalClickHouse::start(opts).await.unwrap_err();
    assert!(
        matches!(err, LocalClickHouseError::PythonMissing { .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("run scripts/setup_clickhouse.sh"),
        "{err}"
    );

    let opts = LocalClickHouseOptions {
        database: Some("bad-name; DROP".into()),
        ..LocalClickHouseOptions::new(common::test_data_dir("bad"))
    };
    let err = LocalClickHouse::start(opts).await.unwrap_err();
    assert!(
        matches!(err, LocalClickHouseError::InvalidOption(_)),
        "{err}"
    );
}
