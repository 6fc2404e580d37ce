//! Normalisation of the real Bitrix24 responses in the shared fixtures: every encoding of
//! `docs/bitrix24-api.md` §6.3 that they show must come out as the concrete typed value.
use b24ch::catalog::{Entity, EntityKind, EnumOption, Field, fields_from_description};
use b24ch::schema::{
    Cell, ChType, Column, NormalizedRow, RowNormalizer, ServiceValues, ValueStyle, table_columns,
};
use serde_json::{Map, Value, json};

fn fixtures_dir() -> String {
    std::env::var("B24CH_FIXTURES").unwrap_or_else(|_| crate::common::FIXTURES.into())
}

fn load(name: &str) -> Value {
    let path = format!("{}/{name}", fixtures_dir());
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

use crate::common::field_as as field;

/// Legacy field whose api name is its code.
fn f(code: &str, t: &str) -> Field {
    field(code, code, t, false)
}

fn entity(name: &str, kind: EntityKind, fields: Vec<Field>) -> Entity {
    Entity {
        name: name.into(),
        kind,
        title: name.into(),
        method: name.into(),
        entity_type_id: None,
        companion: None,
        fields,
    }
}

const SERVICE: ServiceValues = ServiceValues {
    loaded_at_ms: 1_725_000_000_123,
    version: 1_725_000_000_123,
    is_deleted: false,
};

struct Table {
    columns: Vec<Column>,
    normalizer: RowNormalizer,
}

impl Table {
    fn new(e: &Entity, style: ValueStyle) -> Self {
        let columns = table_columns(e);
        let normalizer = RowNormalizer::new(&columns, style, &e.name);
        Table {
            columns,
            normalizer,
        }
    }

    fn row(&self, raw: &Value) -> Row<'_> {
        let map: &Map<String, Value> = raw.as_object().unwrap();
        let row = self.normalizer.normalize(map, &SERVICE);
        // The row path reads the same row from its JSON text: identical result.
        let text = serde_json::to_string(raw).unwrap();
        assert_eq!(
            self.normalizer.normalize_json(&text, &SERVICE).unwrap(),
            row
        );
        Row {
            columns: &self.columns,
            row,
        }
    }
}

struct Row<'a> {
    columns: &'a [Column],
    row: NormalizedRow,
}

impl Row<'_> {
    fn get(&self, name: &str) -> &Cell {
        let i = self
            .columns
            .iter()
            .position(|c| c.name == name)
            .unwrap_or_else(|| panic!("no column {name}"));
        &self.row.cells[i]
    }

    fn assert_clean(&self) {
        assert!(self.row.issues.is_empty(), "issues: {:?}", self.row.issues);
        assert_eq!(self.get("_invalid"), &Cell::Map(vec![]));
    }
}

/// Days since the epoch of a calendar date.
fn day(y: i32, m: u32, d: u32) -> Cell {
    let date = chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap();
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
    Cell::Date(i32::try_from((date - epoch).num_days()).unwrap())
}

/// Unix seconds of an RFC 3339 instant.
fn ts(s: &str) -> Cell {
    Cell::DateTime(chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp())
}

fn s(v: &str) -> Cell {
    Cell::Str(v.into())
}

fn pairs(p: &[(&str, &str)]) -> Cell {
    Cell::Pairs(
        p.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect(),
    )
}

fn deal_entity() -> Entity {
    let mut fields = fields_from_description(&load("crm.deal.fields.json"));
    fields.push(field(
        "PARENT_ID_1220",
        "PARENT_ID_1220",
        "crm_entity",
        false,
    ));
    fields.push(field(
        "UF_CRM_1721244482250",
        "UF_CRM_1721244482250",
        "string",
        false,
    ));
    entity("crm_deal", EntityKind::Crm, fields)
}

#[test]
fn deal_fields_map_to_the_design_types() {
    let columns = table_columns(&deal_entity());
    let sql = |name: &str| {
        columns
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.ch_type.sql())
            .unwrap()
    };
    assert_eq!(sql("ID"), "Int64");
    assert_eq!(sql("OPPORTUNITY"), "Nullable(Decimal(18, 2))");
    assert_eq!(sql("TAX_VALUE"), "Nullable(Decimal(18, 2))");
    assert_eq!(sql("PROBABILITY"), "Nullable(Int64)");
    assert_eq!(sql("COMPANY_ID"), "Nullable(UInt64)");
    assert_eq!(sql("CONTACT_IDS"), "Array(UInt64)");
    assert_eq!(sql("STAGE_ID"), "LowCardinality(Nullable(String))");
    assert_eq!(sql("BEGINDATE"), "Nullable(Date32)");
    assert_eq!(sql("DATE_MODIFY"), "Nullable(DateTime64(0, 'UTC'))");
    assert_eq!(sql("CLOSED"), "Nullable(Bool)");
    assert_eq!(sql("LOCATION_ID"), "Nullable(String)");
    assert_eq!(sql("dt_inserted"), "DateTime64(3, 'UTC')");
    assert_eq!(sql("_version"), "UInt64");
    assert_eq!(sql("_is_deleted"), "UInt8");
    assert_eq!(sql("_invalid"), "Map(String, String)");
    assert_eq!(
        b24ch::schema::cursor_column(&columns).map(|c| c.name.as_str()),
        Some("DATE_MODIFY")
    );
    assert_eq!(
        b24ch::schema::primary_key_column(&columns).map(|c| c.name.as_str()),
        Some("ID")
    );
}

