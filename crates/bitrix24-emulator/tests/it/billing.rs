//! The demo portal's billing variants (issue 16), switched through the control API: which key
//! a batch is billed to, what the nested `result_time` entries report, and the cost scale.

use crate::support::*;
use serde_json::{Value, json};

const TWO_PAGES: &str =
    r#"{"cmd": {"a": "crm.deal.list?start=-1", "b": "crm.lead.list?start=-1"}}"#;

async fn set_billing(p: &bitrix24_emulator::RunningPortal, body: Value) -> Resp {
    let url = format!("{}/_control/billing", p.base_url());
    let r = reqwest::Client::new()
        .post(url)
        .json(&body)
        .send()
        .await
        .unwrap();
    to_resp(r).await
}

/// Sends the two-page batch; returns (outer operating, nested a, nested b, processing a+b).
async fn two_pages(p: &bitrix24_emulator::RunningPortal) -> (f64, Option<f64>, Option<f64>, f64) {
    let body: Value = serde_json::from_str(TWO_PAGES).unwrap();
    let r = call(&m(p, "batch"), body).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let times = &r.json["result"]["result_time"];
    let processing =
        times["a"]["processing"].as_f64().unwrap() + times["b"]["processing"].as_f64().unwrap();
    (
        r.json["time"]["operating"].as_f64().unwrap(),
        times["a"]["operating"].as_f64(),
        times["b"]["operating"].as_f64(),
        processing,
    )
}

fn limited() -> bitrix24_emulator::PortalConfig {
    let mut cfg = fast_config();
    // Real time, so the 10-minute window holds for the whole test; no simulated delay.
    cfg.time_scale = 1.0;
    cfg.cost.max_real_delay_secs = 0.0;
    cfg.limits.enabled = true;
    cfg.limits.burst = 10_000.0;
    cfg
}

#[tokio::test]
async fn every_billing_variant_is_reported_as_configured() {
    let p = portal(limited()).await;
    // Per-method (the default): the batch key stays at 0, each nested figure is its own.
    let (outer, a, b, spent) = two_pages(&p).await;
    assert_eq!(outer, 0.0);
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(
        a > 0.0 && b > 0.0 && (a + b - spent).abs() < 1e-6,
        "{a} {b} {spent}"
    );

    // Whole batch, nested (a): own keys, flat.
    let r = set_billing(&p, json!({"batch_billing": "whole_batch"})).await;
    assert_eq!(r.json["batch_billing"], "whole_batch");
    assert_eq!(r.json["nested_figures"], "own");
    let (outer, na, nb, spent) = two_pages(&p).await;
    assert!((outer - spent).abs() < 1e-6, "{outer} {spent}");
    assert_eq!((na, nb), (Some(a), Some(b)), "nested keys not billed");

    // Whole batch, nested (b): the batch key's running total, pending included.
    set_billing(&p, json!({"nested_figures": "batch_total"})).await;
    let before = outer;
    let (outer, na, nb, spent) = two_pages(&p).await;
    let (na, nb) = (na.unwrap(), nb.unwrap());
    assert!(na > before && na < nb, "{before} {na} {nb}");
    assert!((nb - outer).abs() < 1e-6 && (outer - before - spent).abs() < 1e-6);

    // Whole batch, nested (c): no figures in nested entries.
    set_billing(&p, json!({"nested_figures": "absent"})).await;
    let (outer2, na, nb, spent) = two_pages(&p).await;
    assert_eq!((na, nb), (None, None));
    assert!((outer2 - outer - spent).abs() < 1e-6);

    // Both: the batch key and each nested method grow.
    set_billing(
        &p,
        json!({"batch_billing": "both", "nested_figures": "own"}),
    )
    .await;
    let (outer3, na, nb, spent) = two_pages(&p).await;
    assert!((outer3 - outer2 - spent).abs() < 1e-6);
    assert!(na.unwrap() > a && nb.unwrap() > b);
    let counters = p.control().counters();
    assert!(counters.operating_secs["batch"] > 0.0);
    assert_eq!(counters.operation_time_limit, 0);
    p.shutdown().await;
}

#[tokio::test]
async fn the_cost_scale_multiplies_every_cost_and_is_validated() {
    let p = portal(limited()).await;
    let (_, a1, _, spent1) = two_pages(&p).await;
    let r = set_billing(&p, json!({"cost_scale": 2.0})).await;
    assert_eq!(r.status, 200);
    let (_, a2, _, spent2) = two_pages(&p).await;
    assert!((spent2 - 2.0 * spent1).abs() < 1e-6, "{spent1} {spent2}");
    assert!((a2.unwrap() - a1.unwrap() - (a1.unwrap() * 2.0)).abs() < 1e-6);
    // Outside 0.5–2, or an unknown setting: a clear error, nothing changed.
    for bad in [
        json!({"cost_scale": 3.0}),
        json!({"cost_scale": "x"}),
        json!({"billing": "whole"}),
        json!({"batch_billing": "sometimes"}),
    ] {
        let r = set_billing(&p, bad.clone()).await;
        assert_eq!(r.status, 400, "{bad}");
        assert!(
            r.json["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{bad}"
        );
    }
    let now = get(&format!("{}/_control/billing", p.base_url())).await;
    assert_eq!(
        now.json,
        json!({"batch_billing": "per_method", "nested_figures": "own", "cost_scale": 2.0})
    );
    p.shutdown().await;
}
