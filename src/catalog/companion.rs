//! Which fields of an entity are read with its companion method (`bitrix::methods::COMPANIONS`).
//!
//! Column codes stay the primary method's; a field read with the companion keeps its code and
//! takes the companion's row key as `api_name`. Fields only the companion describes are added.
use super::model::{Companion, Entity, Field};
use crate::bitrix::methods::{CompanionSpec, LIST_ONLY_IN_ITEM, code_matches, spec};

/// Field types a legacy list returns only when named explicitly (multi-fields) or never in a
/// usable form (files: URLs differ per method): never balanced onto the other method.
const NOT_BALANCED_TYPES: &[&str] = &["crm_multifield", "file"];

/// How the columns both methods return are split between an entity's primary method and its
/// companion.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Balance {
    /// Both methods' pages land on one budget (whole-batch billing): the companion selects
    /// only the columns its primary lacks.
    None,
    /// Separate budgets: shared columns move onto the companion until a page costs about the
    /// same on both, at each method's measured operating seconds per column.
    ByCost { primary: f64, companion: f64 },
}

impl Balance {
    /// Separate budgets, with each method's measured cost per column where the governor has
    /// one (equal costs until then).
    pub(crate) fn by_cost(primary: Option<f64>, companion: Option<f64>) -> Self {
        match (primary, companion) {
            (Some(p), Some(c)) if p > 0.0 && c > 0.0 => Balance::ByCost {
                primary: p,
                companion: c,
            },
            _ => Balance::ByCost {
                primary: 1.0,
                companion: 1.0,
            },
        }
    }
}

/// Moves the companion's fields of `entity` onto it. `companion_fields` is the companion's
/// `*.fields` answer, parsed. Without a companion description the entity is left as it is.
/// `plan`: whether (and at which costs) shared columns are balanced onto the companion.
pub(crate) fn attach(
    entity: &mut Entity,
    c: &CompanionSpec,
    companion_fields: &[Field],
    plan: Balance,
) {
    let mut moved = Vec::new();
    for cf in companion_fields {
        if !c.only_there.iter().any(|p| code_matches(p, &cf.code)) {
            continue;
        }
        match entity.fields.iter_mut().find(|f| f.code == cf.code) {
            Some(f) => f.api_name = cf.api_name.clone(),
            None => entity.fields.push(cf.clone()),
        }
        moved.push(cf.code.clone());
    }
    if let (true, Balance::ByCost { primary, companion }) = (c.balance, plan) {
        balance(entity, companion_fields, &mut moved, (primary, companion));
    }
    entity.companion = Some(Companion {
        method: c.method.to_string(),
        entity_type_id: c.entity_type_id,
        fields: moved,
    });
}

/// Moves shared fields (same code in both methods) from the end of the primary's list onto the
/// companion until a page costs about the same on both: the operating cost of a page grows
/// with rows × columns, at each method's own cost per column (`costs`: primary, companion), so
/// the two per-method budgets then carry about half a load each.
fn balance(
    entity: &mut Entity,
    companion_fields: &[Field],
    moved: &mut Vec<String>,
    costs: (f64, f64),
) {
    let key = entity.fields.first().map(|f| f.code.clone());
    let cursor = crate::bitrix::spec(&entity.method)
        .and_then(|s| s.cursor)
        .map(|c| c.row);
    let shared: Vec<usize> = entity
        .fields
        .iter()
        .enumerate()
        .filter(|(_, f)| {
            Some(&f.code) != key.as_ref()
                && Some(f.api_name.as_str()) != cursor
                && !moved.contains(&f.code)
                && !LIST_ONLY_IN_ITEM.iter().any(|p| code_matches(p, &f.code))
                && !NOT_BALANCED_TYPES.contains(&f.bitrix_type.as_str())
        })
        .filter_map(|(i, f)| {
            let cf = companion_fields.iter().find(|cf| cf.code == f.code)?;
            (!NOT_BALANCED_TYPES.contains(&cf.bitrix_type.as_str())).then_some(i)
        })
        .collect();
    // The companion always selects its id and cursor too.
    let primary = entity.fields.len() - moved.len();
    let companion = moved.len() + 2;
    // primary' × cp = companion' × cc, with primary' = primary − take and
    // companion' = companion + take.
    let (cp, cc) = costs;
    let take = ((primary as f64 * cp - companion as f64 * cc) / (cp + cc))
        .floor()
        .max(0.0) as usize;
    let take = take.min(shared.len());
    for &i in shared.iter().rev().take(take) {
        let code = entity.fields[i].code.clone();
        if let Some(cf) = companion_fields.iter().find(|cf| cf.code == code) {
            entity.fields[i].api_name = cf.api_name.clone();
            moved.push(code);
        }
    }
}

