//! Issue 10, item 8: the `enum_labels` dictionary reads its table as a dedicated read-only user,
//! and no password is ever written into its DDL.
//!
//! - with `clickhouse.dictionary_user` (a passwordless user that logs in only from the
//!   server's host, readonly, `SELECT` on `enum_labels` alone — declared by the test server's
//!   launcher, as clickhouse-local cannot `CREATE USER`), the dictionary answers `dictGet`, its
//!   DDL names the user and no password, and that user can read nothing else and write nothing;
//! - where b24ch cannot create its own such user, `apply` writes the labels to their table,
//!   creates no dictionary, and says why and what to do — it never falls back to its own
//!   password;
//! - the script `b24ch sql` prints creates that user with exactly those limits.
use crate::common;
use b24ch::catalog::{Catalog, discover};
use b24ch::clickhouse::Connection;
use b24ch::clickhouse::apply::{self, Mode};
use b24ch::clickhouse::ddl;
use b24ch::clickhouse::quote::literal;
use b24ch::config::from_toml_str;
use b24ch::encode::Format;
use b24ch::portal;
use bitrix24_emulator::{DataSizes, PortalConfig};
use local_clickhouse::{LocalClickHouse, LocalClickHouseOptions};

const ADMIN_PASSWORD: &str = "admin-pw-secret-4711";
const DB: &str = "dictuser";
const READER: &str = "b24ch_dict";

fn demo() -> PortalConfig {
    PortalConfig {
        sizes: DataSizes {
            deals: 40,
            ..DataSizes::default()
        },
        time_scale: 100.0,
        ..PortalConfig::default()
    }
}

/// The first enumeration option of the catalog: (entity, field, id, label).
fn some_label(catalog: &Catalog) -> (String, String, u64, String) {
    catalog
        .entities
        .iter()
        .flat_map(|e| {
            e.fields.iter().flat_map(move |f| {
                f.options
                    .iter()
                    .map(move |o| (e.name.clone(), f.code.clone(), o.id, o.value.clone()))
            })
        })
        .next()
        .expect("the demo portal has enumeration fields")
}

