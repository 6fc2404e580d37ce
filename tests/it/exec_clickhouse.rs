//! Executable modes in a real ClickHouse: the `executable()` table function, the `b24_call`
//! executable_pool UDF with batch packing, the shipped executable dictionaries (HASHED,
//! COMPLEX_KEY_CACHE, COMPLEX_KEY_HASHED) and the HTTP dictionary source of `serve` with
//! `update_field`.
//!
//! Each test installs a wrapper script (`b24ch_<tag>`: the test binary + a config pointing at
//! its own demo portal) and the XML from `clickhouse_config/` (names suffixed with the tag) into
//! the test server's user_scripts dir, exactly as the README tells users to.
//!
//! The test server is clickhouse-local (chdb-core), which loads `*_function.xml` but never
//! `*_dictionary.xml` and runs no LIFETIME dictionary updates (see
//! `assert_xml_dictionaries_are_ignored` and the update_field test for the source lines). Both
//! tests check that this still holds, then test the nearest real thing: the shipped XML
//! translated element by element to DDL, and the update request sent by ClickHouse's `url()`.
use crate::common;

use bitrix24_emulator::{PortalConfig, RunningPortal};
use local_clickhouse::LocalClickHouse;
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

struct Setup {
    portal: RunningPortal,
    _dir: tempfile::TempDir,
    config: PathBuf,
    state_dir: PathBuf,
    /// The wrapper script's name in user_scripts.
    script: String,
    tag: String,
    ch: &'static LocalClickHouse,
    db: String,
}

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_b24ch")
}