#[test]
fn crm_deal_get_legacy_values() {
    let t = Table::new(&deal_entity(), ValueStyle::Legacy);
    let r = t.row(&load("crm.deal.get.json")["result"]);
    r.assert_clean();
    assert_eq!(r.get("ID"), &Cell::Int(410));
    assert_eq!(r.get("TITLE"), &s("New Deal #1"));
    assert_eq!(r.get("OPPORTUNITY"), &Cell::Decimal(100_000_000));
    assert_eq!(r.get("TAX_VALUE"), &Cell::Decimal(0));
    assert_eq!(r.get("PROBABILITY"), &Cell::Int(99));
    assert_eq!(r.get("IS_MANUAL_OPPORTUNITY"), &Cell::Bool(true));
    assert_eq!(r.get("CLOSED"), &Cell::Bool(false));
    assert_eq!(r.get("LEAD_ID"), &Cell::Null);
    assert_eq!(r.get("QUOTE_ID"), &Cell::Null);
    assert_eq!(r.get("COMPANY_ID"), &Cell::UInt(9));
    assert_eq!(r.get("CONTACT_ID"), &Cell::UInt(84));
    assert_eq!(r.get("CONTACT_IDS"), &Cell::Array(vec![]));
    assert_eq!(r.get("CATEGORY_ID"), &s("0"));
    assert_eq!(r.get("BEGINDATE"), &day(2024, 8, 30));
    assert_eq!(r.get("CLOSEDATE"), &day(2024, 9, 9));
    assert_eq!(r.get("DATE_CREATE"), &ts("2024-08-30T12:29:00Z"));
    assert_eq!(r.get("COMMENTS"), &s("[B]Example comment[/B]"));
    assert_eq!(r.get("UTM_CAMPAIGN"), &Cell::Null);
    assert_eq!(r.get("PARENT_ID_1220"), &Cell::UInt(22));
    assert_eq!(r.get("UF_CRM_1721244482250"), &s("Hello world!"));
    assert_eq!(r.get("dt_inserted"), &Cell::DateTime(1_725_000_000_123));
    assert_eq!(r.get("_version"), &Cell::UInt(1_725_000_000_123));
    assert_eq!(r.get("_is_deleted"), &Cell::UInt(0));
}

