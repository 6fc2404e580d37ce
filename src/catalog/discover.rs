//! Discovery: which entities a portal has and their fields, in two `batch` requests.
//!
//! The first batch asks for the smart-process types and every static entity's fields at once;
//! the second asks `crm.item.fields` for every smart process and probes every entity's list
//! method once (one page of ids). Which method each entity is read with is in
//! `bitrix::methods::ENTITY_METHODS`. An entity whose fields the credentials may not read
//! (access denied, missing scope, method absent on an older on-prem install) gets its
//! documented static field list where one exists (reference entities). An entity whose list
//! method (or fields, without a documented list) the portal refuses — no such method on this
//! plan or version, entity type not supported, scope missing, access denied — goes to
//! `Catalog::unavailable` with the portal's words (`catalog::unavailable`) instead of failing
//! the catalog, and is probed again at the next discovery. Any other error fails discovery.
use super::companion::{self, Balance};
use super::field_description::fields_from_description;
use super::model::{Catalog, Entity, EntityKind, EnumOption, Field, Unavailable};
use super::static_fields;
use super::task_fields;
use super::unavailable;
use super::work_static;
use crate::bitrix::batch::{Batch, BatchResponse, CommandOutcome, MAX_COMMANDS};
use crate::bitrix::governor::Evidence;
use crate::bitrix::methods::{self, COMPANIONS, ENTITY_METHODS, FieldsFormat, MethodSpec, spec};
use crate::bitrix::{BitrixError, Client, ErrorClass, Response, listing};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// A smart process found on the portal.
#[derive(Debug, Clone, PartialEq)]
pub struct SmartProcessType {
    pub entity_type_id: u32,
    pub title: String,
    pub stages_enabled: bool,
}

/// Reads the catalog of the portal.
pub async fn discover(client: &Client) -> Result<Catalog, BitrixError> {
    let mut first = Batch::new();
    first.push("types", "crm.type.list", json!({"order": {"id": "ASC"}}))?;
    first.push("ownertype", "crm.enum.ownertype", json!({}))?;
    for (entity, key, eid) in ENTITY_METHODS {
        let s = known_spec(key)?;
        if let Some(fields) = s.fields {
            first.push(format!("f_{entity}"), fields, fields_params(s, *eid))?;
        }
        if let Some(uf) = s.userfield_list {
            first.push(format!("uf_{entity}"), uf, userfield_list_params(s))?;
        }
    }
    for c in COMPANIONS {
        if let Some((method, params)) = companion::fields_call(c) {
            first.push(format!("c_{}", c.entity), method, params)?;
        }
    }
    // crm_deal is read with crm.item, whose description may lack enumeration items and
    // labels; the deal user-field list fills them in.
    first.push(
        "uf_crm_deal",
        "crm.deal.userfield.list",
        json!({"filter": {"LANG": "en"}}),
    )?;
    let mut resp = client.batch(&first).await?;
    let types = smart_process_types(client, &mut resp).await?;
    // The answer's figures told the governor how batches are billed. The two methods of an
    // entity have separate budgets wherever a batch's commands are billed to their own methods
    // (per-method, or both that and the `batch` key); only where one `batch` key carries
    // every command does a column split not spread the bill.
    let billing = client.governor().billing();
    let separate_budgets =
        billing.batch_key != Evidence::Yes || billing.nested_keys == Evidence::Yes;

    let mut catalog = Catalog::default();
    for (entity, key, eid) in ENTITY_METHODS {
        let s = known_spec(key)?;
        let uf = answer(entity, resp.take(&format!("uf_{entity}")))?.ok();
        let fields = match s.fields_format {
            FieldsFormat::Static => Answer::Ok(
                work_static::fields(entity)
                    .unwrap_or_else(|| static_fields::stage_history(eid.unwrap_or(2))),
            ),
            _ => answer(entity, resp.take(&format!("f_{entity}")))?
                .map(|r| described_fields(entity, s, *eid, &r.result)),
        };
        let fields = match fields {
            Answer::Ok(f) => f,
            other => match fallback_fields(entity) {
                Some(f) => f,
                None => {
                    refused(entity, key, other, &mut catalog);
                    continue;
                }
            },
        };
        let mut fields = fields;
        static_fields::add_undescribed(entity, &mut fields);
        if let Some(uf) = uf {
            enrich_user_fields(&mut fields, &uf.result);
            if s.uf_naming == methods::UfNaming::CamelOfCode {
                task_fields::apply_userfield_list(&mut fields, &uf.result);
            }
        }
        let mut e = entity_of(entity, key, *eid, fields);
        if let Some(c) = methods::companion(entity) {
            // Without the companion's description the entity keeps its primary fields only.
            if let Some(r) = answer(entity, resp.take(&format!("c_{entity}")))?.ok() {
                let described = fields_from_description(&r.result);
                let cs = known_spec(c.method)?;
                // The split follows each method's measured cost per column (the governor's
                // estimates, kept in its state), not a fixed table.
                let plan = if separate_budgets {
                    let gov = client.governor();
                    Balance::by_cost(gov.cost_per_column(s.list), gov.cost_per_column(cs.list))
                } else {
                    Balance::None
                };
                companion::attach(
                    &mut e,
                    c,
                    &with_legacy_codes(described, cs, c.entity_type_id),
                    plan,
                );
            }
        }
        catalog.entities.push(e);
    }
    add_smart_processes(client, &types, &mut catalog).await?;
    Ok(catalog)
}