/// `sql` run over HTTP as `user` without a password: the status and the body.
async fn as_user(ch: &LocalClickHouse, user: &str, sql: &str) -> (u16, String) {
    let r = reqwest::Client::new()
        .post(ch.http_url())
        .header("X-ClickHouse-User", user)
        .body(sql.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_label_dictionary_reads_as_a_passwordless_read_only_user() {
    let ch = LocalClickHouse::start(LocalClickHouseOptions {
        database: Some(DB.into()),
        user: Some(("b24ch_admin".into(), ADMIN_PASSWORD.into())),
        readonly_user: Some((READER.into(), format!("{DB}.enum_labels"))),
        ..LocalClickHouseOptions::new(common::test_data_dir("dictuser"))
    })
    .await
    .unwrap();
    let mut config = from_toml_str(&format!(
        "[clickhouse]\nurl = \"{}\"\ndatabase = \"{DB}\"\nuser = \"b24ch_admin\"\npassword = \"{ADMIN_PASSWORD}\"\ndictionary_user = \"{READER}\"\n",
        ch.http_url()
    ))
    .unwrap();
    let p = portal::connect(&mut config, demo()).await.unwrap();
    let catalog = discover(&p.client).await.unwrap();
    let conn = Connection::connect(&config.clickhouse).unwrap();
    let report = apply::apply_mode(&conn, &config, &catalog, Format::Parquet, Mode::Push)
        .await
        .unwrap();
    assert_eq!(report.dictionary_skipped, None);
    assert!(report.enum_options > 0);

    // The DDL names the reader and carries no password.
    let ddl = ch
        .query(&format!(
            "SHOW CREATE DICTIONARY `{DB}`.enum_labels_dict FORMAT TSVRaw"
        ))
        .await
        .unwrap();
    assert!(ddl.contains(&format!("USER '{READER}'")), "{ddl}");
    assert!(!ddl.to_uppercase().contains("PASSWORD"), "{ddl}");
    assert!(!ddl.contains(ADMIN_PASSWORD), "{ddl}");

    // The dictionary works.
    let (entity, field, id, label) = some_label(&catalog);
    let got = ch
        .query(&format!(
            "SELECT dictGet('{DB}.enum_labels_dict', 'label', ({}, {}, toUInt64({id})))",
            literal(&entity),
            literal(&field)
        ))
        .await
        .unwrap();
    assert_eq!(got.trim_end_matches('\n'), label);

    // The reader reads the labels and nothing else, and writes nothing.
    let (status, count) = as_user(
        &ch,
        READER,
        &format!("SELECT count() FROM `{DB}`.enum_labels"),
    )
    .await;
    assert_eq!(status, 200, "{count}");
    assert_eq!(count.trim(), report.enum_options.to_string());
    let refused = [
        format!("SELECT count() FROM `{DB}`.crm_deal"),
        format!("SELECT count() FROM `{DB}`.user"),
        format!("INSERT INTO `{DB}`.enum_labels VALUES ('crm_deal', 'X', 1, 'forged', 99)"),
        format!("ALTER TABLE `{DB}`.enum_labels DELETE WHERE 1"),
        format!("CREATE TABLE `{DB}`.evil (x UInt8) ENGINE = Memory"),
        format!("SELECT count() FROM `{DB}`.enum_labels SETTINGS readonly = 0"),
        format!("DROP DICTIONARY `{DB}`.enum_labels_dict"),
    ];
    for sql in refused {
        let (status, body) = as_user(&ch, READER, &sql).await;
        assert_ne!(
            status, 200,
            "the dictionary's user may not run: {sql}\n{body}"
        );
        assert!(
            body.contains("ACCESS_DENIED")
                || body.contains("READONLY")
                || body.contains("Not enough privileges")
                || body.contains("readonly"),
            "{sql}: {body}"
        );
    }
    // The forged label did not land.
    let labels = ch
        .query(&format!(
            "SELECT count() FROM `{DB}`.enum_labels WHERE label = 'forged'"
        ))
        .await
        .unwrap();
    assert_eq!(labels.trim(), "0");
    ch.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_creatable_user_the_labels_stay_in_their_table_and_no_dictionary_is_made() {
    let (ch, db) = common::fresh_database("dictnouser").await;
    let mut config = from_toml_str(&format!(
        "[clickhouse]\nurl = \"{}\"\ndatabase = \"{db}\"\n",
        ch.http_url()
    ))
    .unwrap();
    let p = portal::connect(&mut config, demo()).await.unwrap();
    let catalog = discover(&p.client).await.unwrap();
    let conn = Connection::connect(&config.clickhouse).unwrap();
    // clickhouse-local has no writable access storage: CREATE USER fails there, as it does
    // for a b24ch user without access management.
    let report = apply::apply_mode(&conn, &config, &catalog, Format::Parquet, Mode::Push)
        .await
        .unwrap();
    let why = report
        .dictionary_skipped
        .clone()
        .expect("the dictionary cannot be made here");
    assert!(
        why.contains(&format!("b24ch_dict_{db}")) && why.contains("clickhouse.dictionary_user"),
        "{why}"
    );
    assert!(
        report
            .changes()
            .iter()
            .any(|(_, c)| c.contains("not created"))
    );
    let labels = ch
        .query(&format!("SELECT count() FROM `{db}`.enum_labels"))
        .await
        .unwrap();
    assert_eq!(labels.trim(), report.enum_options.to_string());
    assert!(report.enum_options > 0);
    let dicts = ch
        .query(&format!(
            "SELECT count() FROM system.dictionaries WHERE database = '{db}'"
        ))
        .await
        .unwrap();
    assert_eq!(dicts.trim(), "0");

    // What a full ClickHouse server would run parses here too (with and without a cluster):
    // the failure above is the missing access storage, not the statements.
    assert!(
        why.contains("ACCESS_STORAGE_FOR_INSERTION_NOT_FOUND"),
        "{why}"
    );
    for cluster in [None, Some("main".to_string())] {
        let t = ddl::Target {
            database: db.clone(),
            cluster,
        };
        for s in ddl::dictionary_user(&t, "b24ch_dict_x") {
            let ast = ch.query(&format!("EXPLAIN AST {}", s.sql)).await;
            assert!(ast.is_ok(), "{}: {ast:?}", s.sql);
        }
    }
}

#[test]
fn the_printed_script_creates_a_local_read_only_user_and_no_password() {
    let config = from_toml_str(
        "[clickhouse]\ndatabase = \"b24\"\npassword = \"ch-password-secret-42\"\n[proxy]\ntoken = \"proxy-token-0123456789\"\n",
    )
    .unwrap();
    let script: Vec<String> = apply::script(&config, &Catalog::default(), Format::Parquet)
        .into_iter()
        .map(|s| s.sql)
        .collect();
    let all = script.join(";\n");
    assert!(!all.contains("ch-password-secret-42"), "{all}");
    assert!(!all.contains("PASSWORD"), "{all}");
    let user = script
        .iter()
        .find(|s| s.starts_with("CREATE USER"))
        .expect("the dictionary's user");
    assert_eq!(
        user,
        "CREATE USER IF NOT EXISTS `b24ch_dict_b24` IDENTIFIED WITH no_password HOST LOCAL SETTINGS readonly = 1 CONST"
    );
    let grants: Vec<&String> = script.iter().filter(|s| s.starts_with("GRANT")).collect();
    assert_eq!(
        grants,
        ["GRANT SELECT ON `b24`.`enum_labels` TO `b24ch_dict_b24`"]
    );
    let dict = script
        .iter()
        .find(|s| s.contains("CREATE OR REPLACE DICTIONARY"))
        .expect("the dictionary");
    assert!(dict.contains("USER 'b24ch_dict_b24'"), "{dict}");
}
