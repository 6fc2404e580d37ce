//! The page parser never panics and never mistakes a broken answer for a page: arbitrary
//! bytes, arbitrary JSON and every truncation of every fixture.
use b24ch::bitrix::Response;
use b24ch::bitrix::envelope::parse_answer;
use b24ch::bitrix::listing::extract_rows;
use b24ch::bitrix::spec;
use proptest::prelude::*;
use serde_json::Value;

use crate::common::FIXTURES as DIR;

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(|n| serde_json::json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| serde_json::json!(f)),
        ".{0,12}".prop_map(serde_json::Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(serde_json::Value::Array),
            prop::collection::btree_map("[a-zA-Z_]{1,8}", inner, 0..8)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..512), status in 100u16..600) {
        let _: Result<Response<Value>, _> = parse_answer("crm.deal.list", status, &body);
    }

    #[test]
    fn arbitrary_results_never_panic(result in json_value(), status in prop_oneof![Just(200u16), Just(400), Just(503)]) {
        let body = serde_json::json!({"result": result, "time": {"start": 1}}).to_string();
        if let Ok::<Response<Value>, _>(r) = parse_answer("crm.item.list", status, body.as_bytes()) {
            for key in ["crm.deal", "crm.item", "user", "crm.status", "crm.category", "department"] {
                if let Some(s) = spec(key) {
                    let _ = extract_rows(s, &r);
                }
            }
        }
    }
}

#[test]
fn every_truncated_fixture_is_an_error_never_a_page() {
    let mut checked = 0;
    for entry in std::fs::read_dir(DIR).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let body = std::fs::read(&path).unwrap();
        let trimmed = String::from_utf8_lossy(&body).trim_end().len();
        // Every 13th prefix, plus every prefix near the end (where a cut still looks complete).
        let cuts = (0..trimmed)
            .step_by(13)
            .chain(trimmed.saturating_sub(64)..trimmed);
        for cut in cuts {
            let r: Result<Response<Value>, _> = parse_answer("crm.deal.list", 200, &body[..cut]);
            assert!(
                r.is_err(),
                "{} cut at {cut} parsed as a page",
                path.display()
            );
        }
        checked += 1;
    }
    assert!(checked >= 30, "fixtures found: {checked}");
}