/// A `*.fields` answer: the value, a refusal (access, scope, method absent), or no answer.
enum Answer<T> {
    Ok(T),
    Refused(BitrixError),
    Missing,
}

impl<T> Answer<T> {
    fn ok(self) -> Option<T> {
        match self {
            Answer::Ok(v) => Some(v),
            _ => None,
        }
    }

    fn map<U>(self, f: impl FnOnce(T) -> U) -> Answer<U> {
        match self {
            Answer::Ok(v) => Answer::Ok(f(v)),
            Answer::Refused(e) => Answer::Refused(e),
            Answer::Missing => Answer::Missing,
        }
    }
}

/// An entity whose fields the portal refused and that has no documented field list: recorded
/// as unavailable when the refusal says why, else left out with a warning.
fn refused<T>(entity: &str, key: &str, answer: Answer<T>, catalog: &mut Catalog) {
    let Answer::Refused(e) = answer else {
        return;
    };
    let title = title_of(entity);
    let subject = spec(key).map(|spec| unavailable::Subject {
        entity,
        kind: kind_of(entity),
        title: &title,
        spec,
    });
    match subject.and_then(|s| unavailable::classify(s, &e)) {
        Some(u) => mark_unavailable(catalog, u),
        None => tracing::warn!(entity, error = %e, "entity left out of the catalog"),
    }
}

fn mark_unavailable(catalog: &mut Catalog, u: Unavailable) {
    catalog.entities.retain(|e| e.name != u.entity);
    if catalog.unavailable(&u.entity).is_some() {
        return;
    }
    // Callers warn (sync, serve, check) in their own context.
    tracing::info!(
        entity = %u.entity,
        method = %u.method,
        code = %u.code,
        portal_message = %u.message,
        "the portal cannot serve this entity; no table or load for it until it does"
    );
    catalog.unavailable.push(u);
}

/// The fields of one `*.fields` answer, with the column codes the method's naming gives.
fn described_fields(entity: &str, s: &MethodSpec, eid: Option<u32>, result: &Value) -> Vec<Field> {
    match s.uf_naming {
        methods::UfNaming::CamelOfCode => task_fields::from_description(result),
        _ => with_legacy_codes(typed_fields(entity, result), s, eid),
    }
}

/// `task.item.userfield.getlist` takes `ORDER`/`FILTER` and has no labels to ask a language
/// for; the CRM lists take `filter: {LANG}` for their labels.
fn userfield_list_params(s: &MethodSpec) -> Value {
    match s.uf_naming {
        methods::UfNaming::CamelOfCode => json!({}),
        _ => json!({"filter": {"LANG": "en"}}),
    }
}

fn known_spec(key: &str) -> Result<&'static MethodSpec, BitrixError> {
    spec(key).ok_or_else(|| BitrixError::Usage(format!("methods table lacks `{key}`")))
}

fn fields_params(s: &MethodSpec, eid: Option<u32>) -> Value {
    match s.fields_entity_type_id(eid) {
        Some(eid) => json!({ "entityTypeId": eid }),
        None => json!({}),
    }
}

/// Entities of predefined `crm.item` types that older portals lack: their `crm.item.fields`
/// answers `NOT_FOUND` for the type, which says "not supported here", not "discovery broke".
const PREDEFINED_ITEM_ENTITIES: &[&str] = &["crm_quote", "crm_smart_invoice"];