async fn setup(tag: &str, portal_cfg: PortalConfig) -> Setup {
    let (ch, db) = common::fresh_database(tag).await;
    let portal = bitrix24_emulator::start(portal_cfg, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let state_dir = dir.path().join("state");
    let config = dir.path().join("b24ch.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = {:?}\n[portal]\nwebhook_url = {:?}\n[proxy]\nlisten = \"127.0.0.1:0\"\ntoken = \"exec-test-token-0123456789\"\n",
            state_dir.display().to_string(),
            portal.webhook_url()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
    let tag = format!("{tag}_{}", std::process::id());
    let script = format!("b24ch_{tag}");
    install_wrapper(ch, &script, &config);
    Setup {
        portal,
        _dir: dir,
        config,
        state_dir,
        script,
        tag,
        ch,
        db,
    }
}

/// The wrappers README.md shows (`b24ch-rows`, `b24ch-call`, `b24ch-dict`), installed as
/// `<script>-rows` …: ClickHouse runs them from user_scripts with its own environment.
fn install_wrapper(ch: &LocalClickHouse, script: &str, config: &Path) {
    let dir = ch.user_scripts_dir();
    std::fs::create_dir_all(&dir).unwrap();
    for use_ in ["rows", "call", "dict"] {
        let path = dir.join(format!("{script}-{use_}"));
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(format!("clickhouse_config/b24ch-{use_}.sh")),
        )
        .unwrap()
        .replace("/usr/local/bin/b24ch", bin())
        .replace("/etc/b24ch/b24ch.toml", &config.display().to_string());
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

/// Installs one of the shipped XML files with every `b24ch` command and object name suffixed
/// by the test's tag, then reloads.
async fn install_xml(s: &Setup, file: &str, names: &[&str]) -> PathBuf {
    let mut text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("clickhouse_config")
            .join(file),
    )
    .unwrap();
    text = text.replace("<command>b24ch-", &format!("<command>{}-", s.script));
    for n in names {
        text = text.replace(
            &format!("<name>{n}</name>"),
            &format!("<name>{n}_{}</name>", s.tag),
        );
    }
    let sfx = suffix(file);
    let stem = file.strip_suffix(sfx).unwrap();
    let target =
        s.ch.user_scripts_dir()
            .join(format!("{stem}_{}{sfx}", s.tag));
    std::fs::write(&target, text).unwrap();
    target
}

/// `*_function.xml` / `*_dictionary.xml` must keep their suffix for the server's glob.
fn suffix(file: &str) -> &'static str {
    if file.ends_with("_function.xml") {
        "_function.xml"
    } else {
        "_dictionary.xml"
    }
}

/// Runs the binary (async: the demo portal lives on this test's runtime).
async fn b24ch(config: &Path, args: &[&str]) -> String {
    let out = tokio::process::Command::new(bin())
        .arg("--config")
        .arg(config)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "b24ch {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// Runs a statement; SELECTs without a FORMAT answer in TabSeparatedRaw (no escaping of `'`).
async fn q(ch: &LocalClickHouse, sql: &str) -> String {
    let sql = if sql.trim_start().starts_with("SELECT") && !sql.contains(" FORMAT ") {
        format!("{sql} FORMAT TabSeparatedRaw")
    } else {
        sql.to_string()
    };
    match ch.query(&sql).await {
        Ok(s) => s.trim_end().to_string(),
        Err(e) => panic!("query failed: {sql}\n{e}"),
    }
}

fn requests(p: &RunningPortal) -> u64 {
    p.control().counters().requests_total
}

fn rows_served(p: &RunningPortal, method: &str) -> u64 {
    p.control()
        .counters()
        .rows_served
        .get(method)
        .copied()
        .unwrap_or(0)
}

fn calls(p: &RunningPortal, method: &str) -> u64 {
    p.control()
        .counters()
        .per_method
        .get(method)
        .copied()
        .unwrap_or(0)
}

#[tokio::test]
async fn table_function_returns_the_portals_typed_rows() {
    let s = setup("exec_rows", PortalConfig::default()).await;
    let structure = b24ch(&s.config, &["exec", "structure", "crm_deal"]).await;
    let structure = structure.trim();
    assert!(structure.starts_with("`ID` Int64"), "{structure}");
    let truth = s.portal.control().ground_truth("deal").unwrap();
    let truth_ids: BTreeSet<u64> = truth.iter().map(|r| r["ID"].as_u64().unwrap()).collect();

    for format in ["JSONEachRow", "Parquet"] {
        let src = format!(
            "executable({}, {}, {})",
            lit(&format!("{}-rows crm_deal --format {format}", s.script)),
            lit(format),
            lit(structure)
        );
        let ids = q(s.ch, &format!("SELECT ID FROM {src} ORDER BY ID")).await;
        let got: BTreeSet<u64> = ids.lines().map(|l| l.parse().unwrap()).collect();
        assert_eq!(got, truth_ids, "{format}: IDs differ from the portal");
        // A few typed values: the title, the money amount as Decimal(18,2), a date-time.
        let row = q(
            s.ch,
            &format!(
                "SELECT TITLE, toTypeName(OPPORTUNITY), toString(OPPORTUNITY), toTypeName(DATE_CREATE) FROM {src} WHERE ID = 7"
            ),
        )
        .await;
        let t = truth.iter().find(|r| r["ID"] == json!(7)).unwrap();
        let cols: Vec<&str> = row.split('\t').collect();
        assert_eq!(cols[0], t["TITLE"].as_str().unwrap(), "{format}");
        assert_eq!(cols[1], "Nullable(Decimal(18, 2))");
        let opp: f64 = cols[2].parse().unwrap();
        let truth_opp = match &t["OPPORTUNITY"] {
            Value::String(x) => x.parse::<f64>().unwrap(),
            v => v.as_f64().unwrap(),
        };
        assert!((opp - truth_opp).abs() < 0.005, "{opp} vs {truth_opp}");
        assert!(cols[3].starts_with("Nullable(DateTime64(0"), "{}", cols[3]);
    }

    // Incremental: only rows modified since a time (plus the lookback).
    let now = s.portal.control().now() as i64;
    s.portal
        .control()
        .modify_rows("deal", &[3, 11], &Map::new(), Some(now + 5))
        .unwrap();
    let src = format!(
        "executable({}, 'JSONEachRow', {})",
        lit(&format!(
            "{}-rows crm_deal --modified-since {} --lookback 0",
            s.script,
            now + 1
        )),
        lit(structure)
    );
    assert_eq!(
        q(
            s.ch,
            &format!("SELECT groupArray(ID) FROM (SELECT ID FROM {src} ORDER BY ID)")
        )
        .await,
        "[3,11]"
    );

    // The same rows can be INSERTed into a table declared with the structure.
    q(
        s.ch,
        &format!(
            "CREATE TABLE `{}`.deals ({structure}) ENGINE = MergeTree ORDER BY ID",
            s.db
        ),
    )
    .await;
    q(
        s.ch,
        &format!(
            "INSERT INTO `{}`.deals SELECT * FROM executable({}, 'Parquet', {})",
            s.db,
            lit(&format!("{}-rows crm_deal --format Parquet", s.script)),
            lit(structure)
        ),
    )
    .await;
    assert_eq!(
        q(s.ch, &format!("SELECT count() FROM `{}`.deals", s.db)).await,
        truth.len().to_string()
    );

    // Bad input is a clear error in ClickHouse's exception, not an empty table.
    let err =
        s.ch.query(&format!(
            "SELECT * FROM executable({}, 'JSONEachRow', 'ID Int64', SETTINGS check_exit_code = 1, stderr_reaction = 'log_last')",
            lit(&format!("{}-rows crm_nothing", s.script))
        ))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("unknown entity \\\"crm_nothing\\\"")
            || err.contains("unknown entity \"crm_nothing\""),
        "{err}"
    );
    // Without check_exit_code ClickHouse would return an empty result: the README and the
    // structure --sql output always add it.
}

#[tokio::test]
async fn udf_packs_a_block_into_batches_of_50() {
    let s = setup("exec_udf", PortalConfig::default()).await;
    install_xml(&s, "b24_call_function.xml", &["b24_call"]).await;
    q(s.ch, "SYSTEM RELOAD FUNCTIONS").await;
    let f = format!("b24_call_{}", s.tag);
    // Warm up: the pool process starts and answers one row.
    let one = q(
        s.ch,
        &format!("SELECT JSONExtractString({f}('crm.deal.get', '{{\"id\":5}}'), 'TITLE')"),
    )
    .await;
    let truth = s.portal.control().ground_truth("deal").unwrap();
    assert_eq!(one, truth[4]["TITLE"].as_str().unwrap());

    let before_requests = requests(&s.portal);
    let before_gets = calls(&s.portal, "crm.deal.get");
    let out = q(
        s.ch,
        &format!(
            "SELECT count(), countIf(JSONExtractString(r, 'ID') = toString(id)), countIf(JSONExtractString(r, 'TITLE') != '')
             FROM (SELECT number + 1 AS id, {f}('crm.deal.get', concat('{{\"id\":', toString(number + 1), '}}')) AS r FROM numbers(200))"
        ),
    )
    .await;
    assert_eq!(out, "200\t200\t200");
    let http = requests(&s.portal) - before_requests;
    let gets = calls(&s.portal, "crm.deal.get") - before_gets;
    assert_eq!(gets, 200, "every row is one nested call");
    assert!(http <= 5, "200 rows took {http} HTTP requests (expected 4)");
    println!("b24_call over 200 rows: {http} HTTP requests, {gets} nested crm.deal.get calls");

    // Per-row errors are JSON, and methods off the allow-list (writes) are refused.
    let errs = q(
        s.ch,
        &format!(
            "SELECT JSONExtractString({f}('crm.deal.get', '{{\"id\":999999}}'), 'error'), JSONExtractString({f}('crm.deal.delete', '{{\"id\":1}}'), 'error'), JSONExtractString({f}('crm.deal.get', 'not json'), 'error')"
        ),
    )
    .await;
    let e: Vec<&str> = errs.split('\t').collect();
    assert!(!e[0].is_empty(), "{errs}");
    assert_eq!(e[1], "B24CH_METHOD_NOT_ALLOWED");
    assert_eq!(e[2], "B24CH_BAD_PARAMS");
    assert_eq!(
        s.portal.control().ground_truth("deal").unwrap().len(),
        truth.len()
    );
}

/// The dictionaries of the shipped `b24_reference_dictionary.xml`.
const REFERENCE_DICTIONARIES: &[&str] = &[
    "b24_users",
    "b24_departments",
    "b24_stages",
    "b24_enum_labels",
];

#[tokio::test]
async fn shipped_xml_dictionaries_hashed_and_cache() {
    let s = setup("exec_dict", PortalConfig::default()).await;
    // The file as README tells users to install it, in the directory the server's
    // dictionaries_config glob names (DATA/user_scripts/*_dictionary.xml).
    let xml = install_xml(&s, "b24_reference_dictionary.xml", REFERENCE_DICTIONARIES).await;
    assert_xml_dictionaries_are_ignored(&s).await;
    // Nearest real thing: the same file, element by element, as CREATE DICTIONARY (the
    // configuration ClickHouse builds from DDL has the same keys as the XML).
    let ddl = xml_to_ddl(&xml, &s.db);
    run_sql_text(&s, &ddl).await;
    let name = |n: &str| format!("{}.{n}_{}", s.db, s.tag);
    let users = name("b24_users");
    let departments = name("b24_departments");
    let stages = name("b24_stages");
    let labels = name("b24_enum_labels");
    assert_eq!(
        xml_commands("b24_reference_dictionary.xml"),
        sql_commands("executable_dictionaries.sql")
    );

    // HASHED: the whole user list, labels by ID.
    let truth = s.portal.control().ground_truth("user").unwrap();
    for u in truth.iter().take(5) {
        let id = u["ID"].as_u64().unwrap();
        let got = q(
            s.ch,
            &format!(
                "SELECT dictGet({}, 'LAST_NAME', toUInt64({id}))",
                lit(&users)
            ),
        )
        .await;
        assert_eq!(got, u["LAST_NAME"].as_str().unwrap(), "user {id}");
    }
    assert_eq!(
        q(s.ch, &element_count(&s.db, &format!("b24_users_{}", s.tag))).await,
        truth.len().to_string()
    );
    let dept = &s.portal.control().ground_truth("department").unwrap()[0];
    assert_eq!(
        q(
            s.ch,
            &format!(
                "SELECT dictGet({}, 'NAME', toUInt64({}))",
                lit(&departments),
                dept["ID"]
            )
        )
        .await,
        dept["NAME"].as_str().unwrap()
    );

    // COMPLEX_KEY_CACHE: only the keys ClickHouse misses reach b24ch (and Bitrix24).
    let statuses = s.portal.control().ground_truth("status").unwrap();
    let stage = |i: usize| {
        let r = &statuses[i];
        (
            r["ENTITY_ID"].as_str().unwrap().to_string(),
            r["STATUS_ID"].as_str().unwrap().to_string(),
            r["NAME"].as_str().unwrap().to_string(),
        )
    };
    let (e0, s0, n0) = stage(0);
    let (e1, s1, n1) = stage(1);
    let (e2, s2, n2) = stage(2);
    let get = |e: &str, st: &str| {
        format!(
            "dictGet({}, 'NAME', tuple({}, {}))",
            lit(&stages),
            lit(e),
            lit(st)
        )
    };
    let log = s.state_dir.join("exec-dict.log");
    let asked = || -> Vec<Value> {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .filter(|v: &Value| v["dictionary_source"] == "crm_status")
            .map(|v| v["keys"].clone())
            .collect()
    };
    let before = calls(&s.portal, "crm.status.list");
    assert_eq!(
        q(
            s.ch,
            &format!("SELECT {}, {}", get(&e0, &s0), get(&e1, &s1))
        )
        .await,
        format!("{n0}\t{n1}")
    );
    let after_first = calls(&s.portal, "crm.status.list");
    let asked_first = asked();
    assert!(after_first > before && !asked_first.is_empty());
    // Same keys again: served from the cache, no process, no Bitrix24 call.
    q(
        s.ch,
        &format!("SELECT {}, {}", get(&e0, &s0), get(&e1, &s1)),
    )
    .await;
    assert_eq!(calls(&s.portal, "crm.status.list"), after_first);
    assert_eq!(asked().len(), asked_first.len());
    // One new key: b24ch is asked for that key only, with one Bitrix24 call.
    assert_eq!(
        q(
            s.ch,
            &format!("SELECT {}, {}", get(&e0, &s0), get(&e2, &s2))
        )
        .await,
        format!("{n0}\t{n2}")
    );
    assert_eq!(calls(&s.portal, "crm.status.list"), after_first + 1);
    let asked_last = asked();
    assert_eq!(asked_last.len(), asked_first.len() + 1);
    assert_eq!(
        asked_last.last().unwrap(),
        &json!([[e2, s2]]),
        "only the missing key"
    );

    // COMPLEX_KEY_HASHED: enumeration labels from the catalog (entity, field, option id) → label.
    let catalog = s.portal.control().catalog();
    let (entity, field, id, label) = first_enum_option(&catalog).expect("an enumeration field");
    assert_eq!(
        q(
            s.ch,
            &format!(
                "SELECT dictGet({}, 'label', tuple({}, {}, toUInt64({id})))",
                lit(&labels),
                lit(&entity),
                lit(&field)
            )
        )
        .await,
        label
    );

    // What the server built is what the XML declares: layout, key, attributes, lifetime, command.
    let declared = xml_declarations(&xml);
    assert_eq!(declared.len(), REFERENCE_DICTIONARIES.len());
    for d in &declared {
        let row = q(
            s.ch,
            &format!(
                "SELECT type, arrayZip(key.names, key.types), arrayZip(attribute.names, attribute.types), lifetime_min, lifetime_max, source
                 FROM system.dictionaries WHERE database = {} AND name = {} FORMAT JSONEachRow",
                lit(&s.db),
                lit(d["name"].as_str().unwrap())
            ),
        )
        .await;
        let row: Value = serde_json::from_str(&row).unwrap_or_else(|e| panic!("{e}: {row:?}"));
        let got = json!({
            "name": d["name"],
            "type": row["type"],
            "keys": row["arrayZip(key.names, key.types)"],
            "attributes": row["arrayZip(attribute.names, attribute.types)"],
            "lifetime": [row["lifetime_min"], row["lifetime_max"]],
            "source": row["source"],
        });
        assert_eq!(&got, d, "system.dictionaries vs the XML");
    }

    // The DDL file that mirrors the XML loads the same users.
    let (_, sql_db) = common::fresh_database("exec_dict_sql").await;
    run_sql_file(&s, &sql_db, "executable_dictionaries.sql").await;
    let id = truth[0]["ID"].as_u64().unwrap();
    assert_eq!(
        q(
            s.ch,
            &format!("SELECT dictGet('{sql_db}.b24_users', 'LAST_NAME', toUInt64({id}))")
        )
        .await,
        truth[0]["LAST_NAME"].as_str().unwrap()
    );
}

fn element_count(db: &str, name: &str) -> String {
    format!(
        "SELECT element_count FROM system.dictionaries WHERE database = {} AND name = {}",
        lit(db),
        lit(name)
    )
}

/// clickhouse-local (the engine of the test server) never reads `dictionaries_config`:
/// `LocalServer::main` calls `loadOrReloadUserDefinedExecutableFunctions` (so `*_function.xml`
/// works) but never `Context::loadOrReloadDictionaries`, the only code that registers the XML
/// repository (clickhouse-server calls it at start and on config reload), and clickhouse-local
/// refuses `SYSTEM RELOAD CONFIG`. Checked here, so this test is revisited when that changes.
async fn assert_xml_dictionaries_are_ignored(s: &Setup) {
    // SYSTEM RELOAD DICTIONARY re-reads every config repository before it loads the one name
    // (ExternalLoader::loadOrReload); RELOAD DICTIONARIES would also reload other tests' ones.
    let bare = format!("b24_users_{}", s.tag);
    let err = s
        .ch
        .query(&format!("SYSTEM RELOAD DICTIONARY `{bare}`"))
        .await
        .expect_err("the local server now loads *_dictionary.xml: query the installed XML dictionaries directly instead of their DDL translation")
        .to_string();
    assert!(err.contains("not found"), "{err}");
    assert_eq!(
        q(
            s.ch,
            &format!(
                "SELECT count() FROM system.dictionaries WHERE name LIKE {}",
                lit(&format!("%_{}", s.tag))
            )
        )
        .await,
        "0"
    );
    let err =
        s.ch.query("SYSTEM RELOAD CONFIG")
            .await
            .unwrap_err()
            .to_string();
    assert!(err.contains("not supported in clickhouse-local"), "{err}");
}

/// `scripts/dictionary_xml_to_ddl.py`: the file's dictionaries as CREATE DICTIONARY in `db`.
fn xml_to_ddl(xml: &Path, db: &str) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/dictionary_xml_to_ddl.py");
    let out = python3(&[
        script.as_os_str(),
        "--database".as_ref(),
        db.as_ref(),
        xml.as_os_str(),
    ]);
    String::from_utf8(out).unwrap() + ";\n"
}