#[test]
fn crm_deal_list_money_is_exact() {
    let t = Table::new(&deal_entity(), ValueStyle::Legacy);
    let list = load("crm.deal.list.json");
    let rows: Vec<Row> = list["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|raw| t.row(raw))
        .collect();
    assert_eq!(rows.len(), 6);
    rows.iter().for_each(Row::assert_clean);
    assert_eq!(rows[0].get("OPPORTUNITY"), &Cell::Decimal(1_999_999));
    assert_eq!(rows[1].get("OPPORTUNITY"), &Cell::Decimal(2_000_000));
    assert_eq!(rows[0].get("DATE_CREATE"), &ts("2024-09-02T16:37:18Z"));
    assert_eq!(rows[2].get("DATE_CREATE"), &ts("2024-04-09T21:11:01Z"));
    assert_eq!(rows[5].get("ASSIGNED_BY_ID"), &Cell::UInt(6));
    // Not selected → absent → NULL, not an issue.
    assert_eq!(rows[0].get("BEGINDATE"), &Cell::Null);
}

fn lead_entity() -> Entity {
    let mut fields = vec![
        f("ID", "integer"),
        f("TITLE", "string"),
        f("HONORIFIC", "crm_status"),
        f("NAME", "string"),
        f("COMPANY_ID", "crm_company"),
        f("IS_RETURN_CUSTOMER", "char"),
        f("BIRTHDATE", "date"),
        f("OPPORTUNITY", "double"),
        f("HAS_PHONE", "char"),
        f("DATE_CREATE", "datetime"),
        f("DATE_CLOSED", "datetime"),
        f("MOVED_TIME", "datetime"),
        f("ADDRESS_LOC_ADDR_ID", "integer"),
    ];
    fields.push(field("PHONE", "PHONE", "crm_multifield", true));
    fields.push(field("EMAIL", "EMAIL", "crm_multifield", true));
    fields.push(field("IM", "IM", "crm_multifield", true));
    entity("crm_lead", EntityKind::Crm, fields)
}

#[test]
fn crm_lead_get_empty_dates_and_multifields() {
    let t = Table::new(&lead_entity(), ValueStyle::Legacy);
    let r = t.row(&load("crm.lead.get.json")["result"]);
    r.assert_clean();
    assert_eq!(r.get("ID"), &Cell::Int(123));
    assert_eq!(r.get("BIRTHDATE"), &Cell::Null);
    assert_eq!(r.get("DATE_CLOSED"), &Cell::Null);
    assert_eq!(r.get("NAME"), &s(""));
    assert_eq!(r.get("HONORIFIC"), &Cell::Null);
    assert_eq!(r.get("OPPORTUNITY"), &Cell::Decimal(0));
    assert_eq!(r.get("HAS_PHONE"), &Cell::Bool(false));
    assert_eq!(r.get("DATE_CREATE"), &ts("2024-05-23T16:18:25Z"));
    assert_eq!(r.get("PHONE"), &pairs(&[("+15454777777", "OTHER")]));
    assert_eq!(
        r.get("IM"),
        &pairs(&[("imol|livechat|1|67|21", "OPENLINE")])
    );
    assert_eq!(r.get("EMAIL"), &pairs(&[]));
}

#[test]
fn crm_contact_list_emails() {
    let fields = vec![
        f("ID", "integer"),
        f("NAME", "string"),
        f("EXPORT", "char"),
        f("DATE_CREATE", "datetime"),
        field("EMAIL", "EMAIL", "crm_multifield", true),
    ];
    let t = Table::new(
        &entity("crm_contact", EntityKind::Crm, fields),
        ValueStyle::Legacy,
    );
    let list = load("crm.contact.list.json");
    let r = t.row(&list["result"][0]);
    r.assert_clean();
    assert_eq!(r.get("ID"), &Cell::Int(75));
    assert_eq!(r.get("EXPORT"), &Cell::Bool(true));
    assert_eq!(r.get("DATE_CREATE"), &ts("2024-02-25T22:00:00Z"));
    assert_eq!(
        r.get("EMAIL"),
        &pairs(&[("special-for@example.com", "WORK")])
    );
}

fn typed_lead_entity() -> Entity {
    let spec: &[(&str, &str, bool)] = &[
        ("id", "integer", false),
        ("createdTime", "datetime", false),
        ("dateCreateShort", "date", false),
        ("assignedById", "user", false),
        ("opened", "boolean", false),
        ("companyId", "crm_company", false),
        ("stageId", "crm_status", false),
        ("opportunity", "double", false),
        ("currencyId", "crm_currency", false),
        ("title", "string", false),
        ("dateClosed", "date", false),
        ("birthdate", "date", false),
        ("hasImol", "boolean", false),
        ("movedTime", "datetime", false),
        ("ufCrm_1720019876534", "string", false),
        ("parentId1222", "crm_entity", false),
        ("observers", "user", true),
        ("contactIds", "crm_contact", true),
        ("phone", "crm_multifield", true),
        ("email", "crm_multifield", true),
        ("fm", "crm_multifield", true),
    ];
    let fields = spec
        .iter()
        .map(|(api, t, m)| {
            let code = b24ch::catalog::field_description::camel_to_upper_snake(api);
            field(&code, api, t, *m)
        })
        .collect();
    entity("crm_lead", EntityKind::Crm, fields)
}

#[test]
fn crm_item_get_typed_values() {
    let t = Table::new(&typed_lead_entity(), ValueStyle::Typed);
    let r = t.row(&load("crm.item.get.docs-lead.json")["result"]["item"]);
    r.assert_clean();
    assert_eq!(r.get("ID"), &Cell::Int(250));
    assert_eq!(r.get("CREATED_TIME"), &ts("2024-07-22T16:00:08Z"));
    assert_eq!(r.get("DATE_CREATE_SHORT"), &Cell::Null);
    assert_eq!(r.get("ASSIGNED_BY_ID"), &Cell::UInt(1));
    assert_eq!(r.get("OPENED"), &Cell::Bool(true));
    assert_eq!(r.get("HAS_IMOL"), &Cell::Bool(false));
    // crm.item prints 0 for "no company": an id reference with no target is NULL.
    assert_eq!(r.get("COMPANY_ID"), &Cell::Null);
    assert_eq!(r.get("OPPORTUNITY"), &Cell::Decimal(99_990));
    assert_eq!(r.get("CURRENCY_ID"), &s("USD"));
    assert_eq!(r.get("DATE_CLOSED"), &Cell::Null);
    assert_eq!(r.get("BIRTHDATE"), &day(2000, 1, 1));
    assert_eq!(r.get("UF_CRM_1720019876534"), &s("321"));
    assert_eq!(r.get("PARENT_ID_1222"), &Cell::Null);
    assert_eq!(r.get("OBSERVERS"), &Cell::Array(vec![]));
    assert_eq!(r.get("CONTACT_IDS"), &Cell::Array(vec![]));
    // Typed rows carry multifields in `fm`; the flat `phone` key holds just one value.
    assert_eq!(r.get("PHONE"), &pairs(&[("+6111111111", "WORK")]));
    assert_eq!(r.get("EMAIL"), &pairs(&[("admin@example.com", "WORK")]));
    assert_eq!(
        r.get("FM"),
        &pairs(&[
            ("+6111111111", "PHONE:WORK"),
            ("admin@example.com", "EMAIL:WORK")
        ])
    );
}

#[test]
fn crm_item_fields_parse_and_list_values() {
    let fields = fields_from_description(&load("crm.item.fields.json"));
    let opportunity = fields.iter().find(|f| f.api_name == "opportunity").unwrap();
    assert_eq!(opportunity.code, "OPPORTUNITY");
    assert_eq!(opportunity.bitrix_type, "double");
    let observers = fields.iter().find(|f| f.api_name == "observers").unwrap();
    assert!(observers.multiple);
    let opened = fields.iter().find(|f| f.api_name == "opened").unwrap();
    assert!(opened.required);
    assert_eq!(fields[0].code, "ID");

    let t = Table::new(
        &entity("crm_dynamic_1268", EntityKind::SmartProcess, fields),
        ValueStyle::Typed,
    );
    let list = load("crm.item.list.docs-leads.json");
    let items = list["result"]["items"].as_array().unwrap();
    let expected = [
        (253, 1_900_000, 6),
        (255, 1_960_000, 1),
        (252, 1_200_000, 1),
        (254, 1_900_000, 6),
    ];
    for (raw, (id, amount, assigned)) in items.iter().zip(expected) {
        let r = t.row(raw);
        r.assert_clean();
        assert_eq!(r.get("ID"), &Cell::Int(id));
        assert_eq!(r.get("OPPORTUNITY"), &Cell::Decimal(amount));
        assert_eq!(r.get("ASSIGNED_BY_ID"), &Cell::UInt(assigned));
        assert_eq!(r.get("IS_MANUAL_OPPORTUNITY"), &Cell::Bool(true));
    }
}

#[test]
fn crm_company_fields_user_fields_and_types() {
    let fields = fields_from_description(&load("crm.company.fields.json"));
    let uf = fields
        .iter()
        .find(|f| f.code == "UF_CRM_1687188367")
        .unwrap();
    assert!(uf.user_field);
    assert_eq!(uf.bitrix_type, "crm");
    assert_eq!(uf.label, "Subsidiary");
    let title = fields.iter().find(|f| f.code == "TITLE").unwrap();
    assert!(!title.user_field);
    let columns = table_columns(&entity("crm_company", EntityKind::Crm, fields));
    let ty = |name: &str| {
        columns
            .iter()
            .find(|c| c.name == name)
            .unwrap()
            .ch_type
            .clone()
    };
    assert_eq!(ty("PHONE"), ChType::MultiField);
    // File fields: the file id, and its download path beside it.
    assert_eq!(ty("UF_CRM_1687188367"), ChType::String.nullable());
    assert_eq!(ty("LOGO"), ChType::UInt64.nullable());
    assert_eq!(ty("LOGO_URL"), ChType::String.nullable());
    assert_eq!(ty("PARENT_ID_156"), ChType::UInt64.nullable());
    // Company revenue is money: Decimal(18,2), like OPPORTUNITY.
    assert_eq!(ty("REVENUE"), ChType::money().nullable());
    assert_eq!(ty("CONTACT_ID"), ChType::UInt64.array());
}

#[test]
fn user_get_timestamp_objects_and_dates() {
    let fields = vec![
        f("ID", "integer"),
        f("ACTIVE", "boolean"),
        f("LAST_LOGIN", "datetime"),
        f("DATE_REGISTER", "date"),
        f("IS_ONLINE", "char"),
        f("TIMESTAMP_X", "datetime"),
        f("LAST_ACTIVITY_DATE", "datetime"),
        f("PERSONAL_BIRTHDAY", "date"),
        f("UF_EMPLOYMENT_DATE", "date"),
        field("UF_DEPARTMENT", "UF_DEPARTMENT", "iblock_section", true),
        f("USER_TYPE", "string"),
        f("SECOND_NAME", "string"),
    ];
    let t = Table::new(
        &entity("user", EntityKind::Reference, fields),
        ValueStyle::Legacy,
    );
    let users = load("user.get.json");
    let a = t.row(&users["result"][0]);
    a.assert_clean();
    assert_eq!(a.get("ID"), &Cell::Int(1));
    assert_eq!(a.get("ACTIVE"), &Cell::Bool(true));
    assert_eq!(a.get("LAST_LOGIN"), &ts("2024-07-25T13:06:54Z"));
    assert_eq!(a.get("DATE_REGISTER"), &day(2024, 7, 15));
    assert_eq!(a.get("IS_ONLINE"), &Cell::Bool(true));
    assert_eq!(a.get("TIMESTAMP_X"), &Cell::Null);
    assert_eq!(a.get("LAST_ACTIVITY_DATE"), &Cell::Null);
    assert_eq!(a.get("PERSONAL_BIRTHDAY"), &day(2018, 7, 14));
    assert_eq!(a.get("UF_EMPLOYMENT_DATE"), &Cell::Null);
    assert_eq!(a.get("UF_DEPARTMENT"), &Cell::Array(vec![Cell::UInt(1)]));
    assert_eq!(a.get("SECOND_NAME"), &s(""));
    let b = t.row(&users["result"][1]);
    b.assert_clean();
    assert_eq!(b.get("PERSONAL_BIRTHDAY"), &Cell::Null);
    assert_eq!(b.get("IS_ONLINE"), &Cell::Bool(false));
    assert_eq!(b.get("SECOND_NAME"), &Cell::Null);
}

#[test]
fn department_get_mixed_number_encodings() {
    let fields = vec![
        f("ID", "integer"),
        f("NAME", "string"),
        f("SORT", "integer"),
        f("PARENT", "integer"),
        field("UF_HEAD", "UF_HEAD", "employee", false),
    ];
    let t = Table::new(
        &entity("department", EntityKind::Reference, fields),
        ValueStyle::Legacy,
    );
    let deps = load("department.get.json");
    let r = t.row(&deps["result"][0]);
    r.assert_clean();
    assert_eq!(r.get("ID"), &Cell::Int(15));
    assert_eq!(r.get("NAME"), &s("R&D"));
    assert_eq!(r.get("SORT"), &Cell::Int(500));
    assert_eq!(r.get("PARENT"), &Cell::Int(1));
    assert_eq!(r.get("UF_HEAD"), &Cell::Null);
}

#[test]
fn crm_status_list_nested_objects_stay_raw() {
    let fields = vec![
        f("ID", "integer"),
        f("ENTITY_ID", "string"),
        f("STATUS_ID", "string"),
        f("SORT", "integer"),
        f("SYSTEM", "char"),
        f("CATEGORY_ID", "integer"),
        f("SEMANTICS", "string"),
        f("EXTRA", "object"),
    ];
    let t = Table::new(
        &entity("crm_status", EntityKind::Reference, fields),
        ValueStyle::Legacy,
    );
    let list = load("crm.status.list.json");
    let r = t.row(&list["result"][0]);
    r.assert_clean();
    assert_eq!(r.get("ID"), &Cell::Int(101));
    assert_eq!(r.get("SORT"), &Cell::Int(10));
    assert_eq!(r.get("SYSTEM"), &Cell::Bool(true));
    assert_eq!(r.get("CATEGORY_ID"), &Cell::Null);
    assert_eq!(r.get("SEMANTICS"), &Cell::Null);
    // serde_json sorts object keys unless preserve_order is on; compare parsed JSON.
    let Cell::Str(extra) = r.get("EXTRA") else {
        panic!("EXTRA not a string")
    };
    let extra: Value = serde_json::from_str(extra).unwrap();
    assert_eq!(extra, json!({"SEMANTICS": "process", "COLOR": "#39A8EF"}));
}

#[test]
fn crm_category_list_typed_flags() {
    let fields = vec![
        field("ID", "id", "integer", false),
        field("NAME", "name", "string", false),
        field("SORT", "sort", "integer", false),
        field("ENTITY_TYPE_ID", "entityTypeId", "integer", false),
        field("IS_DEFAULT", "isDefault", "boolean", false),
        field("ORIGIN_ID", "originId", "string", false),
    ];
    let t = Table::new(
        &entity("crm_category", EntityKind::Reference, fields),
        ValueStyle::Typed,
    );
    let list = load("crm.category.list.json");
    let cats = list["result"]["categories"].as_array().unwrap();
    let first = t.row(&cats[0]);
    first.assert_clean();
    assert_eq!(first.get("ID"), &Cell::Int(9));
    assert_eq!(first.get("IS_DEFAULT"), &Cell::Bool(false));
    assert_eq!(first.get("ORIGIN_ID"), &s(""));
    let general = t.row(&cats[3]);
    general.assert_clean();
    assert_eq!(general.get("ID"), &Cell::Int(0));
    assert_eq!(general.get("IS_DEFAULT"), &Cell::Bool(true));
    assert_eq!(general.get("ORIGIN_ID"), &Cell::Null);
}

#[test]
fn crm_stagehistory_list_json_numbers() {
    let fields = vec![
        f("ID", "integer"),
        f("TYPE_ID", "integer"),
        f("OWNER_ID", "crm_entity"),
        f("CREATED_TIME", "datetime"),
        f("CATEGORY_ID", "integer"),
        f("STAGE_ID", "crm_status"),
    ];
    let columns_entity = entity("crm_stagehistory_deal", EntityKind::History, fields);
    let t = Table::new(&columns_entity, ValueStyle::Legacy);
    let list = load("crm.stagehistory.list.json");
    let r = t.row(&list["result"]["items"][0]);
    r.assert_clean();
    assert_eq!(r.get("ID"), &Cell::Int(35));
    assert_eq!(r.get("TYPE_ID"), &Cell::Int(1));
    assert_eq!(r.get("OWNER_ID"), &Cell::UInt(21));
    assert_eq!(r.get("CREATED_TIME"), &ts("2024-04-25T14:59:11Z"));
    assert_eq!(r.get("CATEGORY_ID"), &Cell::Int(0));
    assert_eq!(r.get("STAGE_ID"), &s("NEW"));
    assert_eq!(
        b24ch::schema::cursor_column(&t.columns).map(|c| c.name.as_str()),
        Some("CREATED_TIME")
    );
}

#[test]
fn tasks_task_list_strings_arrays_and_objects() {
    let fields = vec![
        field("ID", "id", "integer", false),
        field("TITLE", "title", "string", false),
        field("DEADLINE", "deadline", "datetime", false),
        field("RESPONSIBLE_ID", "responsibleId", "user", false),
        field("PRIORITY", "priority", "integer", false),
        field("MARK", "mark", "string", false),
        field("AUDITORS", "auditors", "user", true),
        field("ACCOMPLICES", "accomplices", "user", true),
        field("RESPONSIBLE", "responsible", "object", false),
        field("TIME_ELAPSED", "timeElapsed", "integer", false),
        field("TASK_REQUIRE_RESULT", "taskRequireResult", "char", false),
    ];
    let t = Table::new(&entity("task", EntityKind::Crm, fields), ValueStyle::Legacy);
    let list = load("tasks.task.list.json");
    let r = t.row(&list["result"]["tasks"][0]);
    r.assert_clean();
    assert_eq!(r.get("ID"), &Cell::Int(8017));
    assert_eq!(r.get("DEADLINE"), &ts("2025-10-24T17:00:00Z"));
    assert_eq!(r.get("RESPONSIBLE_ID"), &Cell::UInt(547));
    assert_eq!(r.get("PRIORITY"), &Cell::Int(2));
    assert_eq!(r.get("MARK"), &s(""));
    assert_eq!(
        r.get("AUDITORS"),
        &Cell::Array(vec![Cell::UInt(13), Cell::UInt(103)])
    );
    assert_eq!(r.get("ACCOMPLICES"), &Cell::Array(vec![]));
    assert_eq!(r.get("TIME_ELAPSED"), &Cell::Null);
    assert_eq!(r.get("TASK_REQUIRE_RESULT"), &Cell::Bool(true));
    let Cell::Str(resp) = r.get("RESPONSIBLE") else {
        panic!("RESPONSIBLE not raw text")
    };
    let resp: Value = serde_json::from_str(resp).unwrap();
    assert_eq!(resp["workPosition"], "Tester");
}

#[test]
fn crm_timeline_comment_files_are_typed_and_empty_object_is_null() {
    let fields = vec![
        f("ID", "integer"),
        f("ENTITY_ID", "integer"),
        f("ENTITY_TYPE", "string"),
        f("CREATED", "datetime"),
        f("AUTHOR_ID", "user"),
        field("FILES", "FILES", "file", true),
    ];
    let t = Table::new(
        &entity("crm_timeline_comment", EntityKind::History, fields),
        ValueStyle::Legacy,
    );
    let list = load("crm.timeline.comment.list.json");
    let with_files = t.row(&list["result"][0]);
    with_files.assert_clean();
    assert_eq!(with_files.get("CREATED"), &ts("2020-03-02T09:00:00Z"));
    // An object keyed by file id: each file's id, and its download path beside it.
    let files = list["result"][0]["FILES"].as_object().unwrap();
    let ids: Vec<Cell> = files
        .values()
        .map(|f| Cell::UInt(f["id"].as_u64().unwrap()))
        .collect();
    assert_eq!(with_files.get("FILES"), &Cell::Array(ids));
    assert!(matches!(with_files.get("FILES_URL"), Cell::Array(u) if u.len() == files.len()));
    let without = t.row(&list["result"][1]);
    without.assert_clean();
    assert_eq!(without.get("FILES"), &Cell::Array(vec![]));
}

fn uf_entity() -> Entity {
    let mut enumeration = field(
        "UF_CRM_1724077760",
        "UF_CRM_1724077760",
        "enumeration",
        true,
    );
    enumeration.options = vec![EnumOption {
        id: 3157,
        value: "Children's Radio".into(),
    }];
    entity(
        "crm_deal",
        EntityKind::Crm,
        vec![
            f("ID", "integer"),
            f("OPPORTUNITY", "double"),
            field("UF_CRM_MONEY", "UF_CRM_MONEY", "money", false),
            field("UF_CRM_MONEYS", "UF_CRM_MONEYS", "money", true),
            enumeration,
            field("UF_CRM_ENUM1", "UF_CRM_ENUM1", "enumeration", false),
            field("UF_CRM_FLAG", "UF_CRM_FLAG", "boolean", false),
            field("UF_CRM_DATES", "UF_CRM_DATES", "date", true),
            field("UF_CRM_LINK", "UF_CRM_LINK", "crm", false),
            field("UF_CRM_LINKS", "UF_CRM_LINKS", "crm", true),
            field("UF_CRM_ADDR", "UF_CRM_ADDR", "address", false),
            field("UF_CRM_APP", "UF_CRM_APP", "rest_42_rating", false),
            field("UF_CRM_FILE", "UF_CRM_FILE", "file", false),
        ],
    )
}

#[test]
fn user_field_encodings() {
    let t = Table::new(&uf_entity(), ValueStyle::Legacy);
    let sql: Vec<(String, String)> = t
        .columns
        .iter()
        .map(|c| (c.name.clone(), c.ch_type.sql()))
        .collect();
    assert!(sql.contains(&("UF_CRM_MONEY".into(), "Nullable(Decimal(18, 2))".into())));
    assert!(sql.contains(&(
        "UF_CRM_MONEY_CURRENCY".into(),
        "LowCardinality(Nullable(String))".into()
    )));
    assert!(sql.contains(&("UF_CRM_MONEYS".into(), "Array(Decimal(18, 2))".into())));
    assert!(sql.contains(&(
        "UF_CRM_MONEYS_CURRENCY".into(),
        "Array(LowCardinality(String))".into()
    )));
    assert!(sql.contains(&("UF_CRM_1724077760".into(), "Array(UInt64)".into())));
    assert!(sql.contains(&("UF_CRM_LINKS".into(), "Array(String)".into())));

    let r = t.row(&json!({
        "ID": "7",
        "OPPORTUNITY": "19999.99",
        "UF_CRM_MONEY": "300|RUB",
        "UF_CRM_MONEYS": ["1.5|USD", "2|EUR"],
        "UF_CRM_1724077760": ["3157", "3159"],
        "UF_CRM_ENUM1": "3161",
        "UF_CRM_FLAG": "1",
        "UF_CRM_DATES": false,
        "UF_CRM_LINK": "CO_3",
        "UF_CRM_LINKS": ["D_12", "C_2"],
        "UF_CRM_ADDR": "Granatny Lane, 10|55.761234;37.591234|571",
        "UF_CRM_APP": {"stars": 5},
        "UF_CRM_FILE": {"id": 12, "showUrl": "/s", "downloadUrl": "/d"}
    }));
    r.assert_clean();
    assert_eq!(r.get("OPPORTUNITY"), &Cell::Decimal(1_999_999));
    assert_eq!(r.get("UF_CRM_MONEY"), &Cell::Decimal(30_000));
    assert_eq!(r.get("UF_CRM_MONEY_CURRENCY"), &s("RUB"));
    assert_eq!(
        r.get("UF_CRM_MONEYS"),
        &Cell::Array(vec![Cell::Decimal(150), Cell::Decimal(200)])
    );
    assert_eq!(
        r.get("UF_CRM_MONEYS_CURRENCY"),
        &Cell::Array(vec![s("USD"), s("EUR")])
    );
    assert_eq!(
        r.get("UF_CRM_1724077760"),
        &Cell::Array(vec![Cell::UInt(3157), Cell::UInt(3159)])
    );
    assert_eq!(r.get("UF_CRM_ENUM1"), &Cell::UInt(3161));
    assert_eq!(r.get("UF_CRM_FLAG"), &Cell::Bool(true));
    assert_eq!(r.get("UF_CRM_DATES"), &Cell::Array(vec![]));
    assert_eq!(r.get("UF_CRM_LINK"), &s("CO_3"));
    assert_eq!(
        r.get("UF_CRM_LINKS"),
        &Cell::Array(vec![s("D_12"), s("C_2")])
    );
    assert_eq!(
        r.get("UF_CRM_ADDR"),
        &s("Granatny Lane, 10|55.761234;37.591234|571")
    );
    assert_eq!(r.get("UF_CRM_APP"), &s(r#"{"stars":5}"#));
    assert_eq!(r.get("UF_CRM_FILE"), &Cell::UInt(12));
    assert_eq!(r.get("UF_CRM_FILE_URL"), &s("/d"));

    // Empty encodings of the *.get form and of lists.
    let empty = t.row(&json!({
        "ID": "8", "UF_CRM_MONEY": "", "UF_CRM_MONEYS": false, "UF_CRM_1724077760": false,
        "UF_CRM_ENUM1": null, "UF_CRM_FLAG": "0", "UF_CRM_LINKS": "", "UF_CRM_FILE": ""
    }));
    empty.assert_clean();
    assert_eq!(empty.get("UF_CRM_MONEY"), &Cell::Null);
    assert_eq!(empty.get("UF_CRM_MONEY_CURRENCY"), &Cell::Null);
    assert_eq!(empty.get("UF_CRM_MONEYS"), &Cell::Array(vec![]));
    assert_eq!(empty.get("UF_CRM_1724077760"), &Cell::Array(vec![]));
    assert_eq!(empty.get("UF_CRM_ENUM1"), &Cell::Null);
    assert_eq!(empty.get("UF_CRM_FLAG"), &Cell::Bool(false));
    assert_eq!(empty.get("UF_CRM_LINKS"), &Cell::Array(vec![]));
}

#[test]
fn values_that_do_not_fit_are_kept_in_invalid_and_reported() {
    let t = Table::new(&uf_entity(), ValueStyle::Legacy);
    let r = t.row(&json!({
        "ID": "9",
        "OPPORTUNITY": "a lot",
        "UF_CRM_MONEY": "12.345|RUB",
        "UF_CRM_1724077760": ["3157", "x"],
        "UF_CRM_FLAG": "maybe",
        "UF_CRM_DATES": ["2024-01-01T00:00:00+00:00", "31.02.2024"]
    }));
    assert_eq!(r.get("OPPORTUNITY"), &Cell::Null);
    // More decimals than the scale: rounded half-even, raw kept.
    assert_eq!(r.get("UF_CRM_MONEY"), &Cell::Decimal(1234));
    assert_eq!(r.get("UF_CRM_MONEY_CURRENCY"), &s("RUB"));
    assert_eq!(
        r.get("UF_CRM_1724077760"),
        &Cell::Array(vec![Cell::UInt(3157)])
    );
    assert_eq!(r.get("UF_CRM_FLAG"), &Cell::Null);
    assert_eq!(r.get("UF_CRM_DATES"), &Cell::Array(vec![day(2024, 1, 1)]));
    assert_eq!(
        r.get("_invalid"),
        &Cell::Map(vec![
            ("OPPORTUNITY".into(), r#""a lot""#.into()),
            ("UF_CRM_MONEY".into(), r#""12.345|RUB""#.into()),
            ("UF_CRM_1724077760".into(), r#"["3157","x"]"#.into()),
            ("UF_CRM_FLAG".into(), r#""maybe""#.into()),
            (
                "UF_CRM_DATES".into(),
                r#"["2024-01-01T00:00:00+00:00","31.02.2024"]"#.into()
            ),
        ])
    );
    let issue = &r.row.issues[0];
    assert_eq!(issue.entity, "crm_deal");
    assert_eq!(issue.id, "9");
    assert_eq!(issue.field, "OPPORTUNITY");
    assert_eq!(issue.raw, r#""a lot""#);
    assert_eq!(issue.expected, "Nullable(Decimal(18, 2))");
    assert_eq!(r.row.issues.len(), 5);
}

#[test]
fn invalid_primary_key_gets_zero_and_is_reported() {
    let t = Table::new(&uf_entity(), ValueStyle::Legacy);
    let r = t.row(&json!({"ID": "abc"}));
    assert_eq!(r.get("ID"), &Cell::Int(0));
    assert_eq!(
        r.get("_invalid"),
        &Cell::Map(vec![("ID".into(), r#""abc""#.into())])
    );
    assert_eq!(r.row.issues[0].id, "abc");
}
