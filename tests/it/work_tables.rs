//! The second-wave tables outside CRM (issue #12): tasks, calls, workgroups. Cell by cell against the demo
//! portal through the pull path (serve, `_load`/`_reconcile` views) and the push path
//! (`sync`), before and after edits, additions, deletions and a new user field; and a webhook
//! without the `task`, `telephony` or `sonet_group` scope gets those tables reported
//! unavailable with the scope to add, the rest loaded.
use crate::common;

use std::sync::Arc;

use b24ch::catalog::{Catalog, UnavailableReason};
use b24ch::clickhouse::Connection;
use b24ch::clickhouse::apply::{self, Mode};
use b24ch::clickhouse::plan::selected_columns;
use b24ch::config::{Config, from_toml_str};
use b24ch::encode::Format;
use b24ch::pipeline::EntityJob;
use b24ch::portal;
use b24ch::sync::{self, Progress};
use bitrix24_emulator::{DataSizes, PortalConfig, PortalControl, UserFieldSpec};
use common::pull::Pull;
use common::truth;
use serde_json::{Map, json};

/// The entities of this file.
const WORK: &[&str] = &[
    "task",
    "task_elapsed_time",
    "task_stage",
    "telephony_call",
    "workgroup",
];

/// A small portal: a few CRM rows, 230 tasks (five 50-row pages).
fn portal_cfg() -> PortalConfig {
    PortalConfig {
        sizes: DataSizes {
            deals: 40,
            leads: 20,
            contacts: 30,
            companies: 10,
            activities: 20,
            tasks: 230,
            task_elapsed: 180,
            calls: 260,
            workgroups: 12,
            smart_processes: Vec::new(),
            ..DataSizes::default()
        },
        time_scale: 200.0,
        ..PortalConfig::default()
    }
}

/// Edits, additions, deletions and a new user field, on every table of this file.
fn change_portal(c: &PortalControl) -> String {
    let mut set = Map::new();
    set.insert("TITLE".into(), json!("Изменено \"task\" 'q' \\ 🚀"));
    set.insert("STATUS".into(), json!(5));
    set.insert("AUDITORS".into(), json!([1, 2, 3]));
    set.insert("UF_CRM_TASK".into(), json!(["D_1", "CO_2"]));
    set.insert("DEADLINE".into(), json!(null));
    assert_eq!(c.modify_rows("task", &[3, 77, 150], &set, None).unwrap(), 3);
    assert_eq!(c.delete_rows("task", &[5, 100, 229]).unwrap(), 3);
    assert_eq!(c.add_rows("task", 60).unwrap().len(), 60);
    // Time records have no modification time: edits are found by loading them whole.
    let mut time = Map::new();
    time.insert("SECONDS".into(), json!(7_200));
    time.insert("COMMENT_TEXT".into(), json!("исправлено <b>"));
    assert_eq!(
        c.modify_rows("task_elapsed_time", &[1, 60], &time, None)
            .unwrap(),
        2
    );
    assert_eq!(c.delete_rows("task_elapsed_time", &[2, 170]).unwrap(), 2);
    assert_eq!(c.add_rows("task_elapsed_time", 30).unwrap().len(), 30);
    // Call records are append-only: new ones (dated an hour back, when the call started) and
    // deleted ones.
    assert_eq!(c.delete_rows("telephony_call", &[1, 130, 260]).unwrap(), 3);
    assert_eq!(c.add_rows("telephony_call", 40).unwrap().len(), 40);
    let mut group = Map::new();
    group.insert("NAME".into(), json!("Архив «Q3» \"old\""));
    group.insert("CLOSED".into(), json!(true));
    group.insert("IMAGE".into(), json!(null));
    assert_eq!(
        c.modify_rows("workgroup", &[2, 7], &group, None).unwrap(),
        2
    );
    assert_eq!(c.delete_rows("workgroup", &[4]).unwrap(), 1);
    // Kanban stages: renamed, one removed, and a removed group's stages are gone with it.
    let mut stage = Map::new();
    stage.insert("TITLE".into(), json!("Переименовано 'x'"));
    assert_eq!(
        c.modify_rows("task_stage", &[1, 6], &stage, None).unwrap(),
        2
    );
    assert_eq!(c.delete_rows("task_stage", &[2]).unwrap(), 1);
    assert_eq!(c.add_rows("workgroup", 3).unwrap().len(), 3);
    c.add_user_field(
        "task",
        &UserFieldSpec {
            code: Some("UF_AUTO_777000111222".into()),
            user_type: "enumeration".into(),
            multiple: false,
            label: Some("Новое поле".into()),
            fill: true,
        },
    )
    .unwrap()
}