/// The `*.fields` call describing the companion's fields: method and params.
pub(super) fn fields_call(c: &CompanionSpec) -> Option<(&'static str, serde_json::Value)> {
    let s = spec(c.method)?;
    let params = match c.entity_type_id.filter(|_| s.needs_entity_type_id) {
        Some(eid) => serde_json::json!({ "entityTypeId": eid }),
        None => serde_json::json!({}),
    };
    Some((s.fields?, params))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bitrix::methods::companion;
    use crate::catalog::EntityKind;

    fn field(code: &str, api: &str, t: &str) -> Field {
        Field {
            code: code.into(),
            api_name: api.into(),
            bitrix_type: t.into(),
            multiple: false,
            required: false,
            user_field: code.starts_with("UF_"),
            label: code.into(),
            options: Vec::new(),
        }
    }

    fn entity(name: &str, method: &str, fields: Vec<Field>) -> Entity {
        Entity {
            name: name.into(),
            kind: EntityKind::Crm,
            title: name.into(),
            method: method.into(),
            entity_type_id: None,
            fields,
            companion: None,
        }
    }

    #[test]
    fn bindings_of_a_legacy_entity_come_from_crm_item() {
        let mut e = entity(
            "crm_contact",
            "crm.contact",
            vec![
                field("ID", "ID", "integer"),
                field("NAME", "NAME", "string"),
                field("COMPANY_IDS", "COMPANY_IDS", "crm_company"),
                field("DATE_MODIFY", "DATE_MODIFY", "datetime"),
            ],
        );
        let item = [
            field("ID", "id", "integer"),
            field("NAME", "name", "string"),
            field("COMPANY_IDS", "companyIds", "crm_company"),
            field("OBSERVERS", "observers", "user"),
            field("PARENT_ID_128", "parentId128", "crm_entity"),
            field("CREATED_TIME", "createdTime", "datetime"),
        ];
        let c = companion("crm_contact").unwrap();
        attach(&mut e, c, &item, Balance::by_cost(None, None));
        let codes: Vec<_> = e.fields.iter().map(|f| f.code.as_str()).collect();
        assert_eq!(
            codes,
            [
                "ID",
                "NAME",
                "COMPANY_IDS",
                "DATE_MODIFY",
                "OBSERVERS",
                "PARENT_ID_128"
            ]
        );
        assert_eq!(e.field("COMPANY_IDS").unwrap().api_name, "companyIds");
        assert_eq!(e.field("NAME").unwrap().api_name, "NAME");
        let comp = e.companion.as_ref().unwrap();
        assert_eq!(
            (comp.method.as_str(), comp.entity_type_id),
            ("crm.item", Some(3))
        );
        assert_eq!(comp.fields, ["COMPANY_IDS", "OBSERVERS", "PARENT_ID_128"]);
        assert!(!e.from_companion("NAME"));
    }

    #[test]
    fn the_split_follows_each_methods_measured_cost_per_column() {
        let mut fields = vec![
            field("ID", "id", "integer"),
            field("UPDATED_TIME", "updatedTime", "datetime"),
        ];
        let mut legacy = vec![
            field("ID", "ID", "integer"),
            field("DATE_MODIFY", "DATE_MODIFY", "datetime"),
        ];
        for i in 0..40 {
            let code = format!("F{i}");
            fields.push(field(&code, &format!("f{i}"), "string"));
            legacy.push(field(&code, &code, "string"));
        }
        let moved = |primary: Option<f64>, companion: Option<f64>| {
            let mut e = entity("crm_deal", "crm.item", fields.clone());
            attach(
                &mut e,
                companion_spec(),
                &legacy,
                Balance::by_cost(primary, companion),
            );
            e.companion.unwrap().fields.len()
        };
        // Unmeasured: equal costs, about half of the 42 columns each (the companion also
        // selects ID and DATE_MODIFY): 22 against 22.
        assert_eq!(moved(None, None), 20);
        // A column costs twice as much on the companion: it takes a third, not half
        // (30 × 1 against 14 × 2).
        let dear = moved(Some(0.01), Some(0.02));
        assert_eq!(dear, 12, "{dear}");
        // Twice as much on the primary: the companion takes about two thirds (15 × 2 against
        // 29 × 1).
        assert_eq!(moved(Some(0.02), Some(0.01)), 27);
    }

    fn companion_spec() -> &'static CompanionSpec {
        companion("crm_deal").unwrap()
    }

    #[test]
    fn deals_balance_shared_fields_onto_the_legacy_list() {
        let mut fields = vec![
            field("ID", "id", "integer"),
            field("UPDATED_TIME", "updatedTime", "datetime"),
            field("CONTACT_IDS", "contactIds", "crm_contact"),
        ];
        let mut legacy = vec![
            field("ID", "ID", "integer"),
            field("DATE_MODIFY", "DATE_MODIFY", "datetime"),
            field("ADDITIONAL_INFO", "ADDITIONAL_INFO", "string"),
        ];
        for i in 0..20 {
            let code = format!("F{i}");
            fields.push(field(&code, &format!("f{i}"), "string"));
            legacy.push(field(&code, &code, "string"));
        }
        let mut e = entity("crm_deal", "crm.item", fields.clone());
        // Under whole-batch billing both methods' pages land on one budget: nothing balanced.
        attach(
            &mut e,
            companion("crm_deal").unwrap(),
            &legacy,
            Balance::None,
        );
        assert_eq!(e.companion.as_ref().unwrap().fields, ["ADDITIONAL_INFO"]);
        assert_eq!(e.field("F19").unwrap().api_name, "f19");
        let mut e = entity("crm_deal", "crm.item", fields);
        attach(
            &mut e,
            companion("crm_deal").unwrap(),
            &legacy,
            Balance::by_cost(None, None),
        );
        let comp = e.companion.as_ref().unwrap();
        // 24 fields: 1 legacy-only + 10 shared moved → 13 selected there with ID and
        // DATE_MODIFY; 13 stay (id, updatedTime, contactIds, 10 shared).
        assert_eq!(comp.fields.len(), 11, "{:?}", comp.fields);
        assert_eq!(comp.fields[0], "ADDITIONAL_INFO");
        assert!(comp.fields.contains(&"F19".to_string()));
        assert!(!comp.fields.contains(&"F0".to_string()));
        assert_eq!(e.field("F19").unwrap().api_name, "F19");
        assert_eq!(e.field("F0").unwrap().api_name, "f0");
        assert_eq!(e.field("UPDATED_TIME").unwrap().api_name, "updatedTime");
        assert_eq!(e.field("CONTACT_IDS").unwrap().api_name, "contactIds");
    }
}