/// Runs `python3 ARGS…`, asserts success and returns its standard output.
fn python3(args: &[&std::ffi::OsStr]) -> Vec<u8> {
    let out = std::process::Command::new("python3")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Per dictionary of an XML file, what system.dictionaries should show once it is loaded
/// (read with Python's XML parser, independently of the translation).
fn xml_declarations(xml: &Path) -> Vec<Value> {
    const PY: &str = r#"
import json, sys, xml.etree.ElementTree as E
out = []
for d in E.parse(sys.argv[1]).getroot().iter("dictionary"):
    layout = [c.tag for c in d.find("layout")][0]
    st = d.find("structure")
    keys = [[st.find("id").findtext("name"), "UInt64"]] if st.find("id") is not None else \
        [[a.findtext("name"), a.findtext("type")] for a in st.find("key").findall("attribute")]
    lt = d.find("lifetime")
    out.append({
        "name": d.findtext("name"),
        "type": "".join(w.capitalize() for w in layout.split("_")),
        "keys": keys,
        "attributes": [[a.findtext("name"), a.findtext("type")] for a in st.findall("attribute")],
        "lifetime": [int(lt.findtext("min")), int(lt.findtext("max"))],
        # system.dictionaries names the program only; the arguments show in what each one loads.
        "source": "Executable: " + d.find("source").find("executable").findtext("command").split()[0],
    })
print(json.dumps(out))
"#;
    let out = python3(&["-c".as_ref(), PY.as_ref(), xml.as_os_str()]);
    serde_json::from_slice(&out).unwrap()
}

/// The first enumeration option in the portal's catalog truth, as b24ch names the entity.
fn first_enum_option(catalog: &Value) -> Option<(String, String, u64, String)> {
    let tables = catalog["tables"].as_array()?;
    for t in tables {
        let name = t["name"].as_str()?;
        let entity = match name {
            "deal" => "crm_deal",
            "lead" => "crm_lead",
            "contact" => "crm_contact",
            "company" => "crm_company",
            _ => continue,
        };
        for f in t["fields"].as_array()? {
            if let Some(o) = f["options"].as_array().and_then(|o| o.first()) {
                return Some((
                    entity.to_string(),
                    f["code"].as_str()?.to_string(),
                    o["id"].as_u64()?,
                    o["value"].as_str()?.to_string(),
                ));
            }
        }
    }
    None
}

/// Runs a shipped `sql/` file in database `db`, with `b24.` and the `b24ch` command
/// replaced by the test's database and wrapper.
async fn run_sql_file(s: &Setup, db: &str, file: &str) {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("sql").join(file))
            .unwrap()
            .replace("b24.", &format!("`{db}`."))
            .replace("COMMAND 'b24ch-", &format!("COMMAND '{}-", s.script));
    for stmt in text.split(";\n") {
        let code: String = stmt
            .lines()
            .filter(|l| !l.trim_start().starts_with("--"))
            .collect::<Vec<_>>()
            .join("\n");
        if !code.trim().is_empty() {
            q(s.ch, &code).await;
        }
    }
}

