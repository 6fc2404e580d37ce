//! What changed between two catalogs: drives `ALTER TABLE … ADD COLUMN`, new tables and MVs,
//! dropped MVs (data kept) and dictionary refreshes.
use super::model::{Catalog, Entity, EnumOption, Field};
use serde::Serialize;

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CatalogDiff {
    /// Entities only in the new catalog (a new smart process…), in its order.
    pub new_entities: Vec<String>,
    /// Entities only in the old one.
    pub removed_entities: Vec<String>,
    /// Entities in both with field changes.
    pub changed: Vec<EntityDiff>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EntityDiff {
    pub entity: String,
    pub new_fields: Vec<Field>,
    pub removed_fields: Vec<String>,
    pub type_changes: Vec<TypeChange>,
    pub new_options: Vec<NewOptions>,
}

/// A field whose Bitrix24 type or multiplicity changed (the column type may have to change).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TypeChange {
    pub code: String,
    pub old_type: String,
    pub new_type: String,
    pub old_multiple: bool,
    pub new_multiple: bool,
}

/// Enumeration options that appeared on a field (by option id).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewOptions {
    pub code: String,
    pub options: Vec<EnumOption>,
}

impl CatalogDiff {
    pub fn is_empty(&self) -> bool {
        self.new_entities.is_empty() && self.removed_entities.is_empty() && self.changed.is_empty()
    }
}

impl EntityDiff {
    pub fn is_empty(&self) -> bool {
        self.new_fields.is_empty()
            && self.removed_fields.is_empty()
            && self.type_changes.is_empty()
            && self.new_options.is_empty()
    }
}

pub fn diff(old: &Catalog, new: &Catalog) -> CatalogDiff {
    let mut out = CatalogDiff::default();
    for e in &new.entities {
        match old.entity(&e.name) {
            None => out.new_entities.push(e.name.clone()),
            Some(o) => {
                let d = diff_entity(o, e);
                if !d.is_empty() {
                    out.changed.push(d);
                }
            }
        }
    }
    out.removed_entities = old
        .entities
        .iter()
        .filter(|e| new.entity(&e.name).is_none())
        .map(|e| e.name.clone())
        .collect();
    out
}

fn diff_entity(old: &Entity, new: &Entity) -> EntityDiff {
    let mut d = EntityDiff {
        entity: new.name.clone(),
        ..Default::default()
    };
    for f in &new.fields {
        let Some(o) = old.field(&f.code) else {
            d.new_fields.push(f.clone());
            continue;
        };
        if o.bitrix_type != f.bitrix_type || o.multiple != f.multiple {
            d.type_changes.push(TypeChange {
                code: f.code.clone(),
                old_type: o.bitrix_type.clone(),
                new_type: f.bitrix_type.clone(),
                old_multiple: o.multiple,
                new_multiple: f.multiple,
            });
        }
        let added: Vec<EnumOption> = f
            .options
            .iter()
            .filter(|opt| o.options.iter().all(|x| x.id != opt.id))
            .cloned()
            .collect();
        if !added.is_empty() {
            d.new_options.push(NewOptions {
                code: f.code.clone(),
                options: added,
            });
        }
    }
    d.removed_fields = old
        .fields
        .iter()
        .filter(|f| new.field(&f.code).is_none())
        .map(|f| f.code.clone())
        .collect();
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::EntityKind;

    fn field(code: &str, t: &str, options: &[(u64, &str)]) -> Field {
        Field {
            code: code.into(),
            api_name: code.into(),
            bitrix_type: t.into(),
            multiple: false,
            required: false,
            user_field: code.starts_with("UF_"),
            label: code.into(),
            options: options
                .iter()
                .map(|(id, v)| EnumOption {
                    id: *id,
                    value: v.to_string(),
                })
                .collect(),
        }
    }

    fn entity(name: &str, fields: Vec<Field>) -> Entity {
        Entity {
            name: name.into(),
            kind: EntityKind::Crm,
            title: name.into(),
            method: "crm.lead".into(),
            entity_type_id: None,
            companion: None,
            fields,
        }
    }

    #[test]
    fn identical_catalogs_have_no_diff() {
        let c = Catalog {
            entities: vec![entity("crm_lead", vec![field("ID", "integer", &[])])],
            ..Catalog::default()
        };
        assert!(diff(&c, &c).is_empty());
    }

    #[test]
    fn reports_entities_fields_types_and_options() {
        let old = Catalog {
            entities: vec![
                entity(
                    "crm_lead",
                    vec![
                        field("ID", "integer", &[]),
                        field("UF_CRM_OLD", "string", &[]),
                        field("UF_CRM_KIND", "enumeration", &[(1, "a")]),
                        field("UF_CRM_N", "string", &[]),
                    ],
                ),
                entity("crm_dynamic_128", vec![field("ID", "integer", &[])]),
            ],
            ..Catalog::default()
        };
        let new = Catalog {
            entities: vec![
                entity(
                    "crm_lead",
                    vec![
                        field("ID", "integer", &[]),
                        field("UF_CRM_KIND", "enumeration", &[(1, "a"), (2, "b")]),
                        field("UF_CRM_N", "double", &[]),
                        field("UF_CRM_NEW", "money", &[]),
                    ],
                ),
                entity("crm_dynamic_130", vec![field("ID", "integer", &[])]),
            ],
            ..Catalog::default()
        };
        let d = diff(&old, &new);
        assert_eq!(d.new_entities, ["crm_dynamic_130"]);
        assert_eq!(d.removed_entities, ["crm_dynamic_128"]);
        assert_eq!(d.changed.len(), 1);
        let lead = &d.changed[0];
        assert_eq!(lead.new_fields.len(), 1);
        assert_eq!(lead.new_fields[0].code, "UF_CRM_NEW");
        assert_eq!(lead.removed_fields, ["UF_CRM_OLD"]);
        assert_eq!(lead.type_changes.len(), 1);
        assert_eq!(
            (
                lead.type_changes[0].old_type.as_str(),
                lead.type_changes[0].new_type.as_str()
            ),
            ("string", "double")
        );
        assert_eq!(lead.new_options.len(), 1);
        assert_eq!(lead.new_options[0].options[0].id, 2);
    }

    #[test]
    fn multiplicity_change_is_a_type_change() {
        let mut f = field("UF_CRM_X", "string", &[]);
        let old = Catalog {
            entities: vec![entity("crm_lead", vec![f.clone()])],
            ..Catalog::default()
        };
        f.multiple = true;
        let new = Catalog {
            entities: vec![entity("crm_lead", vec![f])],
            ..Catalog::default()
        };
        let d = diff(&old, &new);
        assert!(d.changed[0].type_changes[0].new_multiple);
    }
}
