//! The one place where a Bitrix24 field type becomes a ClickHouse column type.
//!
//! `table_columns` turns a catalog [`Entity`] into the ordered list of table columns:
//! one column per field (two for a money user field), then the service columns.
//! Every other module (normalisation, Arrow/Parquet/JSONEachRow encoding, DDL) reads
//! the resulting [`ChType`]s and never looks at Bitrix24 type names again.
use crate::catalog::{Entity, EntityKind, Field};

/// A ClickHouse column type, as far as b24ch needs them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ChType {
    Bool,
    /// Only for the `_is_deleted` service column (ReplacingMergeTree wants UInt8).
    UInt8,
    Int64,
    UInt64,
    Float64,
    Decimal {
        precision: u8,
        scale: u8,
    },
    Date32,
    /// `DateTime64(precision, 'UTC')`; cells hold units of 10^-precision seconds.
    DateTime64 {
        precision: u8,
    },
    String,
    LowCardinalityString,
    Array(Box<ChType>),
    Nullable(Box<ChType>),
    /// `Array(Tuple(value String, value_type String))` for `crm_multifield`.
    MultiField,
    /// `Map(String, String)` for the `_invalid` service column.
    Map,
}

/// Scale of every money amount: Bitrix24 stores them as `decimal(18,2)`.
pub const MONEY_SCALE: u8 = 2;
/// Precision of every money amount.
pub const MONEY_PRECISION: u8 = 18;

impl ChType {
    /// `Decimal(18,2)`, the money type.
    pub fn money() -> ChType {
        ChType::Decimal {
            precision: MONEY_PRECISION,
            scale: MONEY_SCALE,
        }
    }

    /// `Nullable(self)`.
    pub fn nullable(self) -> ChType {
        ChType::Nullable(Box::new(self))
    }

    /// `Array(self)`.
    pub fn array(self) -> ChType {
        ChType::Array(Box::new(self))
    }

    /// The type with one `Nullable` wrapper removed, and whether there was one.
    pub fn strip_nullable(&self) -> (&ChType, bool) {
        match self {
            ChType::Nullable(inner) => (inner, true),
            other => (other, false),
        }
    }

    pub fn is_nullable(&self) -> bool {
        matches!(self, ChType::Nullable(_))
    }

    /// The ClickHouse SQL spelling of the type, ready for `CREATE TABLE`.
    pub fn sql(&self) -> String {
        match self {
            ChType::Bool => "Bool".into(),
            ChType::UInt8 => "UInt8".into(),
            ChType::Int64 => "Int64".into(),
            ChType::UInt64 => "UInt64".into(),
            ChType::Float64 => "Float64".into(),
            ChType::Decimal { precision, scale } => format!("Decimal({precision}, {scale})"),
            ChType::Date32 => "Date32".into(),
            ChType::DateTime64 { precision } => format!("DateTime64({precision}, 'UTC')"),
            ChType::String => "String".into(),
            ChType::LowCardinalityString => "LowCardinality(String)".into(),
            ChType::Array(inner) => format!("Array({})", inner.sql()),
            // ClickHouse rejects `Nullable(LowCardinality(String))`: the wrappers swap.
            ChType::Nullable(inner) if **inner == ChType::LowCardinalityString => {
                "LowCardinality(Nullable(String))".into()
            }
            ChType::Nullable(inner) => format!("Nullable({})", inner.sql()),
            ChType::MultiField => "Array(Tuple(value String, value_type String))".into(),
            ChType::Map => "Map(String, String)".into(),
        }
    }
}

/// Which part of a raw value a column takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValuePart {
    Whole,
    /// The whole value, an id of another object: `0`, `"0"`, `""`, `false` mean "no target"
    /// and become NULL (crm.item sends `0` where legacy lists send `null`).
    Reference,
    /// The id of a file user field (`{"id":5001,"url":…}`, its JSON text, or a bare id).
    FileId,
    /// The download path of a file user field (`url`, or legacy `downloadUrl`).
    FileUrl,
    /// The amount of a money user field `"123.45|RUB"`.
    MoneyAmount,
    /// The currency of a money user field `"123.45|RUB"`.
    MoneyCurrency,
}

/// The primary-key value of watermark rows; Bitrix24 IDs start at 1.
pub const WATERMARK_ID: i64 = 0;

/// Milliseconds since the Unix epoch: the `_version` stamp of a load and the clock of the
/// load statistics.
pub fn now_ms() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0)
}

/// Columns b24ch adds to every table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServiceColumn {
    /// `dt_inserted`: when b24ch produced the row (name kept from the original product).
    DtInserted,
    /// `_version`: extraction time in ms, the ReplacingMergeTree version.
    Version,
    /// `_is_deleted`: 1 for a tombstone.
    IsDeleted,
    /// `_invalid`: field code → raw JSON text of every value that did not fit its type.
    Invalid,
}

