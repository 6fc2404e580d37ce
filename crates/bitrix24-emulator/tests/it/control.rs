//! Control API and ground truth: mutations are visible through the REST API, the dump matches
//! what the API serves, generation is deterministic and cheap.

use crate::support::*;
use bitrix24_emulator::{DataSizes, UserFieldSpec};
use serde_json::{Map, Value, json};

#[tokio::test]
async fn ground_truth_matches_api_values() {
    let p = portal(fast_config()).await;
    let truth = p.control().ground_truth("deal").unwrap();
    assert_eq!(truth.len(), 240);
    let r = call(&m(&p, "crm.item.list"), json!({"entityTypeId": 2, "select": ["*", "UF_*"], "filter": {"<=id": 50}, "useOriginalUfNames": "Y"})).await;
    let fields = call(
        &m(&p, "crm.item.fields"),
        json!({"entityTypeId": 2, "useOriginalUfNames": "Y"}),
    )
    .await
    .json["result"]["fields"]
        .clone();
    for item in r.json["result"]["items"].as_array().unwrap() {
        let id = item["id"].as_u64().unwrap() as usize;
        let t = &truth[id - 1];
        assert_eq!(t["ID"], json!(id));
        for (name, v) in item.as_object().unwrap() {
            let Some(desc) = fields.get(name) else {
                continue;
            };
            let upper = desc["upperName"].as_str().unwrap();
            let code = match upper {
                "CREATED_TIME" => "DATE_CREATE",
                "UPDATED_TIME" => "DATE_MODIFY",
                "CREATED_BY" => "CREATED_BY_ID",
                "UPDATED_BY" => "MODIFY_BY_ID",
                "MOVED_BY" => "MOVED_BY_ID",
                u => u,
            };
            let tv = &t[code];
            match desc["type"].as_str().unwrap() {
                "datetime" if !v.is_null() => {
                    let parsed = chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
                    assert_eq!(
                        parsed.naive_utc().format("%Y-%m-%d %H:%M:%S").to_string(),
                        tv.as_str().unwrap(),
                        "{code}"
                    );
                }
                "money" => assert_eq!(v.is_null(), tv.is_null(), "{code}"),
                "double" if code == "OPPORTUNITY" => {
                    assert_eq!(format!("{:.2}", v.as_f64().unwrap()), tv.as_str().unwrap());
                }
                "boolean" => assert_eq!(v == "Y", tv == &json!(true), "{code}"),
                // crm.item prints 0 where these columns hold no reference (RenderStyle).
                "integer" | "crm_company" | "crm_contact"
                    if v == &json!(0)
                        && ["COMPANY_ID", "CONTACT_ID", "MYCOMPANY_ID", "WEBFORM_ID"]
                            .contains(&code) =>
                {
                    assert!(tv.is_null(), "{code}: 0 for {tv}");
                }
                "integer" | "user" | "crm_category" | "crm_company" | "crm_contact"
                | "crm_lead" | "crm_entity" | "enumeration" | "employee" => {
                    assert_eq!(v, tv, "{code}");
                }
                "string" | "crm_status" | "crm_currency" | "url" | "address" | "crm" => {
                    assert_eq!(v, tv, "{code}")
                }
                _ => {}
            }
        }
        assert_eq!(item["contactIds"], t["CONTACT_IDS"]);
    }
    // Money UF: amount + currency columns.
    let money = truth[0]
        .keys()
        .find(|k| k.ends_with("_CURRENCY") && k.starts_with("UF_"))
        .unwrap();
    let amount_key = money.trim_end_matches("_CURRENCY");
    let row = truth.iter().find(|r| !r[amount_key].is_null()).unwrap();
    let amount = row[amount_key].as_str().unwrap();
    assert_eq!(
        amount.split('.').nth(1).map(str::len),
        Some(2),
        "two decimals: {amount}"
    );
    p.shutdown().await;
}

