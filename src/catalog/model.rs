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

/// Every entity of one portal: the ones it serves, and the ones it refused.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Catalog {
    pub entities: Vec<Entity>,
    /// Entities the portal cannot serve now (no table, no load); checked again at every
    /// discovery. Never in `entities`, so no code path can load one by forgetting a flag.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unavailable: Vec<Unavailable>,
}

impl Catalog {
    pub fn entity(&self, name: &str) -> Option<&Entity> {
        self.entities.iter().find(|e| e.name == name)
    }

    /// Why the portal cannot serve `name`, if it refused it.
    pub fn unavailable(&self, name: &str) -> Option<&Unavailable> {
        self.unavailable.iter().find(|u| u.entity == name)
    }
}

/// How a portal refused an entity's method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnavailableReason {
    /// `ERROR_METHOD_NOT_FOUND`: the portal's plan or version has no such method.
    MethodNotFound,
    /// The method exists but not for this entity type (`ENTITY_TYPE_NOT_SUPPORTED`).
    NotSupported,
    /// The webhook or app lacks a scope (`insufficient_scope`).
    MissingScope,
    /// The user the credentials act as may not read it (`ACCESS_DENIED`).
    AccessDenied,
}

/// An entity the portal cannot serve, in the portal's own words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unavailable {
    /// The entity (table) name, as it would be in `Catalog::entities`.
    pub entity: String,
    pub kind: EntityKind,
    pub title: String,
    /// The Bitrix24 method that refused (`crm.currency.list`).
    pub method: String,
    pub reason: UnavailableReason,
    /// The portal's error code as sent (`ERROR_METHOD_NOT_FOUND`; empty when it sent none).
    pub code: String,
    /// The portal's `error_description`.
    pub message: String,
    /// For a scope error: the scope to add to the webhook or app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// What to do about it.
    pub hint: String,
}

impl Unavailable {
    /// `crm.currency.list answered ERROR_METHOD_NOT_FOUND: Method not found!`
    pub fn portal_said(&self) -> String {
        let code = if self.code.is_empty() {
            "(empty code)"
        } else {
            &self.code
        };
        let message = if self.message.is_empty() {
            String::new()
        } else {
            // One line: it ends up in log lines, SQL comments and `url()` error texts.
            let flat: String = self
                .message
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            format!(": {flat}")
        };
        format!("{} answered {code}{message}", self.method)
    }

    /// One line for logs, `check` and HTTP errors: entity, the portal's words, what to do.
    pub fn explain(&self) -> String {
        format!(
            "{} is unavailable on this portal: Bitrix24 {}; {}",
            self.entity,
            self.portal_said(),
            self.hint
        )
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
