//! The portal's data model: typed canonical values, field definitions and tables.
//!
//! Values are stored typed (never as API strings) and rendered per API style on output.
//! Big CRM tables are *lazy*: row `id` in `1..=max_id` is generated on demand from the seed, and
//! only modifications are stored, so a 2.4M-lead portal costs no memory or start-up time.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::NaiveDate;

use super::json_out::J;

/// A canonical typed value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Val {
    Null,
    Int(i64),
    /// Money/decimal amount in cents (exactly two decimals).
    Amount(i64),
    Float(f64),
    Bool(bool),
    Str(String),
    Date(NaiveDate),
    /// Unix seconds, UTC.
    DateTime(i64),
    /// Enumeration option id.
    Enum(u64),
    /// Money user field: amount in cents + currency.
    Money {
        cents: i64,
        currency: String,
    },
    /// CRM binding such as `D_12`.
    Binding(String),
    /// File id (rendered as file objects by the API).
    File(u64),
    /// Values of a multiple field.
    List(Vec<Val>),
    /// Multifield values (PHONE/EMAIL/WEB/IM).
    Fm(Vec<FmVal>),
}

impl Val {
    pub(crate) fn is_null(&self) -> bool {
        matches!(self, Val::Null)
    }

    /// The integer value when the value is integral (ids, enums, ints).
    pub(crate) fn as_i64(&self) -> Option<i64> {
        match self {
            Val::Int(i) => Some(*i),
            Val::Enum(e) => i64::try_from(*e).ok(),
            Val::File(e) => i64::try_from(*e).ok(),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FmVal {
    pub id: u64,
    pub type_id: String,
    pub value_type: String,
    pub value: String,
}

/// How a field's value is typed and therefore rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Int,
    Amount,
    Float,
    Str,
    /// `Y`/`N` flag (legacy `char`, crm.item `boolean`).
    YesNo,
    /// UF boolean, stored 1/0.
    UfBool,
    Date,
    DateTime,
    Enum,
    Money,
    Binding,
    File,
    Fm,
    /// A JSON boolean (user.get ACTIVE).
    JsonBool,
    /// An ORM DateTime object that PHP json-encodes as `{}` (user.get TIMESTAMP_X).
    OrmObject,
    /// A JSON object or PHP array (activity SETTINGS, status EXTRA), stored as its JSON text.
    Json,
}

/// Which legacy calls return a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LegacyVis {
    /// Only described by `*.fields` (CONTACT_IDS: "unsupported in list"; not in get either).
    FieldsOnly,
    /// Not in the legacy API at all.
    None,
    /// In `*.fields` and `*.get`, never in `*.list` (CONTACT_IDS, PARENT_ID_*).
    GetOnly,
    /// Regular field: `*` selects it.
    List,
    /// Multifield: only when named explicitly.
    Explicit,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EnumOpt {
    pub id: u64,
    pub value: String,
    pub sort: i64,
    pub def: bool,
    pub xml_id: String,
}

/// User-field metadata (`crm.*.userfield.list`).
#[derive(Debug, Clone)]
pub(crate) struct UfMeta {
    pub id: u64,
    pub user_type_id: String,
    pub sort: i64,
    pub label: String,
    pub mandatory: bool,
    pub settings: J,
    pub options: Vec<EnumOpt>,
}

#[derive(Debug, Clone)]
pub(crate) struct FieldDef {
    /// UPPER-CASE code: the legacy code for deal/lead/contact/company, `upperName` for others.
    pub code: String,
    /// camelCase name in `crm.item.*` (None = not exposed there).
    pub item: Option<String>,
    /// `upperName` in `crm.item.fields`.
    pub item_upper: String,
    /// The `type` reported by `*.fields`.
    pub api_type: String,
    pub kind: Kind,
    pub multiple: bool,
    pub title: String,
    pub required: bool,
    pub read_only: bool,
    pub immutable: bool,
    pub deprecated: bool,
    pub status_type: Option<String>,
    pub settings: Option<J>,
    pub legacy: LegacyVis,
    pub uf: Option<UfMeta>,
    pub genr: Gen,
}

impl FieldDef {
    pub(crate) fn is_uf(&self) -> bool {
        self.uf.is_some()
    }
}

/// What a table is, which decides the methods that serve it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TableKind {
    /// deal/lead/contact/company: legacy + crm.item.
    Crm,
    /// A smart process: crm.item only.
    Dynamic,
    User,
    Department,
    Activity,
    StageHistory,
    Status,
    Currency,
    Category,
    /// A task (`tasks.task.*`), with user fields (`task.item.userfield.getlist`).
    Task,
    /// A Kanban stage of a workgroup (`task.stages.get`).
    TaskStage,
    /// A task time record (`task.elapseditem.getlist`).
    TaskElapsed,
    /// A call record (`voximplant.statistic.get`).
    Call,
    /// A workgroup or project (`sonet_group.get`).
    Workgroup,
    /// Product rows of CRM items (`crm.item.productrow.list`).
    ProductRow,
    /// Catalog products (`crm.product.list`).
    Product,
    /// Catalog sections (`crm.productsection.list`).
    ProductSection,
    /// Requisites (`crm.requisite.list`).
    Requisite,
    /// Bank details of requisites (`crm.requisite.bankdetail.list`).
    RequisiteBank,
    /// Addresses of requisites and leads (`crm.address.list`): no `ID`.
    Address,
    /// Timeline comments (`crm.timeline.comment.list`), one owner per call.
    TimelineComment,
    /// The CRM items activities are bound to (`crm.activity.binding.list`): no `ID`.
    ActivityBinding,
}

#[derive(Debug, Clone)]
pub(crate) struct Table {
    pub name: String,
    pub kind: TableKind,
    pub entity_type_id: Option<u32>,
    /// Salt for lazy generation (stable per table).
    pub salt: u64,
    pub fields: Vec<FieldDef>,
    /// Lazy rows `1..=max_id` when `materialized` is None.
    pub max_id: u64,
    /// Rows the generated values are spread over (creation times, references to this table):
    /// `max_id` when built. Rows added later (`PortalControl::add_rows`) leave every existing
    /// row's generated values as they were.
    pub spread: u64,
    pub deleted: HashSet<u64>,
    pub overrides: HashMap<u64, Vec<(String, Val)>>,
    /// Small reference tables keep full rows instead (keyed by id, values by field index).
    pub materialized: Option<BTreeMap<u64, Vec<Val>>>,
}

impl Table {
    pub(crate) fn field_index(&self, code: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.code == code)
    }

