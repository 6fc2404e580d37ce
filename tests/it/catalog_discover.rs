//! Catalog discovery and diff against the demo portal.
use b24ch::bitrix::governor::GovernorConfig;
use b24ch::bitrix::{AuthConfig, Client, ClientConfig, Governor};
use b24ch::catalog::{EntityKind, diff, discover};
use b24ch::config::Secret;
use bitrix24_emulator::{PortalConfig, RunningPortal, UserFieldSpec};

async fn portal() -> RunningPortal {
    let cfg = PortalConfig {
        time_scale: 100.0,
        ..Default::default()
    };
    bitrix24_emulator::start(cfg, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

fn client(p: &RunningPortal) -> Client {
    let cfg = ClientConfig::new(AuthConfig::Webhook {
        url: Secret::new(p.webhook_url()),
    });
    let gov = Governor::new(GovernorConfig {
        clock_scale: 100.0,
        ..GovernorConfig::standard()
    });
    Client::new(cfg, gov).unwrap()
}

#[tokio::test]
async fn discovers_the_first_wave_in_two_requests() {
    let p = portal().await;
    let c = client(&p);
    p.control().reset_counters();
    let cat = discover(&c).await.unwrap();
    assert_eq!(p.control().counters().requests_total, 2);
    let names: Vec<&str> = cat.entities.iter().map(|e| e.name.as_str()).collect();
    for want in [
        "crm_deal",
        "crm_lead",
        "crm_contact",
        "crm_company",
        "crm_activity",
        "crm_status",
        "crm_category",
        "crm_currency",
        "crm_stagehistory_lead",
        "crm_stagehistory_deal",
        "user",
        "department",
        "crm_dynamic_128",
        "crm_dynamic_130",
        "crm_dynamic_132",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    let deal = cat.entity("crm_deal").unwrap();
    assert_eq!(
        (deal.method.as_str(), deal.entity_type_id),
        ("crm.item", Some(2))
    );
    assert_eq!(deal.fields[0].code, "ID");
    assert_eq!(deal.fields[0].api_name, "id");
    assert!(deal.field("CONTACT_IDS").is_some_and(|f| f.multiple));
    // Column codes are upper-case (`upperName`). `crm.item.list` rows carry camelCase keys;
    // fields read with the companion `crm.deal.list` carry its (upper-case) keys.
    let companion = deal.companion.as_ref().expect("crm_deal has a companion");
    assert_eq!(companion.method, "crm.deal");
    let ufs: Vec<_> = deal.fields.iter().filter(|f| f.user_field).collect();
    assert!(!ufs.is_empty());
    let mut on_each_side = (0, 0);
    for f in &ufs {
        assert!(f.code.starts_with("UF_CRM_"), "{}", f.code);
        if companion.fields.contains(&f.code) {
            assert_eq!(f.api_name, f.code, "companion field {}", f.code);
            on_each_side.1 += 1;
        } else {
            assert!(f.api_name.starts_with("ufCrm"), "{}", f.api_name);
            on_each_side.0 += 1;
        }
    }
    assert!(on_each_side.0 > 0 && on_each_side.1 > 0, "{on_each_side:?}");
    assert!(
        deal.fields
            .iter()
            .any(|f| f.bitrix_type == "enumeration" && !f.options.is_empty()),
        "enumeration options missing"
    );
    let lead = cat.entity("crm_lead").unwrap();
    assert!(
        lead.field("PHONE")
            .is_some_and(|f| f.bitrix_type == "crm_multifield")
    );
    let spa = cat.entity("crm_dynamic_128").unwrap();
    assert_eq!(spa.kind, EntityKind::SmartProcess);
    assert_eq!(spa.title, "Проекты 🚀");
    assert_eq!(
        cat.entity("user").unwrap().field("ID").unwrap().bitrix_type,
        "integer"
    );
}

/// Field codes of a portal table as the emulator's catalog truth lists them.
fn portal_codes(p: &RunningPortal, table: &str) -> Vec<String> {
    let cat = p.control().catalog();
    let tables = cat["tables"].as_array().cloned().unwrap_or_default();
    let t = tables
        .iter()
        .find(|t| t["name"] == table)
        .unwrap_or_else(|| panic!("no portal table {table}"));
    let mut codes: Vec<String> = t["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap().to_string())
        .collect();
    codes.sort();
    codes
}

/// Reference entities take their fields from the live `*.fields` answers: exactly the fields
/// the portal's rows carry, with the documented types.
#[tokio::test]
async fn reference_entities_use_live_fields() {
    let p = portal().await;
    let cat = discover(&client(&p)).await.unwrap();
    for (entity, table) in [
        ("crm_activity", "activity"),
        ("crm_status", "status"),
        ("crm_currency", "currency"),
        ("crm_category", "category"),
        ("user", "user"),
        ("department", "department"),
    ] {
        let e = cat.entity(entity).unwrap();
        let mut codes: Vec<String> = e.fields.iter().map(|f| f.code.clone()).collect();
        codes.sort();
        assert_eq!(codes, portal_codes(&p, table), "{entity}");
    }
    let ty = |entity: &str, code: &str| {
        let f = cat.entity(entity).unwrap().field(code).unwrap();
        (f.bitrix_type.clone(), f.multiple)
    };
    assert_eq!(
        ty("crm_activity", "DESCRIPTION_TYPE").0,
        "crm_enum_contenttype"
    );
    assert_eq!(ty("crm_activity", "SETTINGS"), ("object".into(), false));
    assert_eq!(ty("crm_currency", "DECIMALS").0, "int");
    assert_eq!(ty("crm_status", "EXTRA").0, "crm_status_extra");
    // `char` in crm.status.fields, but S/F/empty: kept as text.
    assert_eq!(ty("crm_status", "SEMANTICS").0, "string");
    // Title maps: types from the static list, labels from the portal.
    assert_eq!(ty("user", "UF_DEPARTMENT"), ("integer".into(), true));
    let user = cat.entity("user").unwrap();
    assert_eq!(
        user.field("PERSONAL_CITY").unwrap().label,
        "City of Residence"
    );
    // Pipelines of every type in one entity, told apart by ENTITY_TYPE_ID.
    let pipelines = cat.entity("crm_category").unwrap();
    assert_eq!(pipelines.entity_type_id, None);
    assert_eq!(
        pipelines.field("ENTITY_TYPE_ID").unwrap().api_name,
        "entityTypeId"
    );
    assert_eq!(pipelines.fields[0].code, "ID");
}

#[tokio::test]
async fn non_admin_falls_back_to_ownertype() {
    let p = portal().await;
    p.control().set_crm_admin(false);
    let cat = discover(&client(&p)).await.unwrap();
    for eid in [128, 130, 132] {
        let e = cat.entity(&format!("crm_dynamic_{eid}")).unwrap();
        assert_eq!(e.entity_type_id, Some(eid));
    }
}

#[tokio::test]
async fn diff_sees_new_smart_process_user_field_option_and_removal() {
    let p = portal().await;
    let c = client(&p);
    let before = discover(&c).await.unwrap();
    assert!(diff(&before, &before).is_empty());

    let eid = p
        .control()
        .add_smart_process(None, "New process", 3)
        .unwrap();
    let code = p
        .control()
        .add_user_field(
            "lead",
            &UserFieldSpec {
                code: None,
                user_type: "enumeration".into(),
                multiple: true,
                label: Some("Channel".into()),
                fill: false,
            },
        )
        .unwrap();
    let enum_field = before
        .entity("crm_lead")
        .unwrap()
        .fields
        .iter()
        .find(|f| f.bitrix_type == "enumeration")
        .map(|f| f.code.clone());
    let new_option = enum_field
        .as_ref()
        .map(|f| p.control().add_enum_option("lead", f, "Brand new").unwrap());
    p.control().remove_smart_process(130).unwrap();

    let after = discover(&c).await.unwrap();
    let d = diff(&before, &after);
    assert!(
        d.new_entities.contains(&format!("crm_dynamic_{eid}")),
        "{d:?}"
    );
    assert!(
        d.removed_entities.contains(&"crm_dynamic_130".to_string()),
        "{d:?}"
    );
    let lead = d.changed.iter().find(|e| e.entity == "crm_lead").unwrap();
    let added = lead.new_fields.iter().find(|f| f.code == code).unwrap();
    assert!(added.multiple && added.user_field);
    assert_eq!(added.bitrix_type, "enumeration");
    assert_eq!(added.label, "Channel");
    if let (Some(field), Some(id)) = (enum_field, new_option) {
        let opts = lead.new_options.iter().find(|o| o.code == field).unwrap();
        assert_eq!(opts.options.len(), 1);
        assert_eq!(opts.options[0].id, id);
        assert_eq!(opts.options[0].value, "Brand new");
    }
}