/// Refusals ("these credentials cannot see this", "no such method here") are an answer too;
/// any other error fails discovery.
fn answer(entity: &str, outcome: CommandOutcome) -> Result<Answer<Response>, BitrixError> {
    match outcome {
        CommandOutcome::Ok(r) => Ok(Answer::Ok(r)),
        CommandOutcome::Missing => Ok(Answer::Missing),
        CommandOutcome::Err(BitrixError::Api {
            method,
            status,
            code,
            description,
            class: ErrorClass::NotFound,
        }) if PREDEFINED_ITEM_ENTITIES.contains(&entity) => {
            tracing::debug!(entity, %code, "entity type not on this portal");
            Ok(Answer::Refused(BitrixError::Api {
                method,
                status,
                code,
                description,
                class: ErrorClass::Unsupported,
            }))
        }
        CommandOutcome::Err(e) => match e.class() {
            ErrorClass::AccessDenied
            | ErrorClass::Auth
            | ErrorClass::MethodNotFound
            | ErrorClass::Unsupported => {
                tracing::debug!(entity, error = %e, "fields refused");
                Ok(Answer::Refused(e))
            }
            _ => Err(e),
        },
    }
}

fn fallback_fields(entity: &str) -> Option<Vec<Field>> {
    let f = static_fields::fallback(entity).map(|f| letter_chars_as_text(entity, f));
    if f.is_some() {
        tracing::info!(
            entity,
            "fields method unavailable; documented field list used"
        );
    }
    f
}

/// `crm.item` fields of a lead, deal, contact or company under their legacy codes
/// (`methods::legacy_code`); other methods' fields and smart processes are left as they are.
fn with_legacy_codes(mut fields: Vec<Field>, s: &MethodSpec, eid: Option<u32>) -> Vec<Field> {
    if s.uf_naming != methods::UfNaming::CamelWithUpperName {
        return fields;
    }
    if let Some(eid) = eid {
        for f in &mut fields {
            let code = methods::legacy_code(eid, &f.code);
            if code != f.code {
                f.code = code.to_string();
            }
        }
    }
    fields
}

/// Gives the Bitrix24 type and multiplicity of a field known only by its code.
type Typer = fn(&str) -> (&'static str, bool);

/// Fields from a `*.fields` answer, with types filled in for the title-only maps.
fn typed_fields(entity: &str, result: &Value) -> Vec<Field> {
    let mut fields = fields_from_description(result);
    let typer: Option<Typer> = match entity {
        "user" => Some(static_fields::user_type),
        "department" => Some(static_fields::department_type),
        _ => None,
    };
    if let Some(typer) = typer {
        for f in fields.iter_mut().filter(|f| f.bitrix_type == "unknown") {
            let (t, multiple) = typer(&f.code);
            f.bitrix_type = t.into();
            f.multiple = multiple;
        }
    }
    letter_chars_as_text(entity, fields)
}

/// `char` fields that hold a letter, not a Y/N flag, stay text.
fn letter_chars_as_text(entity: &str, mut fields: Vec<Field>) -> Vec<Field> {
    for f in fields.iter_mut() {
        if static_fields::is_letter_char(entity, &f.code) && f.bitrix_type == "char" {
            f.bitrix_type = "string".into();
        }
    }
    fields
}

/// Options and labels from `*.userfield.list` (`LIST`, `LIST_COLUMN_LABEL` with `LANG`) for
/// user fields whose description lacks them.
pub fn enrich_user_fields(fields: &mut [Field], userfield_list: &Value) {
    let Some(items) = userfield_list.as_array() else {
        return;
    };
    for uf in items {
        let Some(name) = uf.get("FIELD_NAME").and_then(Value::as_str) else {
            continue;
        };
        let Some(f) = fields.iter_mut().find(|f| f.code == name) else {
            continue;
        };
        f.user_field = true;
        if f.options.is_empty() {
            f.options = list_options(uf.get("LIST"));
        }
        if f.label.is_empty() || f.label == f.code {
            let label = ["LIST_COLUMN_LABEL", "EDIT_FORM_LABEL", "LIST_FILTER_LABEL"]
                .iter()
                .find_map(|k| uf.get(*k).and_then(Value::as_str).filter(|s| !s.is_empty()));
            if let Some(l) = label {
                f.label = l.to_string();
            }
        }
    }
}

fn list_options(list: Option<&Value>) -> Vec<EnumOption> {
    let Some(Value::Array(items)) = list else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|o| {
            let id = match o.get("ID")? {
                Value::String(s) => s.trim().parse().ok()?,
                Value::Number(n) => n.as_u64()?,
                _ => return None,
            };
            let value = o.get("VALUE").and_then(Value::as_str).unwrap_or_default();
            Some(EnumOption {
                id,
                value: value.to_string(),
            })
        })
        .collect()
}