    pub(crate) fn field(&self, code: &str) -> Option<&FieldDef> {
        self.fields.iter().find(|f| f.code == code)
    }
    pub(crate) fn exists(&self, id: u64) -> bool {
        match &self.materialized {
            Some(rows) => rows.contains_key(&id),
            None => id >= 1 && id <= self.max_id && !self.deleted.contains(&id),
        }
    }

    /// Ids in ascending order (lazy tables: a range minus deletions).
    pub(crate) fn ids(&self) -> Box<dyn DoubleEndedIterator<Item = u64> + '_> {
        match &self.materialized {
            Some(rows) => Box::new(rows.keys().copied()),
            None => Box::new((1..=self.max_id).filter(|id| !self.deleted.contains(id))),
        }
    }

    pub(crate) fn row_count(&self) -> u64 {
        match &self.materialized {
            Some(rows) => rows.len() as u64,
            None => self.max_id.saturating_sub(self.deleted.len() as u64),
        }
    }

    pub(crate) fn set_override(&mut self, id: u64, code: &str, v: Val) {
        if let Some(rows) = self.materialized.as_mut() {
            if let (Some(row), Some(idx)) = (
                rows.get_mut(&id),
                self.fields.iter().position(|f| f.code == code),
            ) {
                if row.len() <= idx {
                    row.resize(idx + 1, Val::Null);
                }
                row[idx] = v;
            }
            return;
        }
        let slot = self.overrides.entry(id).or_default();
        if let Some(e) = slot.iter_mut().find(|(c, _)| c == code) {
            e.1 = v;
        } else {
            slot.push((code.to_string(), v));
        }
    }

    pub(crate) fn delete(&mut self, id: u64) -> bool {
        if let Some(rows) = self.materialized.as_mut() {
            return rows.remove(&id).is_some();
        }
        if !self.exists(id) {
            return false;
        }
        self.overrides.remove(&id);
        self.deleted.insert(id)
    }
}

/// The field that records a row's last modification, per table kind.
pub(crate) fn modify_field(t: &Table) -> Option<&'static str> {
    match t.kind {
        TableKind::Crm | TableKind::Requisite | TableKind::RequisiteBank => Some("DATE_MODIFY"),
        TableKind::Dynamic => Some("UPDATED_TIME"),
        TableKind::Activity => Some("LAST_UPDATED"),
        TableKind::Task => Some("CHANGED_DATE"),
        TableKind::Workgroup => Some("DATE_UPDATE"),
        TableKind::User | TableKind::Product => Some("TIMESTAMP_X"),
        _ => None,
    }
}

