//! Behaviour tests of the demo portal over HTTP: auth, params, envelope, paging, filters,
//! select masks, value encodings, crm.item, batch.

use crate::support::*;
use serde_json::{Value, json};

#[tokio::test]
async fn envelope_auth_and_escaping() {
    let p = portal(fast_config()).await;
    let r = call(
        &m(&p, "crm.deal.list"),
        json!({"select": ["ID", "TITLE"], "start": 0}),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type, "application/json; charset=utf-8");
    let time = r.json["time"].as_object().unwrap();
    for k in [
        "start",
        "finish",
        "duration",
        "processing",
        "date_start",
        "date_finish",
    ] {
        assert!(time.contains_key(k), "{k}");
    }
    assert!(time["date_start"].as_str().unwrap().ends_with("+03:00"));
    assert_eq!(r.json["result"].as_array().unwrap().len(), 50);
    assert_eq!(r.json["total"], 240);
    assert_eq!(r.json["next"], 50);
    // No raw '/', '<', '>', '&', quotes inside strings: PHP Json::encode escapes them.
    assert!(!r.text.contains("</"), "slashes must be escaped");
    assert!(r.text.contains("\\u0022") || r.text.contains("\\u0027") || r.text.contains("\\/"));

    let bad = call(
        &format!("{}/rest/1/wrong/crm.deal.list", p.base_url()),
        json!({}),
    )
    .await;
    assert_eq!(bad.status, 401);
    assert_eq!(
        bad.json,
        json!({"error": "INVALID_CREDENTIALS", "error_description": "Invalid request credentials"})
    );
    let nf = call(&m(&p, "crm.nothing.here"), json!({})).await;
    assert_eq!(nf.status, 404);
    assert_eq!(nf.json["error"], "ERROR_METHOD_NOT_FOUND");
    assert!(nf.json.get("time").is_none());
    p.shutdown().await;
}

#[tokio::test]
async fn get_query_brackets_and_post_wins() {
    let p = portal(fast_config()).await;
    let url = format!(
        "{}crm.deal.list.json?select[]=ID&select[]=TITLE&filter[%3EID]=200&order[ID]=DESC&start=0",
        p.webhook_url()
    );
    let r = get(&url).await;
    let ids: Vec<i64> = r.json["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["ID"].as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(ids.first(), Some(&240));
    assert_eq!(ids.len(), 40);
    assert!(ids.windows(2).all(|w| w[0] > w[1]));
    assert_eq!(r.json["result"][0].as_object().unwrap().len(), 2);
    // POST body replaces the query's `filter` key as a whole.
    let r = reqwest::Client::new()
        .post(&url)
        .form(&[("filter[<ID]", "3")])
        .send()
        .await
        .unwrap();
    let r = to_resp(r).await;
    assert_eq!(r.json["total"], 2);
    // Broken JSON is ignored silently: the query alone applies.
    let r = reqwest::Client::new()
        .post(&url)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(to_resp(r).await.json["total"], 40);
    p.shutdown().await;
}

#[tokio::test]
async fn multipart_params() {
    let p = portal(fast_config()).await;
    // Hand-built multipart/form-data body (reqwest's multipart feature is not enabled).
    let boundary = "XbOuNdArY";
    let mut body = String::new();
    for (k, v) in [
        ("filter[@ID][]", "5"),
        ("filter[@ID][]", "7"),
        ("select[]", "ID"),
    ] {
        body.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
        ));
    }
    body.push_str(&format!("--{boundary}--\r\n"));
    let r = reqwest::Client::new()
        .post(m(&p, "crm.lead.list"))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    let r = to_resp(r).await;
    let ids: Vec<&str> = r.json["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["ID"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["5", "7"]);
    p.shutdown().await;
}