fn kind_of(entity: &str) -> EntityKind {
    match entity {
        "crm_deal" | "crm_lead" | "crm_contact" | "crm_company" | "crm_activity" => EntityKind::Crm,
        "crm_quote" | "crm_smart_invoice" | "crm_productrow" | "crm_product" => EntityKind::Crm,
        "crm_timeline_comment" | "crm_activity_binding" => EntityKind::Crm,
        e if e.starts_with("crm_dynamic_") => EntityKind::SmartProcess,
        e if e.starts_with("crm_stagehistory") => EntityKind::History,
        _ => EntityKind::Reference,
    }
}

fn title_of(entity: &str) -> String {
    match entity {
        "crm_deal" => "Deals",
        "crm_lead" => "Leads",
        "crm_contact" => "Contacts",
        "crm_company" => "Companies",
        "crm_activity" => "Activities",
        "crm_status" => "Statuses and stages",
        "crm_category" => "Pipelines",
        "crm_currency" => "Currencies",
        "crm_stagehistory_lead" => "Lead status history",
        "crm_stagehistory_deal" => "Deal stage history",
        "crm_quote" => "Quotes",
        "crm_smart_invoice" => "Invoices",
        "crm_stagehistory_smart_invoice" => "Invoice stage history",
        "crm_productrow" => "Product rows",
        "crm_product" => "Products",
        "crm_product_section" => "Product sections",
        "crm_requisite" => "Requisites",
        "crm_requisite_bank" => "Bank details",
        "crm_address" => "Addresses",
        "crm_timeline_comment" => "Timeline comments",
        "crm_activity_binding" => "Activity bindings",
        "user" => "Users",
        "department" => "Departments",
        "task" => "Tasks",
        "task_elapsed_time" => "Task time records",
        "task_stage" => "Kanban stages of workgroups",
        "telephony_call" => "Calls",
        "workgroup" => "Workgroups and projects",
        other => other,
    }
    .to_string()
}

fn entity_of(name: &str, method: &str, eid: Option<u32>, fields: Vec<Field>) -> Entity {
    Entity {
        name: name.to_string(),
        kind: kind_of(name),
        title: title_of(name),
        method: method.to_string(),
        entity_type_id: eid,
        fields: pk_first(method, fields),
        companion: None,
    }
}

/// The catalog contract: the primary key field first.
fn pk_first(method: &str, mut fields: Vec<Field>) -> Vec<Field> {
    let pk = spec(method).map(|s| s.id.row).unwrap_or("ID");
    if let Some(i) = fields.iter().position(|f| f.api_name == pk || f.code == pk) {
        fields[..=i].rotate_right(1);
    }
    fields
}

/// Smart processes from `crm.type.list` (all pages), or from `crm.enum.ownertype`
/// (`DYNAMIC_N`) when the credentials are not a CRM admin.
async fn smart_process_types(
    client: &Client,
    resp: &mut BatchResponse,
) -> Result<Vec<SmartProcessType>, BitrixError> {
    let owner = resp.take("ownertype");
    match resp.take("types") {
        CommandOutcome::Ok(r) => {
            let mut types = types_from_list(&r.result);
            let mut next = r.next;
            while let Some(start) = next {
                let page = client
                    .call(
                        "crm.type.list",
                        &json!({"order": {"id": "ASC"}, "start": start}),
                    )
                    .await?;
                types.extend(types_from_list(&page.result));
                next = page.next.filter(|n| *n > start);
            }
            Ok(types)
        }
        CommandOutcome::Err(e) if e.class() == ErrorClass::AccessDenied => {
            tracing::info!("crm.type.list denied; smart processes from crm.enum.ownertype");
            match owner {
                CommandOutcome::Ok(r) => Ok(types_from_ownertype(&r.result)),
                CommandOutcome::Err(e) => Err(e),
                CommandOutcome::Missing => Ok(Vec::new()),
            }
        }
        CommandOutcome::Err(e) => Err(e),
        CommandOutcome::Missing => Ok(Vec::new()),
    }
}