impl ServiceColumn {
    pub const ALL: [ServiceColumn; 4] = [
        ServiceColumn::DtInserted,
        ServiceColumn::Version,
        ServiceColumn::IsDeleted,
        ServiceColumn::Invalid,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ServiceColumn::DtInserted => "dt_inserted",
            ServiceColumn::Version => "_version",
            ServiceColumn::IsDeleted => "_is_deleted",
            ServiceColumn::Invalid => "_invalid",
        }
    }

    pub fn ch_type(self) -> ChType {
        match self {
            ServiceColumn::DtInserted => ChType::DateTime64 { precision: 3 },
            ServiceColumn::Version => ChType::UInt64,
            ServiceColumn::IsDeleted => ChType::UInt8,
            ServiceColumn::Invalid => ChType::Map,
        }
    }

    fn label(self) -> &'static str {
        match self {
            ServiceColumn::DtInserted => "Load time (UTC)",
            ServiceColumn::Version => "Row version (extraction time, ms)",
            ServiceColumn::IsDeleted => "Deleted in the portal",
            ServiceColumn::Invalid => "Raw values that did not fit their column type",
        }
    }
}

/// Where a column's value comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ColumnSource {
    /// A key of the raw Bitrix24 row.
    Field { api_name: String, part: ValuePart },
    /// Filled by b24ch.
    Service(ServiceColumn),
}

/// One ClickHouse column of an entity's table.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Column {
    /// Upper-case field code (`ID`, `UF_CRM_…`, `UF_CRM_…_CURRENCY`) or a service name.
    pub name: String,
    pub ch_type: ChType,
    pub source: ColumnSource,
    /// The Bitrix24 type the column came from (`service` for service columns).
    pub bitrix_type: String,
    pub label: String,
}

impl Column {
    pub fn api_name(&self) -> Option<&str> {
        match &self.source {
            ColumnSource::Field { api_name, .. } => Some(api_name),
            ColumnSource::Service(_) => None,
        }
    }

    pub fn service(&self) -> Option<ServiceColumn> {
        match self.source {
            ColumnSource::Service(s) => Some(s),
            ColumnSource::Field { .. } => None,
        }
    }
}

/// Suffix of the currency column of a money user field.
pub const CURRENCY_SUFFIX: &str = "_CURRENCY";
/// Suffix of the download-path column of a file user field.
pub const URL_SUFFIX: &str = "_URL";

/// `integer` fields that hold the id of another object (the rest are ids by their type).
/// Sources: crm.item.fields (`webformId`), crm-activity-fields.md (`OWNER_ID`,
/// `ASSOCIATED_ENTITY_ID`), crm.stagehistory.list (`OWNER_ID`), department.get (`PARENT`),
/// user.get (`UF_DEPARTMENT`).
const REFERENCE_INTEGER_CODES: &[&str] = &[
    "WEBFORM_ID",
    "OWNER_ID",
    "ASSOCIATED_ENTITY_ID",
    "PARENT",
    "UF_DEPARTMENT",
];

/// Whether a field holds the id of another object, so that `0` means "none". Not
/// `CATEGORY_ID`: pipeline 0 is the default deal pipeline.
pub fn is_reference(field: &Field) -> bool {
    let t = field.bitrix_type.as_str();
    field.code != "CATEGORY_ID"
        && (is_id_binding(t)
            || (matches!(t, "integer" | "int")
                && REFERENCE_INTEGER_CODES.contains(&field.code.as_str())))
}

/// Standard `double` fields that hold money (legacy codes, `upperName`s of crm.item, and
/// product rows). Bitrix24 stores them as `decimal(18,2)`, so Float64 would add noise.
const MONEY_FIELD_CODES: &[&str] = &[
    "OPPORTUNITY",
    "OPPORTUNITY_ACCOUNT",
    "TAX_VALUE",
    "TAX_VALUE_ACCOUNT",
    "PRICE",
    "PRICE_ACCOUNT",
    "PRICE_EXCLUSIVE",
    "PRICE_NETTO",
    "PRICE_BRUTTO",
    "DISCOUNT_SUM",
    // Company annual revenue (`b_crm_company.REVENUE decimal(18,2)`, with CURRENCY_ID).
    "REVENUE",
    "SUM",
    "AMOUNT",
];

/// Every column of the entity's table: fields in catalog order, then the service columns.
pub fn table_columns(entity: &Entity) -> Vec<Column> {
    let money_context = matches!(entity.kind, EntityKind::Crm | EntityKind::SmartProcess);
    let pk = entity.fields.first().map(|f| f.code.as_str());
    let mut columns = Vec::with_capacity(entity.fields.len() + ServiceColumn::ALL.len() + 2);
    for field in &entity.fields {
        push_field_columns(&mut columns, field, money_context, pk == Some(&field.code));
    }
    columns.extend(ServiceColumn::ALL.iter().map(|s| service_column(*s)));
    columns
}

/// The column of a service value.
pub fn service_column(service: ServiceColumn) -> Column {
    Column {
        name: service.name().into(),
        ch_type: service.ch_type(),
        source: ColumnSource::Service(service),
        bitrix_type: "service".into(),
        label: service.label().into(),
    }
}