#[tokio::test]
async fn legacy_paging_rules() {
    let p = portal(fast_config()).await;
    let r = call(
        &m(&p, "crm.deal.list"),
        json!({"select": ["ID"], "start": 73}),
    )
    .await;
    // start is floored to a multiple of 50
    assert_eq!(r.json["result"][0]["ID"], "51");
    assert_eq!(r.json["next"], 100);
    let r = call(
        &m(&p, "crm.deal.list"),
        json!({"select": ["ID"], "start": 200}),
    )
    .await;
    assert_eq!(r.json["result"].as_array().unwrap().len(), 40);
    assert!(r.json.get("next").is_none());
    assert_eq!(r.json["total"], 240);
    let r = call(
        &m(&p, "crm.deal.list"),
        json!({"select": ["ID"], "start": -1, "filter": {">ID": 230}, "order": {"ID": "ASC"}}),
    )
    .await;
    assert_eq!(r.json["total"], 0, "start=-1: legacy total 0");
    assert!(r.json.get("next").is_none());
    assert_eq!(r.json["result"].as_array().unwrap().len(), 10);
    let c = p.control().counters();
    assert_eq!(c.count_queries, 2, "start=-1 runs no COUNT");
    p.shutdown().await;
}

#[tokio::test]
async fn legacy_filters_drop_unknown_keys_and_error_on_scalar_filter() {
    let p = portal(fast_config()).await;
    let all = call(
        &m(&p, "crm.deal.list"),
        json!({"select": ["ID"], "filter": {">date_modify": "2030-01-01", "NOPE": 1}}),
    )
    .await;
    assert_eq!(
        all.json["total"], 240,
        "unknown/lowercase keys are dropped silently"
    );
    let err = call(&m(&p, "crm.deal.list"), json!({"filter": "x"})).await;
    assert_eq!(err.status, 400);
    assert_eq!(
        err.json,
        json!({"error": "", "error_description": "Parameter 'filter' must be array."})
    );
    let ne = call(
        &m(&p, "crm.deal.list"),
        json!({"select": ["ID"], "filter": {"!ID": 1, "<=ID": 3}}),
    )
    .await;
    assert_eq!(ne.json["total"], 2);
    let nin = call(
        &m(&p, "crm.deal.list"),
        json!({"select": ["ID"], "filter": {"!@ID": [1, 2], "<ID": 5}}),
    )
    .await;
    assert_eq!(nin.json["total"], 2);
    // datetime filter: >= some instant, compared with ground truth
    let truth = p.control().ground_truth("deal").unwrap();
    let cut = "2024-06-01 00:00:00";
    let expect = truth
        .iter()
        .filter(|r| r["DATE_MODIFY"].as_str().unwrap() >= cut)
        .count();
    let r = call(
        &m(&p, "crm.deal.list"),
        json!({"select": ["ID"], "filter": {">=DATE_MODIFY": "2024-06-01T03:00:00+03:00"}}),
    )
    .await;
    assert_eq!(r.json["total"].as_u64().unwrap() as usize, expect);
    p.shutdown().await;
}