pub fn types_from_list(result: &Value) -> Vec<SmartProcessType> {
    let items = result
        .get("types")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    items
        .iter()
        .filter_map(|t| {
            let eid = num_u32(t.get("entityTypeId")?)?;
            Some(SmartProcessType {
                entity_type_id: eid,
                title: t
                    .get("title")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                stages_enabled: matches!(
                    t.get("isStagesEnabled"),
                    Some(Value::String(s)) if s == "Y"
                ) || t.get("isStagesEnabled") == Some(&Value::Bool(true)),
            })
        })
        .collect()
}

pub fn types_from_ownertype(result: &Value) -> Vec<SmartProcessType> {
    let items = result.as_array().cloned().unwrap_or_default();
    items
        .iter()
        .filter_map(|t| {
            let code = t.get("SYMBOL_CODE")?.as_str()?;
            let eid: u32 = code.strip_prefix("DYNAMIC_")?.parse().ok()?;
            Some(SmartProcessType {
                entity_type_id: eid,
                title: t
                    .get("NAME")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                // Unknown without crm.type.list: no stage-history table is guessed.
                stages_enabled: false,
            })
        })
        .collect()
}

fn num_u32(v: &Value) -> Option<u32> {
    match v {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// `crm.item.fields` for every smart process and a probe of every entity's list method
/// (`listing::probe_params`), batched: the smart processes become entities, and an entity
/// whose probe the portal refuses moves to `catalog.unavailable`.
async fn add_smart_processes(
    client: &Client,
    types: &[SmartProcessType],
    catalog: &mut Catalog,
) -> Result<(), BitrixError> {
    let mut commands: Vec<(String, &'static str, Value)> = types
        .iter()
        .map(|t| {
            (
                format!("f_{}", t.entity_type_id),
                "crm.item.fields",
                json!({"entityTypeId": t.entity_type_id}),
            )
        })
        .collect();
    let mut candidates: Vec<Entity> = catalog.entities.clone();
    for t in types {
        let name = format!("crm_dynamic_{}", t.entity_type_id);
        let mut e = entity_of(&name, "crm.item", Some(t.entity_type_id), Vec::new());
        e.title = t.title.clone();
        candidates.push(e);
        if t.stages_enabled {
            candidates.push(stage_history_of(t));
        }
    }
    for e in &candidates {
        let s = known_spec(&e.method)?;
        if s.paging == methods::Paging::OwnerChain {
            // Lists nothing without owners; its fields call already told availability.
            continue;
        }
        commands.push((
            probe_name(&e.name),
            s.list,
            listing::probe_params(s, e.entity_type_id),
        ));
    }
    let mut outcomes = run_batched(client, commands).await?;
    let mut take = |name: &str| outcomes.remove(name).unwrap_or(CommandOutcome::Missing);
    for t in types {
        let name = format!("crm_dynamic_{}", t.entity_type_id);
        let fields = answer(&name, take(&format!("f_{}", t.entity_type_id)))?;
        let fields = match fields {
            Answer::Ok(r) => fields_from_description(&r.result),
            other => {
                refused(&name, "crm.item", other, catalog);
                continue;
            }
        };
        let mut e = entity_of(&name, "crm.item", Some(t.entity_type_id), fields);
        e.title = t.title.clone();
        catalog.entities.push(e);
        if t.stages_enabled {
            catalog.entities.push(stage_history_of(t));
        }
    }
    for e in candidates {
        let probe = take(&probe_name(&e.name));
        if let Some(u) = probe_refusal(&e, probe)? {
            mark_unavailable(catalog, u);
        }
    }
    Ok(())
}

fn probe_name(entity: &str) -> String {
    format!("probe_{entity}")
}

fn stage_history_of(t: &SmartProcessType) -> Entity {
    let hist = format!("crm_stagehistory_dynamic_{}", t.entity_type_id);
    let mut h = entity_of(
        &hist,
        "crm.stagehistory",
        Some(t.entity_type_id),
        static_fields::stage_history(t.entity_type_id),
    );
    h.title = format!("{}: stage history", t.title);
    h
}

/// Whether a probe's answer means the portal cannot serve the entity. Only a refusal does: a
/// limit or fault answer (the method may be busy with a load) says nothing about it, and the
/// entity's own loads report any other error.
fn probe_refusal(e: &Entity, outcome: CommandOutcome) -> Result<Option<Unavailable>, BitrixError> {
    let CommandOutcome::Err(err) = outcome else {
        return Ok(None);
    };
    let subject = unavailable::Subject {
        entity: &e.name,
        kind: e.kind,
        title: &e.title,
        spec: known_spec(&e.method)?,
    };
    let u = unavailable::classify(subject, &err);
    if u.is_none() {
        tracing::debug!(entity = %e.name, error = %err, "availability probe failed; entity kept");
    }
    Ok(u)
}

/// Runs independent commands in as few `batch` requests as the batch limit allows.
async fn run_batched(
    client: &Client,
    commands: Vec<(String, &'static str, Value)>,
) -> Result<BTreeMap<String, CommandOutcome>, BitrixError> {
    let mut out = BTreeMap::new();
    for chunk in commands.chunks(MAX_COMMANDS) {
        let mut batch = Batch::new();
        for (name, method, params) in chunk {
            batch.push(name.clone(), method, params.clone())?;
        }
        let mut resp = client.batch(&batch).await?;
        for (name, _, _) in chunk {
            out.insert(name.clone(), resp.take(name));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Value {
        let path = format!(
            "{}/tests/fixtures/bitrix24/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn smart_processes_from_type_list_and_ownertype() {
        let t = types_from_list(&fixture("crm.type.list.json")["result"]);
        assert_eq!(
            t.iter().map(|t| t.entity_type_id).collect::<Vec<_>>(),
            [1256, 1246, 1236, 1226]
        );
        assert!(t[1].stages_enabled && !t[0].stages_enabled);
        let o = types_from_ownertype(&fixture("crm.enum.ownertype.json")["result"]);
        assert_eq!(
            o,
            vec![
                SmartProcessType {
                    entity_type_id: 177,
                    title: "Equipment Purchase".into(),
                    stages_enabled: false
                },
                SmartProcessType {
                    entity_type_id: 156,
                    title: "Purchase".into(),
                    stages_enabled: false
                },
            ]
        );
    }

    #[test]
    fn userfield_list_fills_options_and_labels() {
        let mut fields = vec![Field {
            code: "UF_CRM_1724077760".into(),
            api_name: "ufCrm_1724077760".into(),
            bitrix_type: "enumeration".into(),
            multiple: true,
            required: false,
            user_field: true,
            label: "UF_CRM_1724077760".into(),
            options: vec![],
        }];
        enrich_user_fields(
            &mut fields,
            &fixture("crm.deal.userfield.list.json")["result"],
        );
        assert_eq!(fields[0].label, "Radio");
        assert_eq!(fields[0].options.len(), 5);
        assert_eq!(
            fields[0].options[0],
            EnumOption {
                id: 3157,
                value: "Children's Radio".into()
            }
        );
    }

    #[test]
    fn item_fields_keep_upper_codes_and_pk_first() {
        let fields = fields_from_description(&fixture("crm.item.fields.json")["result"]);
        let e = entity_of("crm_dynamic_1268", "crm.item", Some(1268), fields);
        assert_eq!(e.fields[0].code, "ID");
        assert_eq!(e.fields[0].api_name, "id");
        assert!(e.field("PARENT_ID_1248").is_some());
        assert_eq!(e.kind, EntityKind::SmartProcess);
        let cur = entity_of(
            "crm_currency",
            "crm.currency",
            None,
            vec![static_field("AMOUNT"), static_field("CURRENCY")],
        );
        assert_eq!(cur.fields[0].code, "CURRENCY");
    }

    fn static_field(code: &str) -> Field {
        Field {
            code: code.into(),
            api_name: code.into(),
            bitrix_type: "string".into(),
            multiple: false,
            required: false,
            user_field: false,
            label: code.into(),
            options: vec![],
        }
    }

    #[test]
    fn title_maps_get_static_types() {
        let f = typed_fields(
            "user",
            &json!({"ID": "ID", "ACTIVE": "Active", "UF_DEPARTMENT": "Department", "NAME": "Name"}),
        );
        let t: Vec<_> = f
            .iter()
            .map(|f| (f.code.as_str(), f.bitrix_type.as_str(), f.multiple))
            .collect();
        assert_eq!(
            t,
            [
                ("ID", "integer", false),
                ("ACTIVE", "boolean", false),
                ("UF_DEPARTMENT", "integer", true),
                ("NAME", "string", false)
            ]
        );
    }
}