/// The `<command>`s of a shipped XML file (parsed by Python's XML parser: the file must be
/// well-formed).
fn xml_commands(file: &str) -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("clickhouse_config")
        .join(file);
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg("import sys, xml.etree.ElementTree as E; [print(c.text) for c in E.parse(sys.argv[1]).iter('command')]")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut v: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

fn sql_commands(file: &str) -> Vec<String> {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("sql").join(file))
            .unwrap();
    let mut v: Vec<String> = text
        .split("COMMAND '")
        .skip(1)
        .filter_map(|rest| rest.split('\'').next().map(str::to_string))
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn http_dictionaries_from_serve_with_update_field() {
    let s = setup("exec_http_dict", PortalConfig::default()).await;
    let token = "exec-test-token-0123456789";
    let mut config = b24ch::config::load(Some(&s.config)).unwrap();
    let conn = b24ch::portal::connect(&mut config, PortalConfig::default())
        .await
        .unwrap();
    let serve = b24ch::commands::serve::start(std::sync::Arc::new(config), &conn)
        .await
        .unwrap();
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("sql/http_dictionaries.sql"),
    )
    .unwrap()
    .replace("http://127.0.0.1:8480", &serve.url())
    .replace("CHANGE_ME_PROXY_TOKEN", token)
    // Due every 1-2 s instead of 1-2 min, so a server that runs periodic updates would
    // update it within the wait below.
    .replace("LIFETIME(MIN 60 MAX 120)", "LIFETIME(MIN 1 MAX 2)");
    assert!(
        text.contains("LIFETIME(MIN 1 MAX 2)"),
        "the deals LIFETIME changed in the SQL file"
    );
    run_sql_text(&s, &text).await;
    let deals = format!("{}.b24_deals", s.db);
    let deals_stmt: String = text
        .split(";\n")
        .find(|st| st.contains("b24.b24_deals"))
        .expect("the b24_deals statement")
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    let deals_stmt = deals_stmt.as_str();
    let count = |name: &str| {
        format!(
            "SELECT element_count FROM system.dictionaries WHERE database = '{}' AND name = '{name}'",
            s.db
        )
    };

    // First load: everything.
    let truth = s.portal.control().ground_truth("deal").unwrap();
    s.portal.control().reset_counters();
    assert_eq!(
        q(
            s.ch,
            &format!("SELECT dictGet({}, 'TITLE', toUInt64(7))", lit(&deals))
        )
        .await,
        truth[6]["TITLE"].as_str().unwrap()
    );
    assert_eq!(q(s.ch, &count("b24_deals")).await, truth.len().to_string());
    assert!(rows_served(&s.portal, "crm.item.list") >= truth.len() as u64);

    // A deal is renamed in the portal.
    let mut set = Map::new();
    set.insert("TITLE".into(), json!("Renamed by the portal"));
    s.portal
        .control()
        .modify_rows("deal", &[7], &set, None)
        .unwrap();
    let loaded = dictionary_times(&s, "b24_deals").await;
    s.portal.control().reset_counters();

    // On clickhouse-server the dictionary is now due (LIFETIME 1-2 s; the updater checks every
    // 5 s), and the update GETs the URL with modified_since and merges the answer into the
    // loaded rows. clickhouse-local never does this: ExternalDictionariesLoader enables its
    // periodic updater only for ApplicationType::SERVER, and the updater's reloadOutdated() is
    // the only non-forced reload, i.e. the only one that clones the loaded dictionary (keeping
    // its source's last update time), which is what sends update_field. Checked here, bounded.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2 + 5 + 3);
    while std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        assert_eq!(
            dictionary_times(&s, "b24_deals").await,
            loaded,
            "ClickHouse updated b24_deals on its LIFETIME schedule: the local server now runs periodic dictionary updates, so assert that update (changed title, only the changed row served) here instead"
        );
    }
    assert_eq!(
        requests(&s.portal),
        0,
        "nothing asked b24ch in the meantime"
    );

    // Nearest real thing: ClickHouse itself sends the update request the HTTP source would
    // send (HTTPDictionarySource::getUpdateFieldAndDate: the URL plus update_field = the
    // previous load's start - UPDATE_LAG, `YYYY-MM-DD hh:mm:ss` in the server's time zone),
    // and reads the answer with the dictionary's structure.
    let url = sql_string_after(deals_stmt, "URL '");
    let field = sql_string_after(deals_stmt, "UPDATE_FIELD '");
    let lag: i64 = deals_stmt
        .split("UPDATE_LAG ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("UPDATE_LAG n");
    let structure = q(
        s.ch,
        &format!(
            "SELECT arrayStringConcat(arrayMap((n, t) -> concat(n, ' ', t), arrayConcat(key.names, attribute.names), arrayConcat(key.types, attribute.types)), ', ')
             FROM system.dictionaries WHERE database = {} AND name = 'b24_deals'",
            lit(&s.db)
        ),
    )
    .await;
    let update = q(
        s.ch,
        &format!(
            "SELECT ID, TITLE FROM url(concat({}, '&', {}, '=', encodeURLComponent(toString(toDateTime({}) - {lag}))), 'JSONEachRow', {}, headers('Authorization' = {}))
             ORDER BY ID SETTINGS http_make_head_request = 0",
            lit(&url),
            lit(&field),
            lit(&loaded.0),
            lit(&structure),
            lit(&format!("Bearer {token}"))
        ),
    )
    .await;
    assert_eq!(update, "7\tRenamed by the portal", "only the changed deal");
    let served = rows_served(&s.portal, "crm.item.list");
    assert!(
        served < 10,
        "b24ch listed {served} rows from Bitrix24 for the update"
    );
    println!(
        "update_field request sent by ClickHouse: 1 row back, {served} rows listed from the portal, {} requests",
        requests(&s.portal)
    );

    // The only reload clickhouse-local can do (SYSTEM RELOAD DICTIONARY, forced) starts afresh:
    // every row again, and the new title is there.
    s.portal.control().reset_counters();
    q(s.ch, &format!("SYSTEM RELOAD DICTIONARY {deals}")).await;
    assert_eq!(
        q(
            s.ch,
            &format!("SELECT dictGet({}, 'TITLE', toUInt64(7))", lit(&deals))
        )
        .await,
        "Renamed by the portal"
    );
    assert_eq!(q(s.ch, &count("b24_deals")).await, truth.len().to_string());
    assert!(rows_served(&s.portal, "crm.item.list") >= truth.len() as u64);
    assert_ne!(dictionary_times(&s, "b24_deals").await, loaded);

    // CACHE over HTTP: ClickHouse POSTs the missing IDs, b24ch lists just those users.
    let users = s.portal.control().ground_truth("user").unwrap();
    s.portal.control().reset_counters();
    let got = q(
        s.ch,
        &format!(
            "SELECT dictGet({}, 'LAST_NAME', toUInt64(3))",
            lit(&format!("{}.b24_users_http", s.db))
        ),
    )
    .await;
    assert_eq!(got, users[2]["LAST_NAME"].as_str().unwrap());
    assert_eq!(requests(&s.portal), 1, "one request for the missing key");

    // TabSeparated with an explicit column list.
    let statuses = s.portal.control().ground_truth("status").unwrap();
    let st = &statuses[3];
    assert_eq!(
        q(
            s.ch,
            &format!(
                "SELECT dictGet({}, 'NAME', tuple({}, {}))",
                lit(&format!("{}.b24_stages_http", s.db)),
                lit(st["ENTITY_ID"].as_str().unwrap()),
                lit(st["STATUS_ID"].as_str().unwrap())
            )
        )
        .await,
        st["NAME"].as_str().unwrap()
    );
    serve.stop();
}

/// (loading_start_time, last_successful_update_time) of a dictionary of the test database.
async fn dictionary_times(s: &Setup, name: &str) -> (String, String) {
    let row = q(
        s.ch,
        &format!(
            "SELECT loading_start_time, last_successful_update_time FROM system.dictionaries WHERE database = {} AND name = {}",
            lit(&s.db),
            lit(name)
        ),
    )
    .await;
    match row.split_once('\t') {
        Some((a, b)) => (a.to_string(), b.to_string()),
        None => panic!("no times for dictionary {name}: {row:?}"),
    }
}

/// The text of the SQL string literal that follows `key` (no escapes in the shipped file).
fn sql_string_after(stmt: &str, key: &str) -> String {
    stmt.split(key)
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .unwrap_or_else(|| panic!("no {key}...' in {stmt}"))
        .to_string()
}

async fn run_sql_text(s: &Setup, text: &str) {
    let text = text.replace("b24.", &format!("`{}`.", s.db));
    for stmt in text.split(";\n") {
        let code: String = stmt
            .lines()
            .filter(|l| !l.trim_start().starts_with("--"))
            .collect::<Vec<_>>()
            .join("\n");
        if !code.trim().is_empty() {
            q(s.ch, &code).await;
        }
    }
}