#[tokio::test]
async fn legacy_select_masks_and_value_encodings() {
    let p = portal(fast_config()).await;
    let truth = p.control().ground_truth("contact").unwrap();
    let r = call(&m(&p, "crm.contact.list"), json!({"start": 0})).await;
    let row = r.json["result"][0].as_object().unwrap();
    assert!(
        row.keys().all(|k| !k.starts_with("UF_")),
        "empty select loads no UFs"
    );
    assert!(!row.contains_key("PHONE"), "multifields only when named");
    let r = call(
        &m(&p, "crm.contact.list"),
        json!({"select": ["*", "UF_*", "PHONE", "EMAIL"], "start": 0}),
    )
    .await;
    let rows = r.json["result"].as_array().unwrap();
    assert!(
        rows[0]
            .as_object()
            .unwrap()
            .keys()
            .any(|k| k.starts_with("UF_"))
    );
    let mut saw_false = false;
    let mut saw_phone = false;
    for row in rows {
        let id: usize = row["ID"].as_str().unwrap().parse().unwrap();
        let t = &truth[id - 1];
        for (k, v) in row.as_object().unwrap() {
            match (k.as_str(), v) {
                ("PHONE", Value::Array(a)) => {
                    saw_phone = true;
                    assert_eq!(a.len(), t["PHONE"].as_array().unwrap().len());
                    assert_eq!(
                        a[0].as_object()
                            .unwrap()
                            .keys()
                            .cloned()
                            .collect::<Vec<_>>(),
                        ["ID", "VALUE_TYPE", "VALUE", "TYPE_ID"]
                    );
                }
                (_, Value::Bool(false)) => {
                    saw_false = true;
                    assert_eq!(t[k], json!([]), "{k}: empty multiple UF is false");
                }
                ("BIRTHDATE", Value::String(s)) if s.is_empty() => {
                    assert!(t["BIRTHDATE"].is_null())
                }
                ("BIRTHDATE", Value::String(s)) => {
                    assert!(s.ends_with("T03:00:00+03:00"), "{s}");
                    assert_eq!(&s[..10], t["BIRTHDATE"].as_str().unwrap());
                }
                (_, Value::Null) => assert!(t[k].is_null() || t[k] == json!([]), "{k}"),
                (_, Value::String(_)) | (_, Value::Array(_)) | (_, Value::Object(_)) => {}
                (k, other) => panic!("legacy values are strings: {k} = {other}"),
            }
        }
        assert_eq!(
            row.get("PHONE").is_some(),
            !t["PHONE"].as_array().unwrap().is_empty()
        );
    }
    assert!(saw_false && saw_phone);
    p.shutdown().await;
}

#[tokio::test]
async fn legacy_get_and_fields() {
    let p = portal(fast_config()).await;
    let g = call(&m(&p, "crm.deal.get"), json!({"id": 3})).await;
    let d = g.json["result"].as_object().unwrap();
    assert_eq!(d["ID"], "3");
    assert!(
        d.keys().any(|k| k.starts_with("PARENT_ID_")),
        "deal.get has parent bindings"
    );
    assert!(!d.contains_key("CONTACT_IDS"));
    let l = call(
        &m(&p, "crm.deal.list"),
        json!({"select": ["*", "PARENT_ID_128"], "start": 0}),
    )
    .await;
    assert!(
        !l.json["result"][0]
            .as_object()
            .unwrap()
            .keys()
            .any(|k| k.starts_with("PARENT_ID_"))
    );
    let nf = call(&m(&p, "crm.deal.get"), json!({"id": 99999})).await;
    assert_eq!(
        (nf.status, nf.json.clone()),
        (400, json!({"error": "", "error_description": "Not found"}))
    );
    let f = call(&m(&p, "crm.deal.fields"), json!({})).await;
    let fields = f.json["result"].as_object().unwrap();
    assert_eq!(fields["CONTACT_IDS"]["isMultiple"], true);
    let uf = fields
        .iter()
        .find(|(k, _)| k.starts_with("UF_CRM_"))
        .unwrap()
        .1;
    assert_eq!(uf["isDynamic"], true);
    assert!(uf.get("listLabel").is_some());
    p.shutdown().await;
}