#[tokio::test]
async fn modify_delete_and_explicit_time() {
    let p = portal(fast_config()).await;
    let ctl = p.control();
    let before = ctl.now();
    let mut set = Map::new();
    set.insert("TITLE".into(), json!("Изменено \"new\" <b>"));
    set.insert("OPPORTUNITY".into(), json!("1500.00"));
    assert_eq!(
        ctl.modify_rows("deal", &[5, 6, 99_999], &set, None)
            .unwrap(),
        2
    );
    let r = call(&m(&p, "crm.deal.list"), json!({"select": ["ID", "TITLE", "OPPORTUNITY", "DATE_MODIFY"], "filter": {">=DATE_MODIFY": chrono::DateTime::from_timestamp(before as i64 - 1, 0).unwrap().to_rfc3339()}})).await;
    let ids: Vec<&str> = r.json["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["ID"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["5", "6"]);
    assert_eq!(r.json["result"][0]["TITLE"], "Изменено \"new\" <b>");
    assert_eq!(r.json["result"][0]["OPPORTUNITY"], "1500.00");
    assert!(r.text.contains("\\u0022new\\u0022 \\u003Cb\\u003E"));
    // Same-second modifications with an explicit time.
    ctl.modify_rows("deal", &[7, 8], &Map::new(), Some(1_900_000_000))
        .unwrap();
    let t = ctl.ground_truth("deal").unwrap();
    assert_eq!(t[6]["DATE_MODIFY"], "2030-03-17 17:46:40");
    assert_eq!(t[7]["DATE_MODIFY"], t[6]["DATE_MODIFY"]);
    let it = call(&m(&p, "crm.item.get"), json!({"entityTypeId": 2, "id": 7})).await;
    assert_eq!(
        it.json["result"]["item"]["updatedTime"],
        "2030-03-17T20:46:40+03:00"
    );
    // Deletion.
    assert_eq!(ctl.delete_rows("deal", &[1, 2, 2]).unwrap(), 2);
    let r = call(
        &m(&p, "crm.deal.list"),
        json!({"select": ["ID"], "filter": {"<=ID": 3}}),
    )
    .await;
    assert_eq!(r.json["total"], 1);
    assert_eq!(ctl.ground_truth("deal").unwrap().len(), 238);
    let g = call(&m(&p, "crm.deal.get"), json!({"id": 1})).await;
    assert_eq!(g.json["error_description"], "Not found");
    assert!(ctl.modify_rows("nope", &[1], &Map::new(), None).is_err());
    let mut bad = Map::new();
    bad.insert("NO_SUCH".into(), json!(1));
    assert!(ctl.modify_rows("deal", &[3], &bad, None).is_err());
    p.shutdown().await;
}

#[tokio::test]
async fn user_fields_enum_options_and_smart_processes() {
    let p = portal(fast_config()).await;
    let ctl = p.control();
    let spec = UserFieldSpec {
        code: Some("UF_CRM_NEW_TAGS".into()),
        user_type: "enumeration".into(),
        multiple: true,
        label: Some("Теги 'new'".into()),
        fill: true,
    };
    let code = ctl.add_user_field("deal", &spec).unwrap();
    assert_eq!(code, "UF_CRM_NEW_TAGS");
    let opt = ctl
        .add_enum_option("deal", &code, "Новая опция ✨")
        .unwrap();
    let f = call(&m(&p, "crm.deal.fields"), json!({})).await;
    let d = &f.json["result"]["UF_CRM_NEW_TAGS"];
    assert_eq!(d["isMultiple"], true);
    assert_eq!(d["type"], "enumeration");
    assert!(
        d["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["ID"].as_str() == Some(opt.to_string().as_str())
                && i["VALUE"] == "Новая опция ✨")
    );
    let uf = call(
        &m(&p, "crm.deal.userfield.list"),
        json!({"filter": {"FIELD_NAME": "UF_CRM_NEW_TAGS"}}),
    )
    .await;
    assert_eq!(uf.json["total"], 1);
    let truth = ctl.ground_truth("deal").unwrap();
    assert!(
        truth.iter().any(|r| r["UF_CRM_NEW_TAGS"]
            .as_array()
            .is_some_and(|a| !a.is_empty())),
        "filled"
    );
    let l = call(
        &m(&p, "crm.deal.list"),
        json!({"select": ["ID", "UF_CRM_NEW_TAGS"], "filter": {"<=ID": 50}}),
    )
    .await;
    for row in l.json["result"].as_array().unwrap() {
        let id: usize = row["ID"].as_str().unwrap().parse().unwrap();
        let t = &truth[id - 1]["UF_CRM_NEW_TAGS"];
        match &row["UF_CRM_NEW_TAGS"] {
            Value::Bool(false) => assert_eq!(t, &json!([])),
            Value::Array(a) => {
                let ids: Vec<Value> = a
                    .iter()
                    .map(|x| json!(x.as_str().unwrap().parse::<u64>().unwrap()))
                    .collect();
                assert_eq!(&Value::Array(ids), t);
            }
            other => panic!("{other}"),
        }
    }
    assert!(ctl.add_user_field("deal", &spec).is_err(), "duplicate");
    let empty = UserFieldSpec {
        code: None,
        user_type: "money".into(),
        multiple: false,
        label: None,
        fill: false,
    };
    let money = ctl.add_user_field("contact", &empty).unwrap();
    assert!(
        ctl.ground_truth("contact")
            .unwrap()
            .iter()
            .all(|r| r[&money].is_null() && r[&format!("{money}_CURRENCY")].is_null())
    );

    let etid = ctl.add_smart_process(None, "Новый 🆕", 7).unwrap();
    let types = call(&m(&p, "crm.type.list"), json!({})).await;
    assert!(
        types.json["result"]["types"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["entityTypeId"] == etid)
    );
    let items = call(&m(&p, "crm.item.list"), json!({"entityTypeId": etid})).await;
    assert_eq!(items.json["total"], 7);
    let own = call(&m(&p, "crm.enum.ownertype"), json!({})).await;
    assert!(own.text.contains(&format!("DYNAMIC_{etid}")));
    ctl.remove_smart_process(etid).unwrap();
    let gone = call(&m(&p, "crm.item.list"), json!({"entityTypeId": etid})).await;
    assert_eq!(
        (gone.status, gone.json["error"].as_str()),
        (400, Some("NOT_FOUND"))
    );
    assert!(ctl.remove_smart_process(etid).is_err());
    ctl.remove_smart_process(128).unwrap();
    let f = call(&m(&p, "crm.deal.fields"), json!({})).await;
    assert!(
        f.json["result"].get("PARENT_ID_128").is_none(),
        "relation removed with the type"
    );
    p.shutdown().await;
}

#[tokio::test]
async fn control_over_http() {
    let p = portal(fast_config()).await;
    let base = format!("{}/_control", p.base_url());
    let post = |path: &str, body: Value| {
        let url = format!("{base}/{path}");
        async move { call(&url, body).await }
    };
    let r = post(
        "rows/modify",
        json!({"table": "lead", "ids": [3], "modify_time": "2031-01-02 03:04:05"}),
    )
    .await;
    assert_eq!(r.json["modified"], 1);
    let t = get(&format!("{base}/ground_truth/lead")).await;
    assert_eq!(t.json[2]["DATE_MODIFY"], "2031-01-02 03:04:05");
    assert_eq!(
        post("rows/delete", json!({"table": "lead", "ids": [3]}))
            .await
            .json["deleted"],
        1
    );
    let sp = post("smart_process/add", json!({"title": "HTTP SP", "items": 3})).await;
    let etid = sp.json["entity_type_id"].as_u64().unwrap();
    let uf = post(
        "user_field/add",
        json!({"table": format!("dynamic_{etid}"), "user_type": "boolean"}),
    )
    .await;
    let code = uf.json["code"].as_str().unwrap().to_string();
    assert!(code.starts_with("UF_CRM_4_"), "{code}");
    let cat = get(&format!("{base}/catalog")).await;
    let tables = cat.json["tables"].as_array().unwrap();
    let spt = tables.iter().find(|t| t["entity_type_id"] == etid).unwrap();
    assert!(
        spt["fields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["code"] == code && f["item_name"].as_str().unwrap().starts_with("ufCrm4_"))
    );
    let deal = tables.iter().find(|t| t["name"] == "deal").unwrap();
    let en = deal["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["type"] == "enumeration" && f["multiple"] == true)
        .unwrap();
    assert!(!en["options"].as_array().unwrap().is_empty());
    assert_eq!(
        post(
            "enum_option/add",
            json!({"table": "deal", "field": en["code"], "value": "x"})
        )
        .await
        .status,
        200
    );
    assert_eq!(
        post("smart_process/remove", json!({"entity_type_id": etid}))
            .await
            .status,
        200
    );
    call(&m(&p, "crm.deal.list"), json!({})).await;
    let c = get(&format!("{base}/counters")).await;
    assert_eq!(c.json["per_method"]["crm.deal.list"], 1);
    assert_eq!(c.json["count_queries"], 1);
    post("counters/reset", json!({})).await;
    assert_eq!(
        get(&format!("{base}/counters")).await.json["requests_total"],
        0
    );
    let now = get(&format!("{base}/clock")).await.json["now"]
        .as_f64()
        .unwrap();
    let later = post("clock/advance", json!({"secs": 100})).await.json["now"]
        .as_f64()
        .unwrap();
    assert!(later >= now + 100.0);
    assert_eq!(
        post("rows/modify", json!({"table": "nope", "ids": [1]}))
            .await
            .status,
        400
    );
    let all = get(&format!("{base}/ground_truth")).await;
    for t in [
        "deal",
        "lead",
        "contact",
        "company",
        "user",
        "department",
        "activity",
        "status",
        "category",
        "currency",
        "stagehistory_deal",
        "dynamic_130",
    ] {
        assert!(all.json.get(t).is_some(), "{t}");
    }
    let cfg = get(&format!("{base}/config")).await;
    assert_eq!(cfg.json["webhook_url"], p.webhook_url());
    p.shutdown().await;
}

#[tokio::test]
async fn deterministic_and_cheap_for_large_portals() {
    let a = portal(fast_config()).await;
    let b = portal(fast_config()).await;
    assert_eq!(
        a.control().ground_truth("deal").unwrap(),
        b.control().ground_truth("deal").unwrap()
    );
    let mut other = fast_config();
    other.seed = 7;
    let c = portal(other).await;
    assert_ne!(
        a.control().ground_truth("deal").unwrap(),
        c.control().ground_truth("deal").unwrap()
    );
    let mut big = fast_config();
    big.sizes = DataSizes {
        deals: 100_000,
        ..DataSizes::default()
    };
    let t0 = std::time::Instant::now();
    let p = portal(big).await;
    assert!(
        t0.elapsed().as_secs_f64() < 2.0,
        "start took {:?}",
        t0.elapsed()
    );
    let r = call(
        &m(&p, "crm.deal.list"),
        json!({"select": ["ID"], "start": -1, "order": {"ID": "DESC"}}),
    )
    .await;
    assert_eq!(r.json["result"][0]["ID"], "100000");
    let r = call(
        &m(&p, "crm.deal.list"),
        json!({"select": ["ID"], "start": 0}),
    )
    .await;
    assert_eq!(r.json["total"], 100_000);
    for x in [a, b, c, p] {
        x.shutdown().await;
    }
}

#[tokio::test]
async fn reference_methods() {
    let p = portal(fast_config()).await;
    let u = call(&m(&p, "user.get"), json!({"sort": "ID", "order": "DESC"})).await;
    assert_eq!(u.json["result"][0]["ID"], "12");
    assert_eq!(u.json["total"], 12);
    let u = call(&m(&p, "user.get"), json!({"start": 7})).await;
    assert_eq!(u.json["result"][0]["ID"], "8", "user.get offset is exact");
    let empty = call(&m(&p, "user.get"), json!({"start": 100})).await;
    assert_eq!(empty.json["result"], json!([]));
    assert!(empty.json.get("total").is_none(), "empty page has no total");
    let f = call(&m(&p, "user.get"), json!({"FILTER": {"ID": 3}})).await;
    assert_eq!(f.json["total"], 1);
    let s = call(
        &m(&p, "crm.status.list"),
        json!({"filter": {"ENTITY_ID": "DEAL_STAGE_1"}}),
    )
    .await;
    assert!(
        s.json["result"][0]["STATUS_ID"]
            .as_str()
            .unwrap()
            .starts_with("C1:")
    );
    assert!(s.json.get("next").is_none());
    let cur = call(&m(&p, "crm.currency.list"), json!({})).await;
    assert_eq!(cur.json["total"], 3);
    let act = call(
        &m(&p, "crm.activity.list"),
        json!({"select": ["ID", "START_TIME", "SETTINGS"]}),
    )
    .await;
    let times: Vec<&str> = act.json["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["START_TIME"].as_str().unwrap())
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "default order START_TIME"
    );
    assert_eq!(act.json["result"][0]["SETTINGS"], json!([]));
    let sh = call(
        &m(&p, "crm.stagehistory.list"),
        json!({"entityTypeId": 1, "filter": {"OWNER_ID": 2}}),
    )
    .await;
    let items = sh.json["result"]["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert!(items[0].get("STATUS_ID").is_some() && items[0]["TYPE_ID"] == 1);
    let cats = call(&m(&p, "crm.category.list"), json!({"entityTypeId": 128})).await;
    assert_eq!(cats.json["result"]["categories"][0]["isDefault"], "Y");
    p.shutdown().await;
}

#[tokio::test]
async fn stage_history_of_smart_processes() {
    let p = portal(fast_config()).await;
    let items = p.control().ground_truth("dynamic_128").unwrap();
    let sh = call(
        &m(&p, "crm.stagehistory.list"),
        json!({"entityTypeId": 128, "filter": {"OWNER_ID": 3}}),
    )
    .await;
    let rows = sh.json["result"]["items"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{}", sh.json);
    let item = &items[2];
    assert_eq!(item["ID"], json!(3));
    // The creation record starts in the first stage; the last move lands on the item's stage.
    assert_eq!(rows[0]["TYPE_ID"], 1);
    assert!(rows[0]["STAGE_ID"].as_str().unwrap().starts_with("DT128_"));
    assert_eq!(rows[1]["STAGE_ID"], item["STAGE_ID"]);
    assert_eq!(rows[1]["CATEGORY_ID"], item["CATEGORY_ID"]);
    let truth = p
        .control()
        .ground_truth("stagehistory_dynamic_128")
        .unwrap();
    assert_eq!(truth.len(), items.len() * 2);
    assert_eq!(truth[4]["CREATED_TIME"], item["CREATED_TIME"]);
    // A new smart process has history; a removed one, and types without stages, answer NOT_FOUND.
    let etid = p.control().add_smart_process(None, "New", 7).unwrap();
    assert_eq!(
        p.control()
            .ground_truth(&format!("stagehistory_dynamic_{etid}"))
            .unwrap()
            .len(),
        14
    );
    p.control().remove_smart_process(etid).unwrap();
    for etid in [etid, 3] {
        let gone = call(
            &m(&p, "crm.stagehistory.list"),
            json!({"entityTypeId": etid}),
        )
        .await;
        assert_eq!(gone.json["error"], "NOT_FOUND", "{}", gone.json);
    }
    p.shutdown().await;
}

#[tokio::test]
async fn availability_switches_over_http() {
    let mut cfg = fast_config();
    cfg.missing_methods = vec!["crm.currency.list".into()];
    let p = portal(cfg).await;
    let ctl = |path: &str| format!("{}/_control/{path}", p.base_url());

    // A missing method: the documented 404 body, alone and inside a batch.
    let r = call(&m(&p, "crm.currency.list"), json!({})).await;
    assert_eq!(r.status, 404);
    assert_eq!(
        r.text,
        r#"{"error":"ERROR_METHOD_NOT_FOUND","error_description":"Method not found!"}"#
    );
    assert_eq!(
        call(&m(&p, "crm.currency.fields"), json!({})).await.status,
        200
    );
    let b = call(
        &m(&p, "batch"),
        json!({"cmd": {"c": "crm.currency.list", "s": "crm.status.list"}}),
    )
    .await;
    assert_eq!(b.status, 200);
    assert_eq!(
        b.json["result"]["result_error"]["c"]["error"],
        "ERROR_METHOD_NOT_FOUND"
    );
    assert!(b.json["result"]["result"]["s"].is_array());
    let r = call(
        &ctl("methods"),
        json!({"method": "crm.currency.list", "available": true}),
    )
    .await;
    assert_eq!(r.json["missing_methods"], json!([]));
    assert_eq!(
        call(&m(&p, "crm.currency.list"), json!({})).await.status,
        200
    );

    // Stage history of a smart process: each documented refusal shape; leads and deals keep it.
    let hist = |etid: u32| json!({"entityTypeId": etid, "filter": {}});
    for (mode, code, text) in [
        (
            "entity_type_not_supported",
            json!("ENTITY_TYPE_NOT_SUPPORTED"),
            "Entity type DYNAMIC_128 is not supported",
        ),
        (
            "legacy_zero",
            json!(0),
            "DYNAMIC_128 entity is not supported",
        ),
        (
            "not_found",
            json!("NOT_FOUND"),
            "entityTypeId is not supported",
        ),
    ] {
        let r = call(&ctl("stage_history"), json!({"smart_processes": mode})).await;
        assert_eq!(r.json["smart_stage_history"], mode);
        let r = call(&m(&p, "crm.stagehistory.list"), hist(128)).await;
        assert_eq!(r.status, 400, "{mode}");
        assert_eq!(r.json["error"], code, "{mode}");
        assert_eq!(r.json["error_description"], text, "{mode}");
        assert_eq!(
            call(&m(&p, "crm.stagehistory.list"), hist(2)).await.status,
            200
        );
    }
    let bad = call(&ctl("stage_history"), json!({"smart_processes": "maybe"})).await;
    assert_eq!(bad.status, 400);
    call(
        &ctl("stage_history"),
        json!({"smart_processes": "supported"}),
    )
    .await;
    assert_eq!(
        call(&m(&p, "crm.stagehistory.list"), hist(128))
            .await
            .status,
        200
    );

    // A denied scope: insufficient_scope for its methods only; empty description in a batch.
    call(&ctl("scopes"), json!({"scope": "user", "denied": true})).await;
    let r = call(&m(&p, "user.get"), json!({})).await;
    assert_eq!(r.json["error"], "insufficient_scope");
    assert_eq!(
        r.json["error_description"],
        "The request requires higher privileges than provided by the webhook token"
    );
    assert_eq!(call(&m(&p, "department.get"), json!({})).await.status, 200);
    let b = call(&m(&p, "batch"), json!({"cmd": {"u": "user.get"}})).await;
    assert_eq!(
        b.json["result"]["result_error"]["u"]["error"],
        "insufficient_scope"
    );
    assert_eq!(
        b.json["result"]["result_error"]["u"]["error_description"],
        ""
    );
    let r = get(&ctl("availability")).await;
    assert_eq!(r.json["denied_scopes"], json!(["user"]));
    call(&ctl("scopes"), json!({"scope": "user", "denied": false})).await;
    assert_eq!(call(&m(&p, "user.get"), json!({})).await.status, 200);
    p.shutdown().await;
}
