//! The methods outside CRM (issue #12): paging with and without COUNT, default orders, the
//! documented errors, positional arguments, the `select` rules of tasks, scopes.
use crate::support::*;
use serde_json::{Value, json};

fn ids(v: &Value) -> Vec<i64> {
    let rows: Vec<Value> = match v {
        Value::Array(a) => a.clone(),
        Value::Object(m) => m.values().cloned().collect(),
        _ => Vec::new(),
    };
    rows.iter()
        .filter_map(|r| r.get("ID").or_else(|| r.get("id")))
        .filter_map(|x| x.as_str().and_then(|s| s.parse().ok()))
        .collect()
}

#[tokio::test]
async fn tasks_page_order_select_and_refuse_a_bad_sort_key() {
    let p = portal(fast_config()).await;
    let url = m(&p, "tasks.task.list");
    // Default order: ID descending; start=0 counts and gives `next`.
    let r = call(&url, json!({"select": ["ID"], "start": 0})).await;
    let first = ids(&r.json["result"]["tasks"]);
    assert_eq!(first.len(), 50);
    assert_eq!(first[0], 150, "{first:?}");
    assert_eq!(
        (r.json["total"].clone(), r.json["next"].clone()),
        (json!(150), json!(50))
    );
    // start=-1: no COUNT, so neither `total` nor `next` (a controller method).
    let r = call(
        &url,
        json!({"select": ["ID"], "order": {"ID": "ASC"}, "filter": {">ID": 140}, "start": -1}),
    )
    .await;
    assert_eq!(
        ids(&r.json["result"]["tasks"]),
        (141..=150).collect::<Vec<_>>()
    );
    assert!(
        r.json.get("total").is_none() && r.json.get("next").is_none(),
        "{}",
        r.text
    );
    // Rows are camelCase; naming one system user field brings all three.
    let r = call(
        &url,
        json!({"select": ["ID", "UF_CRM_TASK"], "filter": {"ID": 3}}),
    )
    .await;
    let row = &r.json["result"]["tasks"][0];
    for k in ["id", "ufCrmTask", "ufTaskWebdavFiles", "ufMailMessage"] {
        assert!(row.get(k).is_some(), "{k} in {row}");
    }
    assert!(row.get("title").is_none(), "{row}");
    // The documented error for an order key that cannot be sorted by.
    let r = call(&url, json!({"order": {"DESCRIPTION": "ASC"}})).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json["error_description"],
        "Invalid sorting key (internal error)"
    );
    p.shutdown().await;
}

#[tokio::test]
async fn time_records_are_read_by_position_and_always_counted() {
    let p = portal(fast_config()).await;
    let url = m(&p, "task.elapseditem.getlist");
    // As a JSON list, positional: ORDER, FILTER, SELECT, PARAMS.
    let r = call(
        &url,
        json!([{"ID": "desc"}, {">ID": 290}, ["ID", "SECONDS"], {"NAV_PARAMS": {"nPageSize": 5, "iNumPage": 2}}]),
    )
    .await;
    assert_eq!(
        ids(&r.json["result"]),
        vec![295, 294, 293, 292, 291],
        "{}",
        r.text
    );
    assert_eq!(r.json["total"], 10);
    let keys: Vec<&String> = r.json["result"][0].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["ID", "SECONDS"]);
    // TASKID first narrows to one task.
    let truth = p.control().ground_truth("task_elapsed_time").unwrap();
    let task = truth[0]["TASK_ID"].clone();
    let want = truth.iter().filter(|r| r["TASK_ID"] == task).count();
    let r = call(&url, json!({"TASKID": task, "ORDER": {"ID": "asc"}})).await;
    assert_eq!(r.json["total"], want, "{}", r.text);
    // A first argument that is no task id, or a scalar where an array belongs, is the
    // documented invalid-parameters error.
    for body in [
        json!({"ORDER": "ID", "FILTER": {}}),
        json!([{"ID": "asc"}, "ID"]),
    ] {
        let r = call(&url, body).await;
        assert_eq!(
            (r.status, r.json["error"].clone()),
            (400, json!("ERROR_CORE")),
            "{}",
            r.text
        );
    }
    p.shutdown().await;
}

#[tokio::test]
async fn calls_and_groups_page_like_legacy_lists() {
    let p = portal(fast_config()).await;
    let r = call(
        &m(&p, "voximplant.statistic.get"),
        json!({"SORT": "ID", "ORDER": "DESC", "start": 50}),
    )
    .await;
    let page = ids(&r.json["result"]);
    assert_eq!((page[0], page.len()), (350, 50));
    assert_eq!(
        (r.json["total"].clone(), r.json["next"].clone()),
        (json!(400), json!(100))
    );
    // start=-1: the first page without COUNT, `total` 0 and no `next`.
    let r = call(
        &m(&p, "voximplant.statistic.get"),
        json!({"FILTER": {">ID": 390}, "SORT": "ID", "ORDER": "ASC", "start": -1}),
    )
    .await;
    assert_eq!(ids(&r.json["result"]), (391..=400).collect::<Vec<_>>());
    assert_eq!(r.json["total"], 0);
    assert!(r.json.get("next").is_none());
    // Groups: default order ID DESC; GROUP_ID narrows to one.
    let r = call(&m(&p, "sonet_group.get"), json!({})).await;
    assert_eq!(ids(&r.json["result"]), (1..=8).rev().collect::<Vec<_>>());
    let r = call(&m(&p, "sonet_group.get"), json!({"GROUP_ID": 3})).await;
    assert_eq!(ids(&r.json["result"]), vec![3]);
    p.shutdown().await;
}

#[tokio::test]
async fn each_optional_scope_refuses_only_its_methods() {
    let p = portal(fast_config()).await;
    for (scope, method, other) in [
        ("task", "tasks.task.list", "voximplant.statistic.get"),
        ("task", "task.elapseditem.getlist", "sonet_group.get"),
        ("task", "task.stages.get", "crm.deal.list"),
        ("telephony", "voximplant.statistic.get", "tasks.task.list"),
        ("sonet_group", "sonet_group.get", "task.stages.get"),
    ] {
        p.control().set_scope_denied(scope, true);
        let r = call(&m(&p, method), json!({"entityId": 1})).await;
        assert_eq!(
            r.json["error"], "insufficient_scope",
            "{method} without {scope}"
        );
        let r = call(&m(&p, other), json!({"entityId": 1})).await;
        assert!(
            r.json.get("error").is_none(),
            "{other} without {scope}: {}",
            r.text
        );
        p.control().set_scope_denied(scope, false);
    }
    p.shutdown().await;
}