/// The primary key: the first field column (the catalog puts the key field first).
pub fn primary_key_column(columns: &[Column]) -> Option<&Column> {
    columns.iter().find(|c| c.service().is_none())
}

/// The incremental cursor column, if the table has one of the known modification stamps.
pub fn cursor_column(columns: &[Column]) -> Option<&Column> {
    const CURSORS: &[&str] = &[
        "DATE_MODIFY",
        "UPDATED_TIME",
        "LAST_UPDATED",
        "CHANGED_DATE",
        "DATE_UPDATE",
        "CREATED_TIME",
        "CALL_START_DATE",
        // Product rows: their owner's modification time (`bitrix::productrows`).
        "OWNER_UPDATED_TIME",
        // Catalog products (`crm.product.list`); users' TIMESTAMP_X is `{}`, kept as text.
        "TIMESTAMP_X",
    ];
    CURSORS.iter().find_map(|name| {
        columns.iter().find(|c| {
            c.name == *name && matches!(c.ch_type.strip_nullable().0, ChType::DateTime64 { .. })
        })
    })
}

fn push_field_columns(out: &mut Vec<Column>, field: &Field, money_context: bool, is_pk: bool) {
    let column = |name: String, base: ChType, part: ValuePart| Column {
        name,
        ch_type: wrap(base, field.multiple, is_pk),
        source: ColumnSource::Field {
            api_name: field.api_name.clone(),
            part,
        },
        bitrix_type: field.bitrix_type.clone(),
        label: field.label.clone(),
    };
    if field.bitrix_type == "money" {
        out.push(column(
            field.code.clone(),
            ChType::money(),
            ValuePart::MoneyAmount,
        ));
        let mut currency = column(
            format!("{}{CURRENCY_SUFFIX}", field.code),
            ChType::LowCardinalityString,
            ValuePart::MoneyCurrency,
        );
        currency.label = format!("{} (currency)", field.label);
        out.push(currency);
        return;
    }
    // `attached_diskfile`: timeline-comment files, `{id: {id, urlDownload, …}}` in rows.
    if matches!(field.bitrix_type.as_str(), "file" | "attached_diskfile") {
        out.push(column(
            field.code.clone(),
            ChType::UInt64,
            ValuePart::FileId,
        ));
        let mut url = column(
            format!("{}{URL_SUFFIX}", field.code),
            ChType::String,
            ValuePart::FileUrl,
        );
        url.label = format!("{} (download path)", field.label);
        out.push(url);
        return;
    }
    let base = base_type(field, money_context);
    let part = if is_reference(field) && !is_pk {
        ValuePart::Reference
    } else {
        ValuePart::Whole
    };
    out.push(column(field.code.clone(), base, part));
}

/// Multiple → `Array(base)` (no Nullable inside); the primary key is never Nullable;
/// everything else is Nullable because Bitrix24 may return an empty value for any field,
/// `isRequired` included (the flag can be switched on after rows exist), and a made-up
/// default would be invented data.
fn wrap(base: ChType, multiple: bool, is_pk: bool) -> ChType {
    match base {
        ChType::MultiField => ChType::MultiField,
        _ if multiple => base.array(),
        _ if is_pk => base,
        _ => base.nullable(),
    }
}

/// The ClickHouse type of one value of the field (before Array/Nullable wrapping).
fn base_type(field: &Field, money_context: bool) -> ChType {
    let t = field.bitrix_type.as_str();
    match t {
        // `int` is how crm.currency.fields spells it; `crm_enum_*` (activity type, status,
        // direction…) are numeric ids of fixed enumerations.
        "integer" | "int" => ChType::Int64,
        _ if t.starts_with("crm_enum_") => ChType::Int64,
        "double" if money_context && MONEY_FIELD_CODES.contains(&field.code.as_str()) => {
            ChType::money()
        }
        "double" => ChType::Float64,
        "char" | "boolean" => ChType::Bool,
        "date" => ChType::Date32,
        "datetime" => ChType::DateTime64 { precision: 0 },
        "string" | "text" | "url" => ChType::String,
        "crm_status" | "crm_category" | "crm_currency" => ChType::LowCardinalityString,
        "enumeration" => ChType::UInt64,
        "crm_multifield" => ChType::MultiField,
        // `crm` bindings are prefixed (`D_12`, `CO_3`), so they stay text.
        "crm" => ChType::String,
        _ if is_id_binding(t) => ChType::UInt64,
        // address, location, resourcebooking, rest_…, and anything new: raw text.
        _ => ChType::String,
    }
}

/// Types whose values are plain numeric IDs of another object.
fn is_id_binding(t: &str) -> bool {
    matches!(
        t,
        "user"
            | "employee"
            | "crm_company"
            | "crm_contact"
            | "crm_lead"
            | "crm_deal"
            | "crm_quote"
            | "crm_entity"
            | "crm_invoice"
            | "crm_smart_invoice"
    ) || t.starts_with("iblock_")
}
