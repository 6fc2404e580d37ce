//! Push sync into a real ClickHouse: loads, incremental cursor, tombstones, and HTTPS with a
//! locally generated CA in front of the test server.
use crate::common;

use b24ch::clickhouse::apply::{self, Mode};
use b24ch::clickhouse::plan::selected_columns;
use b24ch::clickhouse::{ClickHouseError, Connection};
use b24ch::config::{Config, DeleteGuard, from_toml_str};
use b24ch::encode::Format;
use b24ch::pipeline::EntityJob;
use b24ch::portal;
use b24ch::sync::{self, Progress};
use bitrix24_emulator::{DataSizes, PortalConfig};
use std::sync::Arc;

fn config(url: &str, db: &str, extra: &str) -> Config {
    from_toml_str(&format!(
        "[clickhouse]\nurl = \"{url}\"\ndatabase = \"{db}\"\n{extra}"
    ))
    .unwrap()
}

fn demo(deals: u64) -> PortalConfig {
    PortalConfig {
        sizes: DataSizes {
            deals,
            ..DataSizes::default()
        },
        time_scale: 200.0,
        ..PortalConfig::default()
    }
}

async fn ids_in(ch: &local_clickhouse::LocalClickHouse, db: &str, table: &str) -> Vec<u64> {
    ch.query(&format!(
        "SELECT ID FROM `{db}`.`{table}_current` ORDER BY ID"
    ))
    .await
    .unwrap()
    .lines()
    .map(|l| l.parse().unwrap())
    .collect()
}