/// Stage-history rows: two per owner (creation + current stage).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HistPart {
    Type,
    Owner,
    Time,
    Category,
    Stage,
    Semantic,
}

/// How a field's value is generated.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Gen {
    Null,
    Id,
    Const(Val),
    Title(&'static str),
    FirstName,
    LastName,
    /// A tricky phrase; the number is the null percentage.
    Phrase(u8),
    Word(&'static [&'static str], u8),
    IntRange(i64, i64, u8),
    /// Amount in whole units up to this maximum.
    Amount(i64),
    YesNo(u8),
    User,
    Company,
    Lead,
    FirstContact,
    ContactIds,
    CompanyIds,
    Observers,
    Parent(u32),
    Category,
    Stage,
    StageSemantic,
    Closed,
    LeadStatus,
    LeadSemantic,
    Currency,
    Created,
    Modified,
    Moved,
    DateAround(u8),
    Birthday,
    Fm(&'static str),
    HasFm(&'static str),
    Uf(UfGen),
    UserEmail,
    RegDate,
    UserDepartments,
    DeptName,
    DeptParent,
    Hist(HistPart),
    /// A Kanban stage of the row's workgroup (`GROUP_ID`), 0 without a group (tasks).
    GroupStage,
    /// The owner of a product row (`productrows.rs`).
    ProductRowOwner(OwnerPart),
    /// The identity or anchor of an address (`addresses.rs`).
    Address(AddressPart),
    /// The owner or files of a timeline comment (`timeline.rs`).
    Comment(CommentPart),
    /// A part of an activity binding (`bindings.rs`).
    Binding(BindingPart),
}

/// Which part of an activity binding a field holds (`bindings.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BindingPart {
    Activity,
    EntityType,
    EntityId,
    /// `activityId:entityTypeId:entityId`: ground truth only.
    Key,
}

/// Which part of a timeline comment a field holds (`timeline.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CommentPart {
    OwnerType,
    OwnerId,
    Files,
}

/// Which part of an address's identity a field holds (`addresses.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AddressPart {
    Type,
    EntityType,
    EntityId,
    AnchorType,
    AnchorId,
    /// `ENTITY_TYPE_ID:ENTITY_ID:TYPE_ID`: ground truth only.
    Key,
}

/// Which part of a product row's owner a field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OwnerPart {
    Id,
    /// The short type code (`D`, `L`, `Q`, `SI`, `T80`).
    Type,
    /// The owner's modification time: not a product-row field, but what a connector that
    /// reads rows owner by owner can record with them (b24ch's `OWNER_UPDATED_TIME`).
    Updated,
}

/// Product rows generated for one owner type: owner `o` (1-based, of the `owners` generated)
/// has rows `first_id + (o-1)*per_owner ..` (`productrows.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProductRowSegment {
    pub owner_table: String,
    pub entity_type_id: u32,
    pub short: String,
    pub first_id: u64,
    pub owners: u64,
    pub per_owner: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UfGen {
    Str,
    Int,
    Double,
    Bool,
    Date,
    DateTime,
    Enum,
    Money,
    Url,
    Address,
    File,
    Employee,
    Crm,
    CrmStatus,
    Iblock,
    Rest,
}

/// A smart-process type (`crm.type.list`).
#[derive(Debug, Clone)]
pub(crate) struct SpaType {
    pub id: u32,
    pub entity_type_id: u32,
    pub title: String,
    pub created: i64,
    pub updated: i64,
}

/// Everything the portal holds (its logic is in `store.rs`).
#[derive(Debug, Clone)]
pub(crate) struct PortalData {
    pub seed: u64,
    pub tables: BTreeMap<String, Table>,
    pub types: Vec<SpaType>,
    pub(crate) next_uf_id: u64,
    pub(crate) next_enum_id: u64,
    pub(crate) next_type_id: u32,
    pub(crate) next_category_id: i64,
    /// ENTITY_ID → [(STATUS_ID, semantic P/S/F)], rebuilt from the status table.
    pub(crate) stage_cache: HashMap<String, Vec<(String, String)>>,
    /// entityTypeId → category ids.
    pub(crate) category_cache: HashMap<u32, Vec<i64>>,
    /// How the lazy product-row table maps ids to owners.
    pub(crate) productrow_segments: Vec<ProductRowSegment>,
}