#[tokio::test]
async fn crm_item_typed_values_and_errors() {
    let p = portal(fast_config()).await;
    let r = call(&m(&p, "crm.item.list"), json!({"entityTypeId": 2, "select": ["id", "title", "opportunity", "contactIds", "parentId128", "opened"], "filter": {"<=id": 3}, "start": 0})).await;
    assert_eq!(r.status, 200);
    let items = r.json["result"]["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert!(items[0]["id"].is_i64());
    assert!(items[0]["contactIds"].is_array());
    assert!(items[0]["opened"] == "Y" || items[0]["opened"] == "N");
    assert!(items[0].get("parentId128").is_some());
    assert_eq!(r.json["total"], 3);
    let r = call(
        &m(&p, "crm.item.list"),
        json!({"entityTypeId": 2, "select": ["id"], "start": -1}),
    )
    .await;
    assert!(r.json.get("total").is_none() && r.json.get("next").is_none());
    let bad = call(
        &m(&p, "crm.item.list"),
        json!({"entityTypeId": 2, "filter": {">FOO": 1}}),
    )
    .await;
    assert_eq!(bad.status, 400);
    assert_eq!(
        bad.json,
        json!({"error": "INVALID_ARG_VALUE", "error_description": "Invalid filter: field 'FOO' is not allowed in filter"})
    );
    let nf = call(&m(&p, "crm.item.list"), json!({"entityTypeId": 999})).await;
    assert_eq!(nf.json["error"], "NOT_FOUND");
    let g = call(
        &m(&p, "crm.item.get"),
        json!({"entityTypeId": 128, "id": 2, "useOriginalUfNames": "Y"}),
    )
    .await;
    let item = g.json["result"]["item"].as_object().unwrap();
    assert!(
        item.keys().any(|k| k.starts_with("UF_CRM_1_")),
        "{:?}",
        item.keys()
    );
    let g = call(
        &m(&p, "crm.item.get"),
        json!({"entityTypeId": 128, "id": 2}),
    )
    .await;
    assert!(
        g.json["result"]["item"]
            .as_object()
            .unwrap()
            .keys()
            .any(|k| k.starts_with("ufCrm1_"))
    );
    let f = call(&m(&p, "crm.item.fields"), json!({"entityTypeId": 2})).await;
    assert_eq!(
        f.json["result"]["fields"]["updatedTime"]["upperName"],
        "UPDATED_TIME"
    );
    assert_eq!(f.json["result"]["fields"]["opened"]["type"], "boolean");
    p.shutdown().await;
}

#[tokio::test]
async fn batch_references_halt_and_quirks() {
    let p = portal(fast_config()).await;
    let r = call(
        &m(&p, "batch"),
        json!({"halt": 0, "cmd": {
            "a": "crm.deal.list?select[]=ID&order[ID]=ASC&start=-1",
            "b": "crm.deal.list?select[]=ID&order[ID]=ASC&start=-1&filter[>ID]=$result[a][49][ID]",
            "c": "crm.deal.get?id=$result[a][0][ID]",
            "bad": "crm.deal.get?id=0",
            "nested": "batch?cmd[x]=user.get",
        }}),
    )
    .await;
    assert_eq!(r.status, 200);
    let res = &r.json["result"];
    assert_eq!(res["result"]["b"][0]["ID"], "51");
    assert_eq!(res["result"]["c"]["ID"], "1");
    assert_eq!(
        res["result_error"]["bad"],
        json!({"error": "", "error_description": "ID is not defined or invalid."})
    );
    assert_eq!(
        res["result_error"]["nested"]["error"],
        "ERROR_BATCH_METHOD_NOT_ALLOWED"
    );
    assert_eq!(res["result_total"]["a"], 0);
    assert_eq!(res["result_next"], json!([]));
    assert!(res["result_time"]["a"]["processing"].is_number());
    let halted = call(
        &m(&p, "batch"),
        json!({"halt": 1, "cmd": {"x": "crm.deal.get?id=0", "y": "crm.deal.get?id=1"}}),
    )
    .await;
    assert_eq!(halted.json["result"]["result"], json!([]));
    assert!(halted.json["result"]["result_error"]["x"].is_object());
    // Numeric command keys: PHP turns sections into lists.
    let numeric = call(
        &m(&p, "batch"),
        json!({"cmd": ["crm.deal.get?id=0", "crm.deal.get?id=0"]}),
    )
    .await;
    assert!(numeric.json["result"]["result_error"].is_array());
    let counters = p.control().counters();
    // 3 top-level batches + the forbidden nested one (counted as attempted).
    assert_eq!(counters.per_method["batch"], 4);
    assert!(counters.per_method["crm.deal.list"] >= 2);
    p.shutdown().await;
}