fn truth_ids(truth: &[serde_json::Map<String, serde_json::Value>]) -> Vec<u64> {
    let mut ids: Vec<u64> = truth.iter().map(|r| r["ID"].as_u64().unwrap()).collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_sync_loads_incrementally_and_tracks_deletions() {
    let (ch, db) = common::fresh_database("sync").await;
    let mut cfg = config(&ch.http_url(), &db, "");
    let conn_portal = portal::connect(&mut cfg, demo(600)).await.unwrap();
    let control = conn_portal.demo.as_ref().unwrap().control().clone();
    let client = conn_portal.client.clone();
    let conn = Connection::connect(&cfg.clickhouse).unwrap();
    let t = apply::target(&cfg);

    let catalog = b24ch::catalog::discover(&client).await.unwrap();
    let report = apply::apply_mode(&conn, &cfg, &catalog, Format::Parquet, Mode::Push)
        .await
        .unwrap();
    assert!(report.created_tables.contains(&"crm_deal".to_string()));
    // Push mode creates no refreshable views (ClickHouse cannot reach b24ch).
    let views = ch
        .query(&format!(
            "SELECT count() FROM system.tables WHERE database = '{db}' AND name LIKE '%\\_load'"
        ))
        .await
        .unwrap();
    assert_eq!(views.trim(), "0");

    let deal = catalog.entity("crm_deal").unwrap().clone();
    let columns = selected_columns(&deal, &cfg.entity("crm_deal"));
    let job = Arc::new(EntityJob::new(deal, columns).unwrap());
    let first = sync::load(
        &conn,
        &t,
        client.clone(),
        job.clone(),
        &Progress::hidden("crm_deal"),
    )
    .await
    .unwrap();
    assert_eq!(first.rows, 600);
    assert!(first.since.is_none(), "first load is full");
    let truth = control.ground_truth("deal").unwrap();
    assert_eq!(ids_in(ch, &db, "crm_deal").await, truth_ids(&truth));

    // The full load's listing stands in for the ID scan: no request, and only rows written
    // before that load started are compared. A row that no listing has, written long ago, is
    // gone; one another writer added after the load started is kept.
    let listing = first
        .listing
        .as_ref()
        .expect("a full load keeps its listing");
    ch.query(&format!(
        "INSERT INTO `{db}`.crm_deal (ID, TITLE, _version, _is_deleted) VALUES          (900001, 'stale', 1, 0), (900002, 'meanwhile', toUnixTimestamp64Milli(now64(3)), 0)"
    ))
    .await
    .unwrap();
    control.reset_counters();
    let gone = sync::reconcile_listed(&conn, &t, &job, listing, 0, DeleteGuard::DEFAULT)
        .await
        .unwrap();
    assert_eq!(gone, 1);
    assert_eq!(control.counters().requests_total, 0);
    let mut expected = truth_ids(&truth);
    expected.push(900002);
    assert_eq!(ids_in(ch, &db, "crm_deal").await, expected);
    ch.query(&format!(
        "INSERT INTO `{db}`.crm_deal (ID, _version, _is_deleted) VALUES          (900002, toUnixTimestamp64Milli(now64(3)) + 1, 1)"
    ))
    .await
    .unwrap();

    // Second load: incremental from the watermark, only the modified rows come back.
    let mut set = serde_json::Map::new();
    set.insert("TITLE".into(), serde_json::json!("Изменено 'push' 🚀"));
    control.modify_rows("deal", &[5, 77], &set, None).unwrap();
    let second = sync::load(
        &conn,
        &t,
        client.clone(),
        job.clone(),
        &Progress::hidden("crm_deal"),
    )
    .await
    .unwrap();
    assert!(second.since.is_some(), "second load is incremental");
    assert!(
        second.listing.is_none(),
        "an incremental load lists only changes"
    );
    assert!(
        second.rows >= 2 && second.rows < 50,
        "incremental load listed {} rows",
        second.rows
    );
    let title = ch
        .query(&format!(
            "SELECT TITLE FROM `{db}`.crm_deal_current WHERE ID = 77"
        ))
        .await
        .unwrap();
    assert_eq!(title.trim(), "Изменено \\'push\\' 🚀");

    // Deletions: rows loaded long enough ago are tombstoned after a complete ID listing.
    control.delete_rows("deal", &[3, 4]).unwrap();
    let gone = sync::reconcile(&conn, &t, client.clone(), job.clone(), 0)
        .await
        .unwrap();
    assert_eq!(gone, 2);
    let truth = control.ground_truth("deal").unwrap();
    assert_eq!(ids_in(ch, &db, "crm_deal").await, truth_ids(&truth));

    // A failing ID listing writes no tombstone.
    control.delete_rows("deal", &[10]).unwrap();
    control.inject_fault(bitrix24_emulator::Fault {
        kind: bitrix24_emulator::FaultKind::InternalError,
        method: None,
        probability: Some(1.0),
        remaining: Some(100),
    });
    assert!(
        sync::reconcile(&conn, &t, client.clone(), job.clone(), 0)
            .await
            .is_err()
    );
    control.clear_faults();
    assert!(
        ids_in(ch, &db, "crm_deal").await.contains(&10),
        "no tombstone from a failed listing"
    );
}

/// A TLS front for the test ClickHouse with a certificate from a CA made here.
async fn tls_front(upstream_port: u16) -> (u16, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
    let key = KeyPair::generate().unwrap();
    let params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();

    let server_cfg = rustls::ServerConfig::builder_with_provider(
        rustls::crypto::aws_lc_rs::default_provider().into(),
    )
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.der().clone()],
        rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_cfg));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut up) = tokio::net::TcpStream::connect(("127.0.0.1", upstream_port)).await
                else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut up).await;
            });
        }
    });
    // A second, unrelated CA for the negative case.
    let other_key = KeyPair::generate().unwrap();
    let mut other = CertificateParams::new(Vec::<String>::new()).unwrap();
    other.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    (port, ca.pem(), other.self_signed(&other_key).unwrap().pem())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_a_custom_ca_certificate() {
    let (ch, db) = common::fresh_database("tls").await;
    let (port, ca_pem, other_pem) = tls_front(ch.http_port()).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    let other = dir.path().join("other.pem");
    std::fs::write(&ca, ca_pem).unwrap();
    std::fs::write(&other, other_pem).unwrap();
    let url = format!("https://localhost:{port}");

    let cfg = config(&url, &db, &format!("ca_cert = \"{}\"\n", ca.display()));
    assert!(cfg.clickhouse.secure);
    let conn = Connection::connect(&cfg.clickhouse).unwrap();
    assert!(conn.version().await.unwrap().starts_with("26.9"));
    // Push sync over TLS: tables and a load.
    let mut cfg2 = cfg.clone();
    let portal = portal::connect(&mut cfg2, demo(120)).await.unwrap();
    let catalog = b24ch::catalog::discover(&portal.client).await.unwrap();
    apply::apply_mode(&conn, &cfg2, &catalog, Format::Parquet, Mode::Push)
        .await
        .unwrap();
    let deal = catalog.entity("crm_deal").unwrap().clone();
    let job = Arc::new(
        EntityJob::new(
            deal.clone(),
            selected_columns(&deal, &cfg2.entity("crm_deal")),
        )
        .unwrap(),
    );
    let r = sync::load(
        &conn,
        &apply::target(&cfg2),
        portal.client.clone(),
        job,
        &Progress::hidden("x"),
    )
    .await
    .unwrap();
    assert_eq!(r.rows, 120);
    assert_eq!(
        ch.query(&format!("SELECT count() FROM `{db}`.crm_deal_current"))
            .await
            .unwrap()
            .trim(),
        "120"
    );

    // The wrong CA is refused with a TLS error, not silently accepted.
    let bad = config(&url, &db, &format!("ca_cert = \"{}\"\n", other.display()));
    let err = Connection::connect(&bad.clickhouse)
        .unwrap()
        .version()
        .await
        .unwrap_err();
    assert!(matches!(err, ClickHouseError::Query(_)));
    assert!(
        err.to_string().contains("invalid peer certificate"),
        "{err}"
    );
    // A CA file that is not PEM gets a clear error naming the key.
    std::fs::write(&other, "not a certificate").unwrap();
    let e = Connection::connect(
        &config(&url, &db, &format!("ca_cert = \"{}\"\n", other.display())).clickhouse,
    )
    .err()
    .unwrap();
    assert!(e.to_string().contains("clickhouse.ca_cert"), "{e}");
}
