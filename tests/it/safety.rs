//! Issue 10: b24ch never destroys, hides or leaks data when the world surprises it.
//!
//! - a reconcile that would tombstone too many rows fails (pull view and push `sync`) until
//!   `allow_mass_delete` is set for the entity;
//! - `serve` follows a schema applied by another process (new multi-select field, new smart
//!   process) instead of answering with its old catalog;
//! - a field that leaves the portal pauses its entity's loads, and one failing entity does not
//!   stop `apply` for the others;
//! - no command but `demo`/`demo-portal` falls back to the embedded demo portal.
use crate::common;

use std::sync::Arc;
use std::time::Duration;

use b24ch::clickhouse::apply::{self, Mode};
use b24ch::clickhouse::plan::selected_columns;
use b24ch::clickhouse::{Connection, ddl};
use b24ch::config::{Config, from_toml_str};
use b24ch::encode::Format;
use b24ch::pipeline::EntityJob;
use b24ch::sync::{self, Progress};
use bitrix24_emulator::{PortalConfig, UserFieldSpec};
use common::pull::{Pull, TOKEN, sizes};
use common::truth;

/// Only deals are loaded (`extra` goes into `[entities.default]`).
const ONLY_DEALS: &str = "enabled = false\n[entities.crm_deal]\nenabled = true\n";

fn portal(deals: u64) -> PortalConfig {
    PortalConfig {
        sizes: sizes(deals),
        time_scale: 200.0,
        ..PortalConfig::default()
    }
}

/// The config `Pull::start` built, with `extra` appended (same database, proxy and token).
fn pull_config(p: &Pull, extra: &str) -> Config {
    let listen = p.config.proxy.listen;
    from_toml_str(&format!(
        "[clickhouse]\nurl = \"{}\"\ndatabase = \"{}\"\n\
         [proxy]\nlisten = \"{listen}\"\npublic_url = \"http://{listen}\"\ntoken = \"{TOKEN}\"\n\
         [entities.default]\nschedule = \"1 WEEK\"\nreconcile_schedule = \"1 WEEK\"\nreconcile_safety = \"1 SECOND\"\n{extra}",
        p.ch.http_url(),
        p.db
    ))
    .unwrap()
}

async fn count(p: &Pull, sql: &str) -> u64 {
    p.q(sql).await.parse().unwrap()
}