async fn assert_work_equal(
    ch: &local_clickhouse::LocalClickHouse,
    db: &str,
    c: &PortalControl,
    catalog: &Catalog,
) {
    let enabled: Vec<String> = WORK.iter().map(|s| s.to_string()).collect();
    let mismatches = truth::compare_all(ch, db, c, catalog, &enabled).await;
    truth::assert_equal(&mismatches);
    for e in WORK {
        let n = ch
            .query(&format!("SELECT count() FROM `{db}`.`{e}_current`"))
            .await
            .unwrap();
        assert_ne!(n.trim(), "0", "{e} is empty");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_views_equal_the_portal_before_and_after_changes() {
    let p = Pull::start("work_pull", portal_cfg(), Format::Parquet, "").await;
    p.autopilot().await;
    for e in WORK {
        assert!(p.entities().contains(&e.to_string()), "{e} not planned");
    }
    p.wait_all().await;
    assert_work_equal(p.ch, &p.db, p.control(), &p.catalog()).await;
    let uf = change_portal(p.control());
    let report = p.autopilot().await;
    assert!(
        report.added_columns.contains(&format!("task.{uf}")),
        "{report:?}"
    );
    p.cycle().await;
    assert_work_equal(p.ch, &p.db, p.control(), &p.catalog()).await;
    // The second loads were incremental: two watermarks each (time records and stages have no
    // cursor).
    for e in WORK
        .iter()
        .filter(|e| !["task_elapsed_time", "task_stage"].contains(e))
    {
        assert_eq!(p.watermarks(e).await, 2, "{e}");
    }
}

/// One `b24ch sync` pass over `entities`.
async fn sync_pass(
    conn: &Connection,
    cfg: &Config,
    client: &Arc<b24ch::bitrix::Client>,
) -> Catalog {
    let catalog = b24ch::catalog::discover(client).await.unwrap();
    apply::apply_mode(conn, cfg, &catalog, Format::Parquet, Mode::Push)
        .await
        .unwrap();
    let t = apply::target(cfg);
    // Users and deals too: the analyst queries join them.
    for name in WORK.iter().chain(&["user", "crm_deal"]) {
        let e = catalog.entity(name).unwrap().clone();
        let job = Arc::new(
            EntityJob::new(e.clone(), selected_columns(&e, &cfg.entity(&e.name))).unwrap(),
        );
        sync::load(
            conn,
            &t,
            client.clone(),
            job.clone(),
            &Progress::hidden(&e.name),
        )
        .await
        .unwrap_or_else(|err| panic!("{}: {err}", e.name));
        sync::reconcile(conn, &t, client.clone(), job, 0)
            .await
            .unwrap_or_else(|err| panic!("{} reconcile: {err}", e.name));
    }
    catalog
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_equals_the_portal_before_and_after_changes() {
    let (ch, db) = common::fresh_database("work_sync").await;
    let mut cfg = from_toml_str(&format!(
        "[clickhouse]\nurl = \"{}\"\ndatabase = \"{db}\"\n",
        ch.http_url()
    ))
    .unwrap();
    let portal = portal::connect(&mut cfg, portal_cfg()).await.unwrap();
    let client = portal.client.clone();
    let c = portal.demo.as_ref().unwrap().control().clone();
    let conn = Connection::connect(&cfg.clickhouse).unwrap();
    let catalog = sync_pass(&conn, &cfg, &client).await;
    assert_work_equal(ch, &db, &c, &catalog).await;
    change_portal(&c);
    let catalog = sync_pass(&conn, &cfg, &client).await;
    assert_work_equal(ch, &db, &c, &catalog).await;
    run_analyst_queries(ch, &db).await;
}

/// The `sql` blocks of sql/README.md's section on these tables, one statement at a time.
fn analyst_queries() -> Vec<String> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/sql/README.md")).unwrap();
    let section = readme
        .split("\n## ")
        .find(|s| s.starts_with("Tasks, time, calls and workgroups"))
        .expect("sql/README.md has the section on tasks, time, calls and workgroups");
    section
        .split("```sql")
        .skip(1)
        .filter_map(|b| b.split("```").next())
        .flat_map(|b| b.split(';'))
        .map(str::trim)
        .filter(|q| {
            q.lines()
                .any(|l| !l.trim().is_empty() && !l.trim().starts_with("--"))
        })
        .map(str::to_string)
        .collect()
}

/// Every analyst query of the guide runs on the loaded tables and finds rows.
async fn run_analyst_queries(ch: &local_clickhouse::LocalClickHouse, db: &str) {
    let queries = analyst_queries();
    assert!(queries.len() >= 4, "{queries:?}");
    for q in &queries {
        let sql = q.replace("b24.", &format!("`{db}`."));
        let out = ch
            .query(&sql)
            .await
            .unwrap_or_else(|e| panic!("{e}\n{sql}"));
        assert!(!out.trim().is_empty(), "no rows:\n{sql}");
    }
}

/// Each optional scope taken away: its tables are unavailable with the scope to add, every
/// other entity stays in the catalog; given back, the table returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_scope_makes_only_its_tables_unavailable() {
    let mut cfg = from_toml_str("").unwrap();
    let portal = portal::connect(&mut cfg, portal_cfg()).await.unwrap();
    let client = portal.client.clone();
    let c = portal.demo.as_ref().unwrap().control().clone();
    let full = b24ch::catalog::discover(&client).await.unwrap();
    for (scope, tables) in [
        ("task", &["task", "task_elapsed_time", "task_stage"][..]),
        ("telephony", &["telephony_call"][..]),
        ("sonet_group", &["workgroup"][..]),
    ] {
        c.set_scope_denied(scope, true);
        let cat = b24ch::catalog::discover(&client).await.unwrap();
        for t in tables {
            let u = cat
                .unavailable(t)
                .unwrap_or_else(|| panic!("{t} not unavailable without {scope}"));
            assert_eq!(u.reason, UnavailableReason::MissingScope, "{t}");
            assert_eq!(u.scope.as_deref(), Some(scope), "{t}");
            assert!(u.explain().contains(scope), "{}", u.explain());
            assert!(cat.entity(t).is_none(), "{t}");
        }
        let others: Vec<&str> = full
            .entities
            .iter()
            .map(|e| e.name.as_str())
            .filter(|n| !tables.contains(n))
            .collect();
        for o in &others {
            assert!(cat.entity(o).is_some(), "{o} lost without {scope}");
        }
        c.set_scope_denied(scope, false);
        let back = b24ch::catalog::discover(&client).await.unwrap();
        for t in tables {
            assert!(back.entity(t).is_some(), "{t} not back with {scope}");
        }
    }
}

/// `b24ch exec` (the executable table function and dictionary source ClickHouse runs) reads
/// these tables too: every row by `exec rows`, and `exec dict --keys` asks `tasks.task.list`
/// for just the requested tasks (by their upper-case code, `@ID`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_rows_and_keyed_dictionary_lookups() {
    use std::os::unix::fs::PermissionsExt;
    use tokio::io::AsyncWriteExt;
    let portal = bitrix24_emulator::start(portal_cfg(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("b24ch.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = {:?}\n[portal]\nwebhook_url = {:?}\n",
            dir.path().join("state").display().to_string(),
            portal.webhook_url()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
    let run = |args: Vec<String>, stdin: Option<String>| {
        let config = config.clone();
        async move {
            let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_b24ch"))
                .arg("--config")
                .arg(&config)
                .args(&args)
                .env("RUST_LOG", "warn")
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            let mut input = child.stdin.take().unwrap();
            if let Some(s) = stdin {
                input.write_all(s.as_bytes()).await.unwrap();
            }
            drop(input);
            let out = child.wait_with_output().await.unwrap();
            assert!(
                out.status.success(),
                "b24ch {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap()
        }
    };
    let c = portal.control();
    for e in WORK {
        let out = run(vec!["exec".into(), "rows".into(), (*e).into()], None).await;
        let got: Vec<u64> = out
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["ID"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        let want: Vec<u64> = c
            .ground_truth(e)
            .unwrap()
            .iter()
            .map(|r| r["ID"].as_u64().unwrap())
            .collect();
        let mut got_sorted = got.clone();
        got_sorted.sort_unstable();
        assert_eq!(got_sorted, want, "{e}: exec rows");
    }
    c.reset_counters();
    let out = run(
        vec![
            "exec".into(),
            "dict".into(),
            "task".into(),
            "--keys".into(),
            "--columns".into(),
            "ID,TITLE,RESPONSIBLE_ID".into(),
        ],
        Some("{\"ID\":7}\n{\"ID\":42}\n".into()),
    )
    .await;
    let rows: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let truth = c.ground_truth("task").unwrap();
    assert_eq!(rows.len(), 2, "{out}");
    for r in &rows {
        let t = truth.iter().find(|t| t["ID"] == r["ID"]).unwrap();
        assert_eq!(r["TITLE"], t["TITLE"], "{r}");
        assert_eq!(r["RESPONSIBLE_ID"], t["RESPONSIBLE_ID"], "{r}");
    }
    // The keyed listing (its id probe and its page: 2 + 2 rows) and discovery's one-row probe,
    // never the 230 tasks.
    let served = c
        .counters()
        .rows_served
        .get("tasks.task.list")
        .copied()
        .unwrap_or(0);
    assert!(served <= 5, "{served} task rows served for 2 keys");
}
