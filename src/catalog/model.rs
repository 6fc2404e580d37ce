//! The catalog's data model: what entities a portal has and which fields they carry.
//!
//! This is the contract between discovery (which reads Bitrix24), the typed schema
//! (which maps fields to ClickHouse columns) and the ClickHouse side (which creates tables).
use serde::{Deserialize, Serialize};

/// What an entity is, as shown in `GET /v1/entities`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityKind {
    /// Deals, leads, contacts, companies, activities.
    Crm,
    /// A smart process (`crm.type.list`), one table per `entityTypeId`.
    SmartProcess,
    /// Small directories reloaded whole: users, departments, statuses, categories, currencies.
    Reference,
    /// Append-only history such as stage history.
    History,
}

/// One exportable entity of a portal: becomes one ClickHouse table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entity {
    /// Table name and the `{entity}` of the HTTP contract: `crm_deal`, `crm_dynamic_128`, `user`.
    pub name: String,
    pub kind: EntityKind,
    /// Human title (`Deal`, the smart process title).
    pub title: String,
    /// Key into the per-method knowledge table (`crate::bitrix::methods`), e.g. `crm.deal`.
    pub method: String,
    /// `entityTypeId` for methods that need it (`crm.item.*`, `crm.category.list`, stage history).
    pub entity_type_id: Option<u32>,
    /// Fields in the portal's order; the primary key field first.
    pub fields: Vec<Field>,
    /// A second method some fields are read with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub companion: Option<Companion>,
}

/// A second list method returning the same rows (`bitrix::methods::COMPANIONS`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Companion {
    /// Key into the per-method knowledge table.
    pub method: String,
    pub entity_type_id: Option<u32>,
    /// Codes of the fields read with it (their `api_name` is the companion's row key).
    pub fields: Vec<String>,
}

/// One Bitrix24 field of an entity (standard or user field).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Field {
    /// Upper-case code used as the ClickHouse column name: `ID`, `TITLE`, `UF_CRM_1721244707107`.
    pub code: String,
    /// Key of the value in list responses: `TITLE` (legacy) or `title`, `ufCrm5_1721` (crm.item).
    pub api_name: String,
    /// Bitrix24 type as `*.fields` reports it: `integer`, `money`, `enumeration`, `crm_multifield`…
    pub bitrix_type: String,
    pub multiple: bool,
    pub required: bool,
    /// User field (`isDynamic`).
    pub user_field: bool,
    /// Human label (the `listLabel` of user fields, the `title` of standard ones).
    pub label: String,
    /// Options of an `enumeration` field.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<EnumOption>,
}

/// One option of an enumeration user field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnumOption {
    pub id: u64,
    pub value: String,
}

/// Every entity of one portal.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Catalog {
    pub entities: Vec<Entity>,
}

impl Catalog {
    pub fn entity(&self, name: &str) -> Option<&Entity> {
        self.entities.iter().find(|e| e.name == name)
    }
}

impl Entity {
    pub fn field(&self, code: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.code == code)
    }

    /// Whether a field is read with the companion method.
    pub fn from_companion(&self, code: &str) -> bool {
        self.companion
            .as_ref()
            .is_some_and(|c| c.fields.iter().any(|f| f == code))
    }
}