/// Waits until rows loaded so far are older than the 1-second reconcile safety window.
async fn past_safety_window() {
    tokio::time::sleep(Duration::from_millis(1_100)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_view_refuses_a_mass_delete_until_allowed() {
    let p = Pull::start("safety_mass", portal(400), Format::Parquet, ONLY_DEALS).await;
    p.autopilot().await;
    p.wait_all().await;
    let db = p.db.clone();
    assert_eq!(
        count(&p, &format!("SELECT count() FROM `{db}`.crm_deal_current")).await,
        400
    );
    let tombstones = format!("SELECT count() FROM `{db}`.crm_deal WHERE _is_deleted = 1");

    // A few deletions are ordinary.
    let c = p.control().clone();
    c.delete_rows("deal", &[1, 2, 3]).unwrap();
    past_safety_window().await;
    p.refresh("crm_deal_reconcile").await.unwrap();
    assert_eq!(count(&p, &tombstones).await, 3);

    // 300 of the remaining 397 vanish from the listing at once (lost CRM rights, a changed
    // filter and a real mass deletion look the same from here): the refresh fails, naming
    // the counts and the setting, and writes nothing.
    let ids: Vec<u64> = (4..=303).collect();
    assert_eq!(c.delete_rows("deal", &ids).unwrap(), 300);
    let err = p.refresh("crm_deal_reconcile").await.unwrap_err();
    assert!(
        err.contains("refusing to tombstone 300 of 397 live rows of crm_deal"),
        "{err}"
    );
    assert!(err.contains("allow_mass_delete"), "{err}");
    assert_eq!(count(&p, &tombstones).await, 3);

    // A generous share lets that pass (the recreated view refreshes at once)…
    let generous = pull_config(
        &p,
        "[entities.crm_deal]\nenabled = true\nmax_delete_percent = 100\nmax_delete_rows = 1000000\n",
    );
    apply::apply(&p.conn, &generous, &p.catalog(), Format::Parquet)
        .await
        .unwrap();
    p.wait_view("crm_deal_reconcile").await.unwrap();
    assert_eq!(count(&p, &tombstones).await, 303);
    // …but every row gone (an empty listing) is still refused.
    c.delete_rows("deal", &(304..=400).collect::<Vec<_>>())
        .unwrap();
    let err = p.refresh("crm_deal_reconcile").await.unwrap_err();
    assert!(
        err.contains("refusing to tombstone 97 of 97 live rows"),
        "{err}"
    );
    assert_eq!(count(&p, &tombstones).await, 303);

    // The owner says the deletions are real: the next reconcile writes them.
    let allowed = pull_config(
        &p,
        "[entities.crm_deal]\nenabled = true\nallow_mass_delete = true\n",
    );
    let report = apply::apply(&p.conn, &allowed, &p.catalog(), Format::Parquet)
        .await
        .unwrap();
    assert!(
        report
            .recreated_views
            .contains(&"crm_deal_reconcile".to_string()),
        "{report:?}"
    );
    p.wait_view("crm_deal_reconcile").await.unwrap();
    assert_eq!(count(&p, &tombstones).await, 400);
    assert_eq!(
        count(&p, &format!("SELECT count() FROM `{db}`.crm_deal_current")).await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_reconcile_refuses_a_mass_delete_until_allowed() {
    let (ch, db) = common::fresh_database("safety_sync").await;
    let text = format!(
        "[clickhouse]\nurl = \"{}\"\ndatabase = \"{db}\"\n",
        ch.http_url()
    );
    let mut cfg = from_toml_str(&text).unwrap();
    let portal_conn = b24ch::portal::connect(&mut cfg, portal(300)).await.unwrap();
    let control = portal_conn.demo.as_ref().unwrap().control().clone();
    let client = portal_conn.client.clone();
    let conn = Connection::connect(&cfg.clickhouse).unwrap();
    let t = apply::target(&cfg);
    let catalog = b24ch::catalog::discover(&client).await.unwrap();
    apply::apply_mode(&conn, &cfg, &catalog, Format::Parquet, Mode::Push)
        .await
        .unwrap();
    let deal = catalog.entity("crm_deal").unwrap().clone();
    let columns = selected_columns(&deal, &cfg.entity("crm_deal"));
    let job = Arc::new(EntityJob::new(deal, columns).unwrap());
    sync::load(
        &conn,
        &t,
        client.clone(),
        job.clone(),
        &Progress::hidden("crm_deal"),
    )
    .await
    .unwrap();

    assert_eq!(
        control
            .delete_rows("deal", &(1..=250).collect::<Vec<_>>())
            .unwrap(),
        250
    );
    let guard = cfg.entity("crm_deal").delete_guard;
    let err = sync::reconcile_guarded(&conn, &t, client.clone(), job.clone(), 0, guard)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("refusing to tombstone 250 of 300 live rows of crm_deal"),
        "{err}"
    );
    assert!(err.contains("allow_mass_delete"), "{err}");
    let tombstones = format!("SELECT count() FROM `{db}`.crm_deal WHERE _is_deleted = 1");
    assert_eq!(ch.query(&tombstones).await.unwrap().trim(), "0");

    let allowed = from_toml_str(&format!(
        "{text}[entities.crm_deal]\nallow_mass_delete = true\n"
    ))
    .unwrap();
    let n = sync::reconcile_guarded(
        &conn,
        &t,
        client,
        job,
        0,
        allowed.entity("crm_deal").delete_guard,
    )
    .await
    .unwrap();
    assert_eq!(n, 250);
    assert_eq!(ch.query(&tombstones).await.unwrap().trim(), "250");
}

/// `b24ch apply` as a separate process, on the test's demo portal, ClickHouse and proxy.
async fn apply_in_another_process(p: &Pull, dir: &std::path::Path) {
    let webhook = p.portal.demo.as_ref().unwrap().webhook_url();
    let listen = p.config.proxy.listen;
    let path = dir.join("b24ch.toml");
    std::fs::write(
        &path,
        format!(
            "state_dir = {:?}\n[portal]\nwebhook_url = {webhook:?}\n\
             [clickhouse]\nurl = \"{}\"\ndatabase = \"{}\"\n\
             [proxy]\nlisten = \"{listen}\"\npublic_url = \"http://{listen}\"\ntoken = \"{TOKEN}\"\n\
             [entities.default]\nschedule = \"1 WEEK\"\nreconcile_schedule = \"1 WEEK\"\nreconcile_safety = \"1 SECOND\"\n",
            dir.join("state"),
            p.ch.http_url(),
            p.db
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_b24ch"))
        .arg("--config")
        .arg(&path)
        .arg("apply")
        .env_remove("B24CH_CONFIG")
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "apply failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_follows_a_schema_applied_by_another_process() {
    let p = Pull::start("safety_schema", portal(600), Format::Parquet, "").await;
    p.autopilot().await;
    p.wait_all().await;
    let old_catalog = p.catalog();

    // The portal gains a multi-select field (filled on existing deals) and a smart process;
    // `apply` runs in another process, `serve` keeps running with the catalog it had.
    let c = p.control().clone();
    let uf = c
        .add_user_field(
            "deal",
            &UserFieldSpec {
                code: Some("UF_CRM_SAFETY_TAGS".into()),
                user_type: "enumeration".into(),
                multiple: true,
                label: Some("Теги".into()),
                fill: true,
            },
        )
        .unwrap();
    let etid = c.add_smart_process(None, "Новый процесс", 40).unwrap();
    let dir = tempfile::tempdir().unwrap();
    apply_in_another_process(&p, dir.path()).await;

    // The views apply created refresh at once; serve discovers the new catalog instead of
    // answering with the old column set (which ClickHouse would fill with `[]`).
    let sp = format!("crm_dynamic_{etid}");
    for v in [
        "crm_deal_load".to_string(),
        format!("{sp}_load"),
        format!("{sp}_reconcile"),
    ] {
        if let Err(e) = p.wait_view(&v).await {
            panic!("{v} failed: {e}");
        }
    }
    assert!(!Arc::ptr_eq(&old_catalog, &p.catalog()));
    let filled = count(
        &p,
        &format!(
            "SELECT countIf(notEmpty(`{uf}`)) FROM `{}`.crm_deal_current",
            p.db
        ),
    )
    .await;
    assert!(filled > 0, "the new multi-select field arrived empty");
    assert_eq!(
        count(
            &p,
            &format!("SELECT count() FROM `{}`.`{sp}_current`", p.db)
        )
        .await,
        40
    );
    // One more cycle loads the reference tables (the new pipeline and stages); the deals
    // loaded above are behind the watermark now, so they were right the first time or never.
    p.cycle().await;
    truth::assert_equal(&p.mismatches().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_answers_409_when_the_column_set_still_differs() {
    let p = Pull::start("safety_409", portal(100), Format::Parquet, ONLY_DEALS).await;
    p.autopilot().await;
    p.wait_all().await;
    let deal = p.catalog().entity("crm_deal").unwrap().clone();
    let have = p.serve().state.fingerprint(&deal);
    let client = reqwest::Client::new();
    let get = |schema: &str| {
        client
            .get(format!(
                "{}/v1/entities/crm_deal/rows?format=JSONEachRow&schema={schema}",
                p.serve().url()
            ))
            .bearer_auth(TOKEN)
            .send()
    };
    let ok = get(&have).await.unwrap();
    assert_eq!(ok.status(), 200);
    let stale = get("00000000deadbeef").await.unwrap();
    assert_eq!(stale.status(), 409);
    let text = stale.text().await.unwrap();
    assert!(
        text.contains("00000000deadbeef") && text.contains(&have),
        "{text}"
    );
    // The fingerprint in the view's URL is the one serve computes.
    let plans = apply::plans(&p.config, &p.catalog(), Format::Parquet);
    let plan = plans.iter().find(|pl| pl.entity == "crm_deal").unwrap();
    assert_eq!(ddl::schema_fingerprint(&plan.columns), have);
    let t = apply::target(&p.config);
    let endpoints = ddl::endpoints(&t, &apply::endpoint(&p.config), plan);
    assert!(endpoints[0].sql.contains(&format!("&schema={have}")));

    // The token stays with the views: the endpoint's URL and header cannot be overridden,
    // and no global function builds the URL.
    let coll = t.collection_name("crm_deal", "rows");
    for over in [
        "url = 'http://127.0.0.1:9/steal'",
        "headers('Authorization' = 'x'), url = 'http://127.0.0.1:9/steal'",
    ] {
        let err = p
            .ch
            .query(&format!(
                "SELECT count() FROM url(`{coll}`, {over}, format = 'JSONEachRow', structure = 'ID Int64')"
            ))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("Override not allowed"), "{err}");
    }
    assert_eq!(
        count(
            &p,
            "SELECT count() FROM system.functions WHERE name LIKE 'b24ch%'"
        )
        .await,
        0
    );
    let ddl_sql: String = ddl::entity(&t, plan).into_iter().map(|s| s.sql).collect();
    assert!(!ddl_sql.contains(TOKEN), "the token is spelled in a view");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vanished_field_pauses_its_entity_and_a_failing_entity_does_not_stop_apply() {
    let p = Pull::start("safety_vanish", portal(200), Format::Parquet, "").await;
    let c = p.control().clone();
    let spec = |code: &str| UserFieldSpec {
        code: Some(code.into()),
        user_type: "string".into(),
        multiple: false,
        label: None,
        fill: true,
    };
    let gone = c
        .add_user_field("deal", &spec("UF_CRM_SAFETY_GONE"))
        .unwrap();
    p.autopilot().await;
    p.wait_all().await;
    let db = p.db.clone();

    // The field is deleted (or hidden from the webhook user); meanwhile a lead field is
    // added and a new smart process cannot be applied (its table name is taken by a view).
    c.remove_user_field("deal", &gone).unwrap();
    let lead_uf = c
        .add_user_field("lead", &spec("UF_CRM_SAFETY_NEW"))
        .unwrap();
    let etid = c.add_smart_process(None, "Сломанный", 10).unwrap();
    let broken = format!("crm_dynamic_{etid}");
    p.q(&format!("CREATE VIEW `{db}`.`{broken}` AS SELECT 1 AS x"))
        .await;
    let report = p.autopilot().await;
    assert_eq!(
        report.vanished_fields,
        vec![format!("crm_deal.{gone}")],
        "{report:?}"
    );
    assert!(
        report
            .failed_entities
            .iter()
            .any(|f| f.starts_with(&format!("{broken}:"))),
        "{report:?}"
    );
    assert!(
        report
            .added_columns
            .contains(&format!("crm_lead.{lead_uf}")),
        "{report:?}"
    );
    assert!(report.paused_entities().contains(&"crm_deal".to_string()));
    let problems = report.problems().join("\n");
    assert!(problems.contains(&format!("crm_deal.{gone}")), "{problems}");
    assert!(problems.contains(apply::RETIRED), "{problems}");
    let views = format!(
        "SELECT count() FROM system.tables WHERE database = '{db}' AND name = 'crm_deal_load'"
    );
    assert_eq!(count(&p, &views).await, 0, "crm_deal loads are not paused");
    // The column keeps what was loaded.
    assert!(
        count(
            &p,
            &format!("SELECT countIf(`{gone}` IS NOT NULL) FROM `{db}`.crm_deal_current")
        )
        .await
            > 0
    );

    // The owner accepts the loss for this column: loads resume.
    p.q(&format!(
        "ALTER TABLE `{db}`.crm_deal COMMENT COLUMN `{gone}` '{}'",
        apply::RETIRED
    ))
    .await;
    p.q(&format!("DROP VIEW `{db}`.`{broken}`")).await;
    let report = p.autopilot().await;
    assert!(report.vanished_fields.is_empty(), "{report:?}");
    assert!(report.failed_entities.is_empty(), "{report:?}");
    assert_eq!(count(&p, &views).await, 1);
    p.wait_view("crm_deal_load").await.unwrap();
}

/// Runs the binary in an empty directory without `B24CH_CONFIG`; kills it after 60 s.
fn run_cli(dir: &std::path::Path, args: &[&str]) -> (Option<i32>, String) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_b24ch"))
        .args(args)
        .current_dir(dir)
        .env_remove("B24CH_CONFIG")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            return (
                None,
                format!("{args:?} kept running (it used the demo portal)"),
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout),
    )
}

#[test]
fn only_demo_commands_use_the_embedded_portal() {
    let dir = tempfile::tempdir().unwrap();
    let commands: [&[&str]; 6] = [
        &["sync", "crm_deal"],
        &["serve"],
        &["apply"],
        &["sql"],
        &["check"],
        &["exec", "rows", "crm_deal"],
    ];
    for args in commands {
        let (code, out) = run_cli(dir.path(), args);
        assert_eq!(code, Some(2), "{args:?}: {out}");
        assert!(out.contains("needs a config"), "{args:?}: {out}");
        assert!(out.contains("b24ch demo"), "{args:?}: {out}");
    }
    // A config that names no portal is refused too (./b24ch.toml is found by itself).
    std::fs::write(
        dir.path().join("b24ch.toml"),
        "[clickhouse]\nurl = \"http://127.0.0.1:9\"\n",
    )
    .unwrap();
    for args in commands {
        let (code, out) = run_cli(dir.path(), args);
        assert_eq!(code, Some(2), "{args:?}: {out}");
        assert!(out.contains("configures no portal"), "{args:?}: {out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_running_load_per_entity_the_second_gets_503_with_retry_after() {
    let mut cfg = from_toml_str(&format!(
        "[proxy]\nlisten = \"127.0.0.1:0\"\ntoken = \"{TOKEN}\"\n"
    ))
    .unwrap();
    let portal = b24ch::portal::connect(&mut cfg, portal(300)).await.unwrap();
    let s = b24ch::commands::serve::start(Arc::new(cfg), &portal)
        .await
        .unwrap();
    // The load's first batch answers slowly, so it surely runs while the second arrives.
    portal
        .demo
        .as_ref()
        .unwrap()
        .control()
        .inject_fault(bitrix24_emulator::Fault {
            kind: bitrix24_emulator::FaultKind::Slow { delay_ms: 2_000 },
            method: Some("batch".into()),
            probability: None,
            remaining: Some(1),
        });
    let http = reqwest::Client::new();
    let url = format!("{}/v1/entities/crm_deal/rows?format=JSONEachRow", s.url());
    let first = tokio::spawn(http.get(&url).bearer_auth(TOKEN).send());
    let started = || {
        s.state
            .stats
            .entities()
            .iter()
            .any(|e| e.entity == "crm_deal" && e.last_started_ms.is_some())
    };
    common::pull::wait_until(
        "the first load started",
        Duration::from_secs(30),
        || async { started() },
    )
    .await;
    let second = http.get(&url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(second.status(), 503);
    assert!(second.headers().get("retry-after").is_some());
    let text = second.text().await.unwrap();
    assert!(text.contains("already running"), "{text}");
    // Another entity is not held up, and the first load completes.
    let lead = http
        .get(format!(
            "{}/v1/entities/crm_lead/rows?format=JSONEachRow",
            s.url()
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(lead.status(), 200);
    let first = first.await.unwrap().unwrap();
    assert_eq!(first.status(), 200);
    assert!(first.text().await.unwrap().lines().count() >= 300);
    // Its slot is free again.
    let third = http.get(&url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(third.status(), 200);
    third.text().await.unwrap();
}

/// A shipped wrapper with the binary replaced by `echo`: what it would run, or its refusal.
fn wrapper(name: &str, args: &[&str]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(format!("clickhouse_config/{name}.sh")),
    )
    .unwrap()
    .replace("/usr/local/bin/b24ch", "/bin/echo");
    std::fs::write(&path, text).unwrap();
    let out = std::process::Command::new("sh")
        .arg(&path)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn each_wrapper_fixes_its_subcommand_and_checks_its_arguments() {
    let cfg = "--config /etc/b24ch/b24ch.toml";
    let ok = [
        (
            "b24ch-rows",
            &["crm_deal", "--format", "Parquet"][..],
            "exec rows crm_deal --format Parquet",
        ),
        (
            "b24ch-rows",
            &[
                "crm_deal",
                "--modified-since",
                "2025-01-01T00:00:00Z",
                "--with-watermark",
            ][..],
            "exec rows crm_deal --modified-since 2025-01-01T00:00:00Z --with-watermark",
        ),
        (
            "b24ch-call",
            &["--format", "TabSeparated"][..],
            "exec udf-call --format TabSeparated",
        ),
        (
            "b24ch-dict",
            &["crm_status", "--keys", "--key", "ENTITY_ID,STATUS_ID"][..],
            "exec dict crm_status --keys --key ENTITY_ID,STATUS_ID",
        ),
    ];
    for (name, args, runs) in ok {
        let (code, out) = wrapper(name, args);
        assert_eq!(code, Some(0), "{name} {args:?}: {out}");
        assert_eq!(out.trim(), format!("{cfg} {runs}"), "{name} {args:?}");
    }
    let refused = [
        ("b24ch-call", &["--allow-write"][..]),
        (
            "b24ch-call",
            &["--format", "TabSeparated", "--config", "/tmp/evil.toml"][..],
        ),
        ("b24ch-rows", &["crm_deal", "--config=/tmp/evil.toml"][..]),
        ("b24ch-rows", &["crm_deal", "crm_lead"][..]),
        ("b24ch-rows", &["crm_deal;id"][..]),
        ("b24ch-rows", &["crm_deal", "--format"][..]),
        ("b24ch-rows", &["crm_deal", "--format", "--allow-write"][..]),
        ("b24ch-dict", &["user", "udf-call"][..]),
        ("b24ch-dict", &["user", "-c", "/tmp/x"][..]),
    ];
    for (name, args) in refused {
        let (code, out) = wrapper(name, args);
        assert_eq!(code, Some(2), "{name} {args:?} was not refused: {out}");
        assert!(!out.contains("exec "), "{name} {args:?} ran: {out}");
    }
}

#[test]
fn no_colour_codes_when_the_log_is_not_a_terminal() {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_b24ch"))
        .args(["demo-portal", "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let read = std::io::BufReader::new(child.stderr.take().unwrap()).read_line(&mut line);
    let _ = child.kill();
    let _ = child.wait();
    read.unwrap();
    assert!(line.contains("demo portal started"), "{line:?}");
    assert!(
        !line.contains('\u{1b}'),
        "ANSI codes in a piped log: {line:?}"
    );
}
