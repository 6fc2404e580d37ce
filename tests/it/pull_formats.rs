//! Parquet and JSONEachRow pulls fill identical tables (one database per format, the same
//! generated portal), and each equals the portal.
use crate::common;

use b24ch::encode::Format;
use bitrix24_emulator::PortalConfig;
use common::pull::{Pull, sizes};
use common::truth;

fn portal() -> PortalConfig {
    PortalConfig {
        sizes: sizes(2_000),
        time_scale: 200.0,
        ..PortalConfig::default()
    }
}

async fn loaded(prefix: &str, format: Format) -> Pull {
    let p = Pull::start(prefix, portal(), format, "").await;
    p.autopilot().await;
    p.wait_all().await;
    truth::assert_equal(&p.mismatches().await);
    p
}

/// The entity's current rows as JSON lines, the portal's own address neutralised (file URLs).
async fn contents(p: &Pull, entity: &str) -> String {
    let key = p
        .q(&format!(
            "SELECT sorting_key FROM system.tables WHERE database = '{}' AND name = '{entity}'",
            p.db
        ))
        .await;
    let base = p.portal.demo.as_ref().unwrap().base_url();
    p.q(&format!(
        "SELECT * EXCEPT (dt_inserted) FROM `{}`.`{entity}_current` ORDER BY `{key}` FORMAT JSONEachRow",
        p.db
    ))
    .await
    .replace(base.trim_start_matches("http://"), "portal")
}

async fn types(p: &Pull, entity: &str) -> String {
    p.q(&format!(
        "SELECT groupArray((name, type)) FROM system.columns WHERE database = '{}' AND table = '{entity}'",
        p.db
    ))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parquet_and_json_each_row_give_identical_tables() {
    let parquet = loaded("pull_parquet", Format::Parquet).await;
    let json = loaded("pull_json", Format::JsonEachRow).await;
    let entities = parquet.entities();
    assert_eq!(entities, json.entities());
    assert!(entities.len() >= 15, "{entities:?}");
    for e in &entities {
        let a = contents(&parquet, e).await;
        let b = contents(&json, e).await;
        assert!(!a.is_empty(), "{e} is empty");
        if a != b {
            let diff = a
                .lines()
                .zip(b.lines())
                .find(|(x, y)| x != y)
                .map(|(x, y)| format!("Parquet: {x}\nJSONEachRow: {y}"))
                .unwrap_or_else(|| format!("{} vs {} rows", a.lines().count(), b.lines().count()));
            panic!("{e} differs between formats:\n{diff}");
        }
        assert_eq!(types(&parquet, e).await, types(&json, e).await, "{e}");
    }
}
