//! Per-method knowledge of the Bitrix24 REST API, in one table.
//!
//! Every difference between list methods (envelope, id casing, cursor field, paging, select
//! rules, user-field naming) is data here; the client, listing and discovery read it instead of
//! branching on method names. Sources: `docs/bitrix24-api.md` §2, §5, §6 and the fixtures.

/// Where the rows sit inside `result`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Envelope {
    /// `result: [...]`
    Result,
    /// `result: {items: [...]}` (`crm.item.list`, `crm.stagehistory.list`)
    Items,
    /// `result: {tasks: [...]}`
    Tasks,
    /// `result: {types: [...]}`
    Types,
    /// `result: {categories: [...]}`
    Categories,
    /// `result: {productRows: [...]}` (`crm.item.productrow.list`)
    ProductRows,
}

impl Envelope {
    /// The key under `result` holding the rows, if any.
    pub fn key(self) -> Option<&'static str> {
        match self {
            Envelope::Result => None,
            Envelope::Items => Some("items"),
            Envelope::Tasks => Some("tasks"),
            Envelope::Types => Some("types"),
            Envelope::Categories => Some("categories"),
            Envelope::ProductRows => Some("productRows"),
        }
    }
}

/// How a list method pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paging {
    /// `start=-1`, `order ID ASC`, `>ID` cursor; 50 pages chained in one `batch`.
    IdChain,
    /// `start=0,50,…` following `next` (methods that cannot filter by `>ID`).
    Offset,
    /// One call returns everything (`crm.status.list`, `*.userfield.list`).
    Unpaged,
    /// Rows only of named owners: the owners are listed first, then their rows many owners
    /// per command, `>id` chained (`bitrix::productrows`).
    OwnerChain,
    /// No `ID`: rows are keyed by several fields ([`CompositeKey`]), ordered by all of them
    /// with `start=-1`, and pages chained through `>=` on the first part, the overlap
    /// dropped (`bitrix::keyset`).
    KeyChain,
}

/// How the sort order is passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderStyle {
    /// `order: {ID: "ASC"}`
    Object,
    /// `sort: "ID", order: "ASC"` (`user.get`, `department.get`): applied only if both are given.
    SortAndOrder,
    /// `SORT: "ID", ORDER: "ASC"` (`voximplant.statistic.get`, named so in its docs).
    UpperSortAndOrder,
    /// `ORDER: {ID: "ASC"}` (`sonet_group.get`, named so in its docs).
    UpperObject,
}

/// How filter conditions are passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterStyle {
    /// Under a `filter` object.
    Object,
    /// Under `FILTER` (`user.get`: a nested `FILTER` replaces the top-level keys).
    UpperObject,
    /// As top-level parameters (`department.get`).
    TopLevel,
    /// Positional arguments `ORDER, FILTER, SELECT, PARAMS` in that order, one page through
    /// `PARAMS.NAV_PARAMS` and no `start` (the `task.*item.*` methods of CTaskRestService:
    /// "follow the specified order of parameters", task-elapsed-item-get-list.md).
    Positional,
}

/// What `*.fields` returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldsFormat {
    /// `result: {CODE: {type, isMultiple, title, …}}` (legacy CRM).
    Description,
    /// `result: {fields: {apiName: {…, upperName}}}` (controller API).
    DescriptionInFields,
    /// `result: {CODE: "Title"}` (`user.fields`, `department.fields`): types come from a static list.
    TitleMap,
    /// No fields method: the field list is static (stage history).
    Static,
}

/// Which `entityTypeId`s one entity's listing covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeScope {
    /// The entity's own `entityTypeId`, or none for methods that take none.
    Own,
    /// These types, then every smart process of the portal (`DYNAMIC_N` in
    /// `crm.enum.ownertype`), listed one after another into one table; the first type also
    /// answers the `*.fields` call.
    FixedAndSmartProcesses(&'static [u32]),
    /// One call per row of another entity's listing, its id passed as `param` (Kanban stages
    /// per workgroup: `task.stages.get` with `entityId`), listed one after another into one
    /// table. `parent` is a key of this table.
    PerParent {
        parent: &'static str,
        param: &'static str,
        /// Extra top-level parameters of every call (`isAdmin`).
        fixed: &'static [(&'static str, bool)],
    },
}

/// Predefined `crm.item` types that have pipelines, by their `crm.enum.ownertype` code: listed
/// after the smart processes by a [`TypeScope::FixedAndSmartProcesses`] listing where the
/// portal has them (new-type invoices are absent from older on-premise installs).
pub const PREDEFINED_TYPES_WITH_PIPELINES: &[(&str, u32)] = &[("SMART_INVOICE", 31)];

/// The `entityTypeId` of a smart process from its `crm.enum.ownertype` code (`DYNAMIC_128`).
pub fn smart_process_type_id(symbol_code: &str) -> Option<u32> {
    symbol_code.strip_prefix("DYNAMIC_")?.parse().ok()
}

/// How user fields are named in rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UfNaming {
    /// `UF_CRM_…` as is.
    Upper,
    /// `ufCrm…` camelCase in rows; `crm.item.fields` gives `upperName` for the column code
    /// (the conversion is not reversible, so never derive one from the other).
    CamelWithUpperName,
    /// The method has no user fields.
    None,
    /// Every key of a row, user fields included, is the camelCase of the field's upper-case
    /// code by Bitrix24's `Converter::toJson` (`CREATED_DATE` → `createdDate`, `UF_CRM_TASK`
    /// → `ufCrmTask`; [`row_key_of_code`]), while `select`, `filter` and `order` take the code
    /// itself (`tasks.task.list`, tasks/fields.md). Column names are the codes.
    CamelOfCode,
}

/// How `select` is built when the caller asks for "everything".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelectRule {
    /// `*` + `UF_*`, plus multi-fields named explicitly (`*` excludes them,
    /// docs/bitrix24-api.md §1.4).
    StarUfAndMultifields(&'static [&'static str]),
    /// `*` + `UF_*` (crm.item: `fm` only comes with `*`; `UF_*` is accepted and harmless).
    StarAndUf,
    /// `*` only.
    Star,
    /// `*` plus these named explicitly (`crm.product.list`: `PROPERTY_*` for the properties).
    StarAnd(&'static [&'static str]),
    /// The method takes no select: everything is returned.
    None,
}

/// The primary key as it appears in rows, filters/order and select.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdSpec {
    /// Key of the id in returned rows (`ID`, `id`).
    pub row: &'static str,
    /// Key used in `filter` (`>ID`) and `order`.
    pub filter: &'static str,
}

/// The modification (or creation, for append-only tables) time used for incremental loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CursorSpec {
    pub row: &'static str,
    pub filter: &'static str,
}

/// Everything the code needs to know about one family of methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MethodSpec {
    /// Key used by the catalog (`Entity::method`): `crm.deal`, `crm.item`, `user`.
    pub key: &'static str,
    pub list: &'static str,
    pub get: Option<&'static str>,
    pub fields: Option<&'static str>,
    pub fields_format: FieldsFormat,
    pub userfield_list: Option<&'static str>,
    pub envelope: Envelope,
    pub id: IdSpec,
    pub cursor: Option<CursorSpec>,
    pub paging: Paging,
    pub order_style: OrderStyle,
    pub filter_style: FilterStyle,
    pub value_style: ValueStyle,
    pub uf_naming: UfNaming,
    /// `entityTypeId` must be passed to list/fields.
    pub needs_entity_type_id: bool,
    /// Which `entityTypeId`s one listing covers.
    pub type_scope: TypeScope,
    pub select: SelectRule,
    /// Why this method is used and its known quirks.
    pub notes: &'static str,
}

const MULTIFIELDS: &[&str] = &["PHONE", "EMAIL", "WEB", "IM"];
const ID_UPPER: IdSpec = IdSpec {
    row: "ID",
    filter: "ID",
};
const ID_LOWER: IdSpec = IdSpec {
    row: "id",
    filter: "id",
};
const DATE_MODIFY: Option<CursorSpec> = Some(CursorSpec {
    row: "DATE_MODIFY",
    filter: "DATE_MODIFY",
});

const fn legacy_crm(
    key: &'static str,
    list: &'static str,
    get: &'static str,
    fields: &'static str,
    uf: &'static str,
    notes: &'static str,
) -> MethodSpec {
    MethodSpec {
        key,
        list,
        get: Some(get),
        fields: Some(fields),
        fields_format: FieldsFormat::Description,
        userfield_list: Some(uf),
        envelope: Envelope::Result,
        id: ID_UPPER,
        cursor: DATE_MODIFY,
        paging: Paging::IdChain,
        order_style: OrderStyle::Object,
        filter_style: FilterStyle::Object,
        value_style: ValueStyle::Legacy,
        uf_naming: UfNaming::Upper,
        needs_entity_type_id: false,
        type_scope: TypeScope::Own,
        select: SelectRule::StarUfAndMultifields(MULTIFIELDS),
        notes,
    }
}

/// The table. Unknown filter keys are silently dropped by legacy CRM lists
/// (docs/bitrix24-api.md §1.4), so the filter keys here are exactly the upper-case field codes.
pub static METHODS: &[MethodSpec] = &[
    legacy_crm(
        "crm.deal",
        "crm.deal.list",
        "crm.deal.get",
        "crm.deal.fields",
        "crm.deal.userfield.list",
        "Kept for completeness; crm_deal is listed with crm.item (entityTypeId 2) because legacy \
         crm.deal.list returns neither CONTACT_IDS nor parent bindings (docs/architecture.md).",
    ),
    legacy_crm(
        "crm.lead",
        "crm.lead.list",
        "crm.lead.get",
        "crm.lead.fields",
        "crm.lead.userfield.list",
        "Legacy list: PHONE/EMAIL/WEB/IM come as their own columns when named in select.",
    ),
    legacy_crm(
        "crm.contact",
        "crm.contact.list",
        "crm.contact.get",
        "crm.contact.fields",
        "crm.contact.userfield.list",
        "Legacy list: multi-fields as columns (crm.item would fold them into one `fm`).",
    ),
    legacy_crm(
        "crm.company",
        "crm.company.list",
        "crm.company.get",
        "crm.company.fields",
        "crm.company.userfield.list",
        "Legacy list: multi-fields as columns; PARENT_ID_* bindings are returned (fixture).",
    ),
    MethodSpec {
        key: "crm.item",
        list: "crm.item.list",
        get: Some("crm.item.get"),
        fields: Some("crm.item.fields"),
        fields_format: FieldsFormat::DescriptionInFields,
        userfield_list: None,
        envelope: Envelope::Items,
        id: ID_LOWER,
        cursor: Some(CursorSpec {
            row: "updatedTime",
            filter: "updatedTime",
        }),
        paging: Paging::IdChain,
        order_style: OrderStyle::Object,
        filter_style: FilterStyle::Object,
        value_style: ValueStyle::Typed,
        uf_naming: UfNaming::CamelWithUpperName,
        needs_entity_type_id: true,
        type_scope: TypeScope::Own,
        select: SelectRule::StarAndUf,
        notes: "Deals (entityTypeId 2: contactIds, parentId{N}) and every smart process. Column \
                codes are the `upperName` from crm.item.fields; unknown filter keys are an \
                INVALID_ARG_VALUE error, not silently dropped.",
    },
    MethodSpec {
        key: "crm.activity",
        list: "crm.activity.list",
        get: Some("crm.activity.get"),
        fields: Some("crm.activity.fields"),
        fields_format: FieldsFormat::Description,
        userfield_list: None,
        envelope: Envelope::Result,
        id: ID_UPPER,
        cursor: Some(CursorSpec {
            row: "LAST_UPDATED",
            filter: "LAST_UPDATED",
        }),
        paging: Paging::IdChain,
        order_style: OrderStyle::Object,
        filter_style: FilterStyle::Object,
        value_style: ValueStyle::Legacy,
        uf_naming: UfNaming::None,
        needs_entity_type_id: false,
        type_scope: TypeScope::Own,
        select: SelectRule::Star,
        notes: "Default order is START_TIME, so `order: {ID: ASC}` is always sent.",
    },
    MethodSpec {
        key: "crm.stagehistory",
        list: "crm.stagehistory.list",
        get: None,
        fields: None,
        fields_format: FieldsFormat::Static,
        userfield_list: None,
        envelope: Envelope::Items,
        id: ID_UPPER,
        cursor: Some(CursorSpec {
            row: "CREATED_TIME",
            filter: "CREATED_TIME",
        }),
        paging: Paging::IdChain,
        order_style: OrderStyle::Object,
        filter_style: FilterStyle::Object,
        value_style: ValueStyle::Typed,
        uf_naming: UfNaming::None,
        needs_entity_type_id: true,
        type_scope: TypeScope::Own,
        select: SelectRule::Star,
        notes: "Append-only; `{items: [...]}` but upper-case keys. Per entity type (1, 2, SPAs).",
    },
    MethodSpec {
        key: "crm.status",
        list: "crm.status.list",
        get: None,
        fields: Some("crm.status.fields"),
        fields_format: FieldsFormat::Description,
        userfield_list: None,
        envelope: Envelope::Result,
        id: ID_UPPER,
        cursor: None,
        paging: Paging::Unpaged,
        order_style: OrderStyle::Object,
        filter_style: FilterStyle::Object,
        value_style: ValueStyle::Legacy,
        uf_naming: UfNaming::None,
        needs_entity_type_id: false,
        type_scope: TypeScope::Own,
        select: SelectRule::None,
        notes: "Unpaginated directory of stages, sources, types.",
    },
    MethodSpec {
        key: "crm.category",
        list: "crm.category.list",
        get: None,
        fields: Some("crm.category.fields"),
        fields_format: FieldsFormat::DescriptionInFields,
        userfield_list: None,
        envelope: Envelope::Categories,
        id: ID_LOWER,
        cursor: None,
        paging: Paging::Offset,
        order_style: OrderStyle::Object,
        filter_style: FilterStyle::Object,
        value_style: ValueStyle::Typed,
        uf_naming: UfNaming::None,
        needs_entity_type_id: true,
        type_scope: TypeScope::FixedAndSmartProcesses(&[2]),
        select: SelectRule::None,
        notes: "Pipelines per entityTypeId: deals, then every smart process. Ids are unique \
                across types except the virtual deal default pipeline 0; rows carry \
                entityTypeId. The doc's fields differ per type (originId for deals, isSystem \
                for smart processes).",
    },
    MethodSpec {
        key: "crm.currency",
        list: "crm.currency.list",
        get: Some("crm.currency.get"),
        fields: Some("crm.currency.fields"),
        fields_format: FieldsFormat::Description,
        userfield_list: None,
        envelope: Envelope::Result,
        id: IdSpec {
            row: "CURRENCY",
            filter: "CURRENCY",
        },
        cursor: None,
        paging: Paging::Offset,
        order_style: OrderStyle::Object,
        filter_style: FilterStyle::Object,
        value_style: ValueStyle::Legacy,
        uf_naming: UfNaming::None,
        needs_entity_type_id: false,
        type_scope: TypeScope::Own,
        select: SelectRule::None,
        notes: "String primary key (CURRENCY): cannot use the numeric >ID chain.",
    },
    MethodSpec {
        key: "crm.type",
        list: "crm.type.list",
        get: Some("crm.type.get"),
        fields: Some("crm.type.fields"),
        fields_format: FieldsFormat::DescriptionInFields,
        userfield_list: None,
        envelope: Envelope::Types,
        id: ID_LOWER,
        cursor: Some(CursorSpec {
            row: "updatedTime",
            filter: "updatedTime",
        }),
        paging: Paging::Offset,
        order_style: OrderStyle::Object,
        filter_style: FilterStyle::Object,
        value_style: ValueStyle::Typed,
        uf_naming: UfNaming::None,
        needs_entity_type_id: false,
        type_scope: TypeScope::Own,
        select: SelectRule::None,
        notes: "CRM admins only (ACCESS_DENIED otherwise: fall back to crm.enum.ownertype). \
                Rejects upper-case `order ID`.",
    },
    MethodSpec {
        key: "user",
        list: "user.get",
        get: None,
        fields: Some("user.fields"),
        fields_format: FieldsFormat::TitleMap,
        userfield_list: None,
        envelope: Envelope::Result,
        id: ID_UPPER,
        cursor: None,
        paging: Paging::IdChain,
        order_style: OrderStyle::SortAndOrder,
        filter_style: FilterStyle::UpperObject,
        value_style: ValueStyle::Legacy,
        uf_naming: UfNaming::Upper,
        needs_entity_type_id: false,
        type_scope: TypeScope::Own,
        select: SelectRule::StarAndUf,
        notes: "sort/order are two strings; TIMESTAMP_X comes back as `{}` (unusable as a \
                cursor), so users are reloaded whole; an empty page has no `total`.",
    },
    MethodSpec {
        key: "department",
        list: "department.get",
        get: None,
        fields: Some("department.fields"),
        fields_format: FieldsFormat::TitleMap,
        userfield_list: None,
        envelope: Envelope::Result,
        id: ID_UPPER,
        cursor: None,
        paging: Paging::Offset,
        order_style: OrderStyle::SortAndOrder,
        filter_style: FilterStyle::TopLevel,
        value_style: ValueStyle::Legacy,
        uf_naming: UfNaming::Upper,
        needs_entity_type_id: false,
        type_scope: TypeScope::Own,
        select: SelectRule::None,
        notes: "Filter keys are top-level params (ID, NAME, SORT, PARENT, UF_HEAD); no >ID.",
    },
    MethodSpec {
        key: "tasks.task",
        list: "tasks.task.list",
        get: Some("tasks.task.get"),
        fields: Some("tasks.task.getFields"),
        fields_format: FieldsFormat::DescriptionInFields,
        userfield_list: Some("task.item.userfield.getlist"),
        envelope: Envelope::Tasks,
        id: IdSpec {
            row: "id",
            filter: "ID",
        },
        cursor: Some(CursorSpec {
            row: "changedDate",
            filter: "CHANGED_DATE",
        }),
        paging: Paging::IdChain,
        order_style: OrderStyle::Object,
        filter_style: FilterStyle::Object,
        value_style: ValueStyle::Legacy,
        uf_naming: UfNaming::CamelOfCode,
        needs_entity_type_id: false,
        type_scope: TypeScope::Own,
        select: SelectRule::StarAndUf,
        notes: "Controller method: `start=-1` skips COUNT (no `next`/`total`). Rows camelCase \
                (user fields too: ufCrmTask), filter/order/select by upper-case code; values \
                strings, datetimes ISO with offset. getFields has no multiplicity: \
                task.item.userfield.getlist gives MULTIPLE of the user fields, TASK_FIELD_TYPES \
                the rest. \"Always specify fields in select\" (tasks-task-list.md): the select \
                is always the explicit code list.",
    },
    MethodSpec {
        key: "task.elapseditem",
        list: "task.elapseditem.getlist",
        get: None,
        fields: None,
        fields_format: FieldsFormat::Static,
        userfield_list: None,
        envelope: Envelope::Result,
        id: ID_UPPER,
        cursor: None,
        paging: Paging::IdChain,
        order_style: OrderStyle::Object,
        filter_style: FilterStyle::Positional,
        value_style: ValueStyle::Legacy,
        uf_naming: UfNaming::None,
        needs_entity_type_id: false,
        type_scope: TypeScope::Own,
        select: SelectRule::Star,
        notes: "Time records of every task (no TASKID): positional ORDER, FILTER (`>ID` works), \
                SELECT, PARAMS.NAV_PARAMS (50 a page); `total` always comes back, so each page \
                pays the portal's COUNT. No modification time (task.elapseditem.update changes \
                SECONDS and COMMENT_TEXT in place): loaded whole every time \
                (task-elapsed-item-get-list.md).",
    },
    MethodSpec {
        key: "task.stages",
        list: "task.stages.get",
        get: None,
        fields: None,
        fields_format: FieldsFormat::Static,
        userfield_list: None,
        envelope: Envelope::Result,
        id: ID_UPPER,
        cursor: None,
        paging: Paging::Unpaged,
        order_style: OrderStyle::Object,
        filter_style: FilterStyle::TopLevel,
        value_style: ValueStyle::Legacy,
        uf_naming: UfNaming::None,
        needs_entity_type_id: false,
        type_scope: TypeScope::PerParent {
            parent: "sonet_group",
            param: "entityId",
            fixed: &[("isAdmin", true)],
        },
        select: SelectRule::None,
        notes: "Kanban stages of each workgroup: one unpaged call per group (`entityId`), the \
                stages keyed by id in an object; `isAdmin` skips the per-group permission \
                check for an administrator's webhook. `entityId 0` is the caller's own \
                \"My plan\", not exported (task-stages-get.md).",
    },
    MethodSpec {
        key: "voximplant.statistic",
        list: "voximplant.statistic.get",
        get: None,
        fields: None,
        fields_format: FieldsFormat::Static,
        userfield_list: None,
        envelope: Envelope::Result,
        id: ID_UPPER,
        cursor: Some(CursorSpec {
            row: "CALL_START_DATE",
            filter: "CALL_START_DATE",
        }),
        paging: Paging::IdChain,
        order_style: OrderStyle::UpperSortAndOrder,
        filter_style: FilterStyle::UpperObject,
        value_style: ValueStyle::Legacy,
        uf_naming: UfNaming::None,
        needs_entity_type_id: false,
        type_scope: TypeScope::Own,
        select: SelectRule::None,
        notes: "Call records: `FILTER` object, `SORT`/`ORDER` strings, legacy `start` (`-1` skips \
                COUNT); no fields method and no select (every column comes back). A record is \
                written when the call ends but dated by its start: the incremental window \
                reaches back `MIN_LOOKBACK` further (voximplant-statistic-get.md).",
    },
    MethodSpec {
        key: "sonet_group",
        list: "sonet_group.get",
        get: None,
        fields: None,
        fields_format: FieldsFormat::Static,
        userfield_list: None,
        envelope: Envelope::Result,
        id: ID_UPPER,
        cursor: Some(CursorSpec {
            row: "DATE_UPDATE",
            filter: "DATE_UPDATE",
        }),
        paging: Paging::IdChain,
        order_style: OrderStyle::UpperObject,
        filter_style: FilterStyle::UpperObject,
        value_style: ValueStyle::Legacy,
        uf_naming: UfNaming::None,
        needs_entity_type_id: false,
        type_scope: TypeScope::Own,
        select: SelectRule::None,
        notes: "Workgroups and projects the webhook user may see: `ORDER` object (default ID \
                DESC), `FILTER` object, legacy `start`; no fields method, no select; `IMAGE` \
                only when a group has an avatar (sonet-group-get.md). The method page names \
                the scope `sonet`, the scope list `sonet_group` (scopes/permissions.md).",
    },
    // Second wave (issue #12).
    MethodSpec {
        key: "crm.item.productrow",
        list: "crm.item.productrow.list",
        get: Some("crm.item.productrow.get"),
        fields: Some("crm.item.productrow.fields"),
        fields_format: FieldsFormat::DescriptionInFields,
        userfield_list: None,
        envelope: Envelope::ProductRows,
        id: ID_LOWER,
        // Rows have no time of their own: the owner's, copied into each row
        // (`OwnerRowsSpec::owner_time`); the filter applies to the owners' listing.
        cursor: Some(CursorSpec {
            row: "ownerUpdatedTime",
            filter: "updatedTime",
        }),
        paging: Paging::OwnerChain,
        order_style: OrderStyle::Object,
        filter_style: FilterStyle::Object,
        value_style: ValueStyle::Typed,
        uf_naming: UfNaming::None,
        needs_entity_type_id: false,
        type_scope: TypeScope::Own,
        select: SelectRule::None,
        notes: "The filter must hold `=ownerType` (short code) and `=ownerId`; no select; 50 \
                rows a page; order by id or sort. Rows have no modification time: the owners \
                are listed (modified since the cursor, if any) and their rows read many owners \
                per command. `.fields` has no upperName and omits priceAccount and xmlId.",
    },
    MethodSpec {
        key: "crm.product",
        list: "crm.product.list",
        get: Some("crm.product.get"),
        fields: Some("crm.product.fields"),
        fields_format: FieldsFormat::Description,
        userfield_list: None,
        envelope: Envelope::Result,
        id: ID_UPPER,
        cursor: Some(CursorSpec {
            row: "TIMESTAMP_X",
            filter: "TIMESTAMP_X",
        }),
        paging: Paging::IdChain,
        order_style: OrderStyle::Object,
        filter_style: FilterStyle::Object,
        value_style: ValueStyle::Legacy,
        uf_naming: UfNaming::None,
        needs_entity_type_id: false,
        type_scope: TypeScope::Own,
        select: SelectRule::StarAnd(&["PROPERTY_*"]),
        notes: "Deprecated but served with the `crm` scope (catalog.product.list needs \
                `catalog` and an iblockId). Product properties `PROPERTY_<id>` come only with \
                `PROPERTY_*` in select, as `{valueId, value}` objects (lists when multiple), \
                kept raw.",
    },
    MethodSpec {
        key: "crm.productsection",
        list: "crm.productsection.list",
        get: Some("crm.productsection.get"),
        fields: Some("crm.productsection.fields"),
        fields_format: FieldsFormat::Description,
        userfield_list: None,
        envelope: Envelope::Result,
        id: ID_UPPER,
        cursor: None,
        paging: Paging::IdChain,
        order_style: OrderStyle::Object,
        filter_style: FilterStyle::Object,
        value_style: ValueStyle::Legacy,
        uf_naming: UfNaming::None,
        needs_entity_type_id: false,
        type_scope: TypeScope::Own,
        select: SelectRule::Star,
        notes: "Catalog sections; no modification time, reloaded whole (small).",
    },
    MethodSpec {
        key: "crm.requisite",
        list: "crm.requisite.list",
        get: Some("crm.requisite.get"),
        fields: Some("crm.requisite.fields"),
        fields_format: FieldsFormat::Description,
        userfield_list: Some("crm.requisite.userfield.list"),
        envelope: Envelope::Result,
        id: ID_UPPER,
        cursor: DATE_MODIFY,
        paging: Paging::IdChain,
        order_style: OrderStyle::Object,
        filter_style: FilterStyle::Object,
        value_style: ValueStyle::Legacy,
        uf_naming: UfNaming::Upper,
        needs_entity_type_id: false,
        type_scope: TypeScope::Own,
        select: SelectRule::StarAndUf,
        notes: "Requisites of companies and contacts (ENTITY_TYPE_ID 4/3, ENTITY_ID); RQ_* \
                fields depend on the preset's country; user fields UF_CRM_*.",
    },
    MethodSpec {
        key: "crm.requisite.bankdetail",
        list: "crm.requisite.bankdetail.list",
        get: Some("crm.requisite.bankdetail.get"),
        fields: Some("crm.requisite.bankdetail.fields"),
        fields_format: FieldsFormat::Description,
        userfield_list: None,
        envelope: Envelope::Result,
        id: ID_UPPER,
        cursor: DATE_MODIFY,
        paging: Paging::IdChain,
        order_style: OrderStyle::Object,
        filter_style: FilterStyle::Object,
        value_style: ValueStyle::Legacy,
        uf_naming: UfNaming::None,
        needs_entity_type_id: false,
        type_scope: TypeScope::Own,
        select: SelectRule::Star,
        notes: "Bank details; ENTITY_ID is the requisite's ID.",
    },
    MethodSpec {
        key: "crm.timeline.comment",
        list: "crm.timeline.comment.list",
        get: Some("crm.timeline.comment.get"),
        fields: Some("crm.timeline.comment.fields"),
        fields_format: FieldsFormat::Description,
        userfield_list: None,
        envelope: Envelope::Result,
        id: ID_UPPER,
        // CREATED only: no modification time, and neither it nor the owner's time shows an
        // edited or a new comment of an unchanged owner; every load is full (docs/architecture.md).
        cursor: None,
        paging: Paging::OwnerChain,
        order_style: OrderStyle::Object,
        filter_style: FilterStyle::Object,
        value_style: ValueStyle::Legacy,
        uf_naming: UfNaming::None,
        needs_entity_type_id: false,
        type_scope: TypeScope::Own,
        select: SelectRule::Star,
        notes: "Comments of one owner per command: `ENTITY_TYPE` (lead, deal, contact, \
                company) and `ENTITY_ID` are required; order by ID, CREATED or AUTHOR_ID; 50 a \
                page; \"Access denied.\" (empty code) for an owner the user cannot read or \
                that is gone. FILES (`attached_diskfile`, multiple) is an object keyed by file \
                id with `urlDownload` (crm-timeline-comment-list.md, fixture).",
    },
    MethodSpec {
        key: "crm.activity.binding",
        list: "crm.activity.binding.list",
        get: None,
        fields: None,
        fields_format: FieldsFormat::Static,
        userfield_list: None,
        envelope: Envelope::Result,
        // No id: the key b24ch composes ([`COMPOSITE_KEYS`]).
        id: IdSpec {
            row: "BINDING_KEY",
            filter: "activityId",
        },
        cursor: None,
        paging: Paging::Unpaged,
        order_style: OrderStyle::Object,
        filter_style: FilterStyle::TopLevel,
        value_style: ValueStyle::Typed,
        uf_naming: UfNaming::None,
        needs_entity_type_id: false,
        type_scope: TypeScope::PerParent {
            parent: "crm.activity",
            param: "activityId",
            fixed: &[],
        },
        select: SelectRule::None,
        notes: "The CRM items one activity is bound to: `activityId` required, unpaged \
                `[{entityTypeId, entityId}]` (integers) of the items the user may read; \
                NOT_FOUND for an activity that is gone (crm-activity-binding-list.md). One \
                call per activity, 50 to a batch; loaded whole.",
    },
    MethodSpec {
        key: "crm.address",
        list: "crm.address.list",
        get: None,
        fields: Some("crm.address.fields"),
        fields_format: FieldsFormat::Description,
        userfield_list: None,
        envelope: Envelope::Result,
        // No ID: `row` is the key b24ch composes ([`COMPOSITE_KEYS`]), `filter` the first
        // part (what an ids-only probe selects and orders by).
        id: IdSpec {
            row: "ADDRESS_KEY",
            filter: "ENTITY_ID",
        },
        cursor: None,
        paging: Paging::KeyChain,
        order_style: OrderStyle::Object,
        filter_style: FilterStyle::Object,
        value_style: ValueStyle::Legacy,
        uf_naming: UfNaming::None,
        needs_entity_type_id: false,
        type_scope: TypeScope::Own,
        select: SelectRule::Star,
        notes: "Addresses of requisites (ENTITY_TYPE_ID 8) and leads (1; contacts 3 and                 companies 4 on old portals): no ID and no modification time, one address per                 owner and TYPE_ID (crm.enum.addresstype); filter prefixes `>=`, `@`…, any                 field in order, 50 rows a page (crm-address-list.md). Loaded whole; deletions                 by reconcile on the composed key.",
    },
];

/// A key made of several fields, for a method whose rows have no id of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompositeKey {
    /// Key of the methods table.
    pub method: &'static str,
    /// The fields, in the listing's sort order. The first orders the `>=` chain, so it must
    /// have few rows per value (fewer than a page).
    pub parts: &'static [&'static str],
    /// The column b24ch adds to each row: the parts of `written` joined by `:`.
    /// The tables, reconcile and the ids endpoint are keyed by one column, so the composite
    /// key is composed into one, deterministically, rather than invented.
    pub column: &'static str,
    /// The parts in the order they are written into the column.
    pub written: &'static [&'static str],
}

/// Composite keys by method. Addresses: "Within a detail, there can be several addresses (each
/// of a different type)" (crm-address-list.md), so owner type, owner and address type identify
/// one; written `ENTITY_TYPE_ID:ENTITY_ID:TYPE_ID` (`8:7335:1`).
/// Activity bindings: an activity is bound to an item once, so activity, item type and item
/// identify a binding (`activityId:entityTypeId:entityId`).
pub const COMPOSITE_KEYS: &[CompositeKey] = &[
    CompositeKey {
        method: "crm.address",
        parts: &["ENTITY_ID", "ENTITY_TYPE_ID", "TYPE_ID"],
        column: "ADDRESS_KEY",
        written: &["ENTITY_TYPE_ID", "ENTITY_ID", "TYPE_ID"],
    },
    CompositeKey {
        method: "crm.activity.binding",
        parts: &["activityId", "entityTypeId", "entityId"],
        column: "BINDING_KEY",
        written: &["activityId", "entityTypeId", "entityId"],
    },
];

/// Per-parent methods whose rows do not name their parent: each row gets the parent's id
/// under this key (`crm.activity.binding.list` rows are `{entityTypeId, entityId}` only).
pub const PARENT_ID_KEYS: &[(&str, &str)] = &[("crm.activity.binding", "activityId")];

/// The row key a per-parent method's rows get their parent's id under, if they need one.
pub fn parent_id_key(method_key: &str) -> Option<&'static str> {
    PARENT_ID_KEYS
        .iter()
        .find(|(m, _)| *m == method_key)
        .map(|(_, k)| *k)
}

/// The composite key of a method, if its rows have one.
pub fn composite_key(method_key: &str) -> Option<&'static CompositeKey> {
    COMPOSITE_KEYS.iter().find(|k| k.method == method_key)
}

/// How a [`Paging::OwnerChain`] method names its owners, in its filter and in its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnerRowsSpec {
    /// Key of the methods table.
    pub method: &'static str,
    pub owner_types: OwnerTypes,
    /// Filter keys of the owner's type and id.
    pub type_filter: &'static str,
    pub id_filter: &'static str,
    /// Row keys of the same.
    pub type_row: &'static str,
    pub id_row: &'static str,
    /// Whether several owner ids may be tried in one command (the first refusal switches the
    /// listing to one owner per command). `false` where the method reads one id only.
    pub arrays: bool,
    /// The row key under which each row gets its owner's modification time, if the rows are
    /// loaded incrementally by owner.
    pub owner_time: Option<&'static str>,
}

/// Which owner types an owner-rows listing covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerTypes {
    /// [`PRODUCT_ROW_OWNERS`] and every smart process, named by their `crm.enum.ownertype`
    /// short code.
    ProductRowOwners,
    /// These `(entityTypeId, name the filter takes)`.
    Named(&'static [(u32, &'static str)]),
}

/// The owner-rows methods. Product rows: `=ownerType` short code and `=ownerId` (an array is
/// allowed by some portals), rows camelCase (EN crm-item-productrow-list.md). Timeline
/// comments: `ENTITY_TYPE` (`lead`, `deal`, `contact`, `company`) and `ENTITY_ID`, both
/// required; the id is read as one integer (an array is no list of owners), so one owner per
/// command (EN crm-timeline-comment-list.md).
pub const OWNER_ROWS: &[OwnerRowsSpec] = &[
    OwnerRowsSpec {
        method: "crm.item.productrow",
        owner_types: OwnerTypes::ProductRowOwners,
        type_filter: "=ownerType",
        id_filter: "=ownerId",
        type_row: "ownerType",
        id_row: "ownerId",
        arrays: true,
        owner_time: Some("ownerUpdatedTime"),
    },
    OwnerRowsSpec {
        method: "crm.timeline.comment",
        owner_types: OwnerTypes::Named(&[(1, "lead"), (2, "deal"), (3, "contact"), (4, "company")]),
        type_filter: "ENTITY_TYPE",
        id_filter: "ENTITY_ID",
        type_row: "ENTITY_TYPE",
        id_row: "ENTITY_ID",
        arrays: false,
        owner_time: None,
    },
];

impl OwnerTypes {
    /// Whether entities of type `eid` may own such rows: the named types, or the predefined
    /// product-row owners and every smart process (a type none of the tables here predefines).
    pub fn may_own(&self, eid: u32) -> bool {
        let named = |types: &[(u32, &str)]| types.iter().any(|(e, _)| *e == eid);
        match self {
            OwnerTypes::Named(types) => named(types),
            OwnerTypes::ProductRowOwners => {
                let owner = PRODUCT_ROW_OWNERS.iter().any(|(_, e)| *e == eid);
                let predefined = LEGACY_ENTITY_TYPE_IDS.iter().any(|(_, e)| *e == eid);
                owner || !predefined
            }
        }
    }
}

/// How an owner-rows method names its owners.
pub fn owner_rows(method_key: &str) -> Option<&'static OwnerRowsSpec> {
    OWNER_ROWS.iter().find(|o| o.method == method_key)
}

/// CRM entity type ids of the legacy list methods (`crm.item` entities carry their own): an
/// owner table's type when per-owner rows take their owners from it (`bitrix::owners`).
const LEGACY_ENTITY_TYPE_IDS: &[(&str, u32)] = &[
    ("crm.lead", 1),
    ("crm.deal", 2),
    ("crm.contact", 3),
    ("crm.company", 4),
];

/// The CRM entity type id of an entity listed with `method_key` (and `own`, for `crm.item`).
pub fn crm_entity_type_id(method_key: &str, own: Option<u32>) -> Option<u32> {
    if method_key == "crm.item" {
        return own;
    }
    LEGACY_ENTITY_TYPE_IDS
        .iter()
        .find(|(m, _)| *m == method_key)
        .map(|(_, eid)| *eid)
}

/// Predefined owner types with product rows, by `crm.enum.ownertype` code (smart processes
/// too: `bitrix::productrows::owner_types`).
pub const PRODUCT_ROW_OWNERS: &[(&str, u32)] = &[
    ("DEAL", 2),
    ("LEAD", 1),
    ("QUOTE", 7),
    ("SMART_INVOICE", 31),
];

/// The spec for a method key, e.g. `crm.deal`.
pub fn spec(key: &str) -> Option<&'static MethodSpec> {
    METHODS.iter().find(|m| m.key == key)
}

/// Which method each first-wave entity is read with, and why (choose by what the method returns:
/// docs/architecture.md, "Entities and methods"). Smart processes (`crm_dynamic_<N>`) use
/// `crm.item` with their entityTypeId.
pub static ENTITY_METHODS: &[(&str, &str, Option<u32>)] = &[
    // crm.item returns contactIds and parentId{N}; legacy crm.deal.list returns neither.
    ("crm_deal", "crm.item", Some(2)),
    // Legacy lists return PHONE/EMAIL/WEB/IM as separate columns, like the original product.
    ("crm_lead", "crm.lead", None),
    ("crm_contact", "crm.contact", None),
    ("crm_company", "crm.company", None),
    ("crm_activity", "crm.activity", None),
    ("crm_status", "crm.status", None),
    // Every pipeline: deals and smart processes (the methods table lists which types).
    ("crm_category", "crm.category", None),
    ("crm_currency", "crm.currency", None),
    ("crm_stagehistory_lead", "crm.stagehistory", Some(1)),
    ("crm_stagehistory_deal", "crm.stagehistory", Some(2)),
    // Second wave (issue #12): quotes and new-type invoices are predefined crm.item types;
    // crm.stagehistory.list documents invoices (31) but not quotes (7).
    ("crm_quote", "crm.item", Some(7)),
    ("crm_smart_invoice", "crm.item", Some(31)),
    (
        "crm_stagehistory_smart_invoice",
        "crm.stagehistory",
        Some(31),
    ),
    // Rows of deals, leads, quotes, invoices and smart processes (`bitrix::productrows`).
    ("crm_productrow", "crm.item.productrow", None),
    ("crm_product", "crm.product", None),
    ("crm_product_section", "crm.productsection", None),
    ("crm_requisite", "crm.requisite", None),
    ("crm_requisite_bank", "crm.requisite.bankdetail", None),
    // No ID: keyed by owner and address type (`COMPOSITE_KEYS`, `bitrix::keyset`).
    ("crm_address", "crm.address", None),
    // Comments of leads, deals, contacts and companies, one owner per command (`OWNER_ROWS`).
    ("crm_timeline_comment", "crm.timeline.comment", None),
    // Every CRM item each activity is bound to, one call per activity (`TypeScope::PerParent`).
    ("crm_activity_binding", "crm.activity.binding", None),
    ("user", "user", None),
    ("department", "department", None),
    // Second wave (issue #12), outside CRM: tasks, their time and stages, calls, workgroups.
    // Their scopes (`task`, `telephony`, `sonet_group`) are optional: a webhook without one
    // gets the entity listed as unavailable (`catalog::unavailable`), nothing else changes.
    ("task", "tasks.task", None),
    ("task_elapsed_time", "task.elapseditem", None),
    ("telephony_call", "voximplant.statistic", None),
    ("workgroup", "sonet_group", None),
    ("task_stage", "task.stages", None),
];

/// Column codes of deals, leads, contacts and companies are their `crm.{deal,lead,…}.fields`
/// codes whichever method reads a value (design.md, Typed schema). Where `crm.item.fields`
/// names a field differently, its `upperName` is renamed: (entityTypeId or `None` for all four,
/// `upperName`, legacy code). Sources: EN crm-deal-fields.md / crm-lead-fields.md vs
/// crm-item-fields.md (`createdTime` ↔ `DATE_CREATE`, `updatedBy` ↔ `MODIFY_BY_ID`, …).
pub const ITEM_TO_LEGACY_CODES: &[(Option<u32>, &str, &str)] = &[
    (None, "CREATED_TIME", "DATE_CREATE"),
    (None, "UPDATED_TIME", "DATE_MODIFY"),
    (None, "CREATED_BY", "CREATED_BY_ID"),
    (None, "UPDATED_BY", "MODIFY_BY_ID"),
    (None, "MOVED_BY", "MOVED_BY_ID"),
    // Leads call their stage a status.
    (Some(1), "STAGE_ID", "STATUS_ID"),
    (Some(1), "STAGE_SEMANTIC_ID", "STATUS_SEMANTIC_ID"),
];

/// The entity types whose columns carry legacy codes (lead, deal, contact, company).
pub const LEGACY_CODE_TYPES: &[u32] = &[1, 2, 3, 4];

/// The legacy column code of a `crm.item.fields` `upperName` for an entity type; the
/// `upperName` itself where the legacy API uses the same code, and always for smart processes.
pub fn legacy_code(entity_type_id: u32, upper_name: &str) -> &str {
    if !LEGACY_CODE_TYPES.contains(&entity_type_id) {
        return upper_name;
    }
    ITEM_TO_LEGACY_CODES
        .iter()
        .find(|(t, item, _)| t.is_none_or(|t| t == entity_type_id) && *item == upper_name)
        .map_or(upper_name, |(_, _, legacy)| legacy)
}

/// Fields that legacy CRM lists never return (`*.fields` describes some of them, `*.get` returns
/// some; `crm.item.list` returns all of them): bindings and observers (`docs/bitrix24-api.md` §5).
pub const LIST_ONLY_IN_ITEM: &[&str] = &["CONTACT_IDS", "COMPANY_IDS", "OBSERVERS", "PARENT_ID_*"];

/// A second method that returns the same rows of an entity: the columns its primary list
/// method cannot give are read from it for the same IDs and joined by ID (`pipeline::companion`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompanionSpec {
    pub entity: &'static str,
    /// Key of the methods table.
    pub method: &'static str,
    pub entity_type_id: Option<u32>,
    /// Column codes only the companion's list returns (`*` at the end matches a prefix).
    pub only_there: &'static [&'static str],
    /// Also read about half of the columns both methods return (same code, same meaning) from
    /// the companion: the operating time of a load is then spread over two per-method
    /// budgets (the portal keeps one per method), so the sustainable rate nearly doubles.
    /// Only where the portal's figures show batches are billed per method: under whole-batch
    /// billing both methods' pages land on the one `batch` key and balancing only adds pages.
    pub balance: bool,
}

/// Companions per entity. Deals: crm.item gives contactIds and parent bindings, legacy
/// crm.deal.list the legacy-only fields, and the two budgets share the load. Leads, contacts and
/// companies: legacy lists give PHONE/EMAIL/… as columns and every legacy field, crm.item the
/// bindings and observers.
pub static COMPANIONS: &[CompanionSpec] = &[
    CompanionSpec {
        entity: "crm_deal",
        method: "crm.deal",
        entity_type_id: None,
        only_there: &["ADDITIONAL_INFO", "LOCATION_ID"],
        balance: true,
    },
    CompanionSpec {
        entity: "crm_lead",
        method: "crm.item",
        entity_type_id: Some(1),
        only_there: LIST_ONLY_IN_ITEM,
        balance: false,
    },
    CompanionSpec {
        entity: "crm_contact",
        method: "crm.item",
        entity_type_id: Some(3),
        only_there: LIST_ONLY_IN_ITEM,
        balance: false,
    },
    CompanionSpec {
        entity: "crm_company",
        method: "crm.item",
        entity_type_id: Some(4),
        only_there: LIST_ONLY_IN_ITEM,
        balance: false,
    },
];

/// The companion of an entity, if it has one.
pub fn companion(entity: &str) -> Option<&'static CompanionSpec> {
    COMPANIONS.iter().find(|c| c.entity == entity)
}

/// Whether a column code matches a pattern of [`CompanionSpec::only_there`].
pub fn code_matches(pattern: &str, code: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => code.starts_with(prefix),
        None => pattern == code,
    }
}

impl MethodSpec {
    /// Whether every listing reads the whole table one owner (or parent) per command, with no
    /// modification time to load by: a load costs about the owners' count, not the changes.
    pub fn whole_per_owner(&self) -> bool {
        self.cursor.is_none()
            && (self.paging == Paging::OwnerChain
                || matches!(self.type_scope, TypeScope::PerParent { .. }))
    }

    /// The `select` for "every field" of this method.
    pub fn default_select(&self) -> Vec<String> {
        let base: &[&str] = match self.select {
            SelectRule::StarUfAndMultifields(_) | SelectRule::StarAndUf => &["*", "UF_*"],
            SelectRule::Star | SelectRule::StarAnd(_) => &["*"],
            SelectRule::None => &[],
        };
        let extra: &[&str] = match self.select {
            SelectRule::StarUfAndMultifields(m) | SelectRule::StarAnd(m) => m,
            _ => &[],
        };
        base.iter().chain(extra).map(|s| s.to_string()).collect()
    }

    /// The `entityTypeId` to pass to list/fields for an entity whose own is `own`: its own,
    /// else the first of a multi-type scope.
    pub fn fields_entity_type_id(&self, own: Option<u32>) -> Option<u32> {
        let first = match self.type_scope {
            TypeScope::Own | TypeScope::PerParent { .. } => None,
            TypeScope::FixedAndSmartProcesses(fixed) => fixed.first().copied(),
        };
        own.or(first).filter(|_| self.needs_entity_type_id)
    }

    /// The scope a webhook or app needs for this method (the `Scope:` line of every method's
    /// docs page: `crm` for `crm.*`, `user` for `user.*`, `department`, `task`).
    pub fn scope(&self) -> &'static str {
        let family = self.list.split('.').next().unwrap_or_default();
        match family {
            "tasks" | "task" => "task",
            "user" => "user",
            "department" => "department",
            "voximplant" => "telephony",
            "sonet_group" => "sonet_group",
            _ => "crm",
        }
    }

    /// Whether the method takes a `select` parameter at all.
    pub fn takes_select(&self) -> bool {
        self.select != SelectRule::None
    }

    /// The path under a command's result to the rows, for `$result[…]` references.
    pub fn rows_path(&self) -> Vec<&'static str> {
        self.envelope.key().into_iter().collect()
    }
}

/// How the values of a list method are encoded (docs/bitrix24-api.md §6.3); the client maps
/// each method to one, and the typed schema normalises by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ValueStyle {
    /// `crm.deal/lead/contact/company.list`, `crm.activity.list`, `crm.status.list`,
    /// `user.get`, `department.get`…: strings for everything, `""` empty dates, `false` for
    /// an empty multiple UF, `"1"`/`"0"` boolean UFs, multifields under `PHONE`, `EMAIL`…
    #[default]
    Legacy,
    /// `crm.item.*`, `crm.type.*`, `crm.category.*`: JSON numbers, `"Y"`/`"N"` booleans,
    /// `null`s, camelCase keys, multifields in `fm`, file UFs as `{"id","url"}`.
    Typed,
}

/// The methods `b24_call` (`b24ch exec udf-call`) runs by default: reading methods only,
/// named one by one (a name rule such as "starts with get" would admit any future method
/// that happens to match). `exec.call_methods` in the config replaces the list.
pub const DEFAULT_CALL_METHODS: &[&str] = &[
    "crm.deal.get",
    "crm.deal.list",
    "crm.deal.fields",
    "crm.deal.contact.items.get",
    "crm.deal.productrows.get",
    "crm.deal.userfield.list",
    "crm.lead.get",
    "crm.lead.list",
    "crm.lead.fields",
    "crm.lead.productrows.get",
    "crm.lead.userfield.list",
    "crm.contact.get",
    "crm.contact.list",
    "crm.contact.fields",
    "crm.contact.company.items.get",
    "crm.contact.userfield.list",
    "crm.company.get",
    "crm.company.list",
    "crm.company.fields",
    "crm.company.contact.items.get",
    "crm.company.userfield.list",
    "crm.item.get",
    "crm.item.list",
    "crm.item.fields",
    "crm.item.productrow.list",
    "crm.item.productrow.fields",
    "crm.product.get",
    "crm.product.list",
    "crm.product.fields",
    "crm.productsection.list",
    "crm.productsection.fields",
    "crm.requisite.get",
    "crm.requisite.list",
    "crm.requisite.fields",
    "crm.requisite.userfield.list",
    "crm.requisite.bankdetail.list",
    "crm.requisite.bankdetail.fields",
    "crm.address.list",
    "crm.address.fields",
    "crm.activity.get",
    "crm.activity.list",
    "crm.activity.fields",
    "crm.activity.binding.list",
    "crm.stagehistory.list",
    "crm.status.list",
    "crm.status.fields",
    "crm.category.get",
    "crm.category.list",
    "crm.currency.get",
    "crm.currency.list",
    "crm.type.get",
    "crm.type.list",
    "crm.enum.ownertype",
    "crm.timeline.comment.list",
    "crm.timeline.comment.fields",
    "user.get",
    "user.fields",
    "user.current",
    "department.get",
    "department.fields",
    "tasks.task.get",
    "tasks.task.list",
    "voximplant.statistic.get",
    "tasks.task.getFields",
    "task.item.userfield.getlist",
    "task.elapseditem.getlist",
    "task.stages.get",
    "sonet_group.get",
    "profile",
    "server.time",
    "scope",
    "methods",
    "app.info",
];

/// Bitrix24 events announcing a change to an entity's rows, by entity: `<prefix>ADD`,
/// `<prefix>UPDATE`, `<prefix>DELETE`, the row's id in `data.FIELDS.ID` (tasks:
/// `data.FIELDS_AFTER.ID`, `data.FIELDS_BEFORE.ID` on deletion; docs/bitrix24-api.md §7).
/// Smart processes (`crm_dynamic_<entityTypeId>`) use [`DYNAMIC_ITEM_EVENTS`]. Entities not
/// listed have no change events and are kept fresh by their scheduled loads only.
pub const ENTITY_EVENTS: &[(&str, &str)] = &[
    ("crm_deal", "ONCRMDEAL"),
    ("crm_lead", "ONCRMLEAD"),
    ("crm_contact", "ONCRMCONTACT"),
    ("crm_company", "ONCRMCOMPANY"),
    ("crm_activity", "ONCRMACTIVITY"),
    ("crm_quote", "ONCRMQUOTE"),
    ("crm_product", "ONCRMPRODUCT"),
    ("task", "ONTASK"),
];

/// Smart-process item events: `ONCRMDYNAMICITEM{ADD,UPDATE,DELETE}` (every type, with
/// `data.FIELDS.ENTITY_TYPE_ID`) and the same names with `_<entityTypeId>` for one type
/// (`api-reference/crm/universal/events/`).
pub const DYNAMIC_ITEM_EVENTS: &str = "ONCRMDYNAMICITEM";
// Second wave (issue #12), outside CRM: tasks, telephony, workgroups.

/// The row key of a field code under [`UfNaming::CamelOfCode`], as Bitrix24's
/// `Converter::toJson` makes it: lower-case, then every `_x` becomes `X`
/// (`TIME_SPENT_IN_LOGS` → `timeSpentInLogs`, `UF_AUTO_280393876337` → `ufAuto280393876337`).
/// Unlike `crm.item`, no `UF_CRM_<digits>` exception exists here, so the code fixes the key.
pub fn row_key_of_code(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut upper_next = false;
    for c in code.chars() {
        if c == '_' {
            upper_next = !out.is_empty();
            continue;
        }
        if upper_next {
            out.extend(c.to_uppercase());
            upper_next = false;
        } else {
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// What `tasks.task.getFields` describes too vaguely for a typed column: `integer` user ids
/// (`closedBy` is `0` until a task is closed: tasks/fields.md), `array`s of user ids, and the
/// system user fields, whose multiplicity only `task.item.userfield.getlist` tells (used when
/// that list is refused). (code, Bitrix24 type, multiple).
pub const TASK_FIELD_TYPES: &[(&str, &str, bool)] = &[
    ("CREATED_BY", "user", false),
    ("RESPONSIBLE_ID", "user", false),
    ("CHANGED_BY", "user", false),
    ("STATUS_CHANGED_BY", "user", false),
    ("CLOSED_BY", "user", false),
    // getFields says `integer`; rows and tasks/fields.md say `Y`/`N` (a flag also reads 1/0).
    ("MATCH_WORK_TIME", "char", false),
    ("ACCOMPLICES", "user", true),
    ("AUDITORS", "user", true),
    ("UF_CRM_TASK", "crm", true),
    ("UF_TASK_WEBDAV_FILES", "disk_file", true),
];

/// Fields `tasks.task.getFields` describes that are no list columns: the checklist is an
/// object of items (`task.checklistitem.*` reads them), not a value of the task row.
pub const TASK_FIELDS_NOT_LISTED: &[&str] = &["CHECKLIST"];

/// How far an incremental load of a method must reach back before the watermark at least,
/// where rows appear later than their cursor time says: a call record is written when the
/// call ends and dated by its start, and a call may last hours.
pub const MIN_LOOKBACK_SECS: &[(&str, i64)] = &[("voximplant.statistic", 86_400)];

impl MethodSpec {
    /// The least lookback of an incremental load of this method, in seconds.
    pub fn min_lookback_secs(&self) -> i64 {
        MIN_LOOKBACK_SECS
            .iter()
            .find(|(k, _)| *k == self.key)
            .map_or(0, |(_, s)| *s)
    }

    /// The name a field is asked for by in `select`: its code where row keys are derived from
    /// codes ([`UfNaming::CamelOfCode`]), else its row key.
    pub fn select_name<'a>(&self, code: &'a str, row_key: &'a str) -> &'a str {
        match self.uf_naming {
            UfNaming::CamelOfCode => code,
            _ => row_key,
        }
    }
}

#[cfg(test)]
mod second_wave_tests {
    use super::*;

    #[test]
    fn task_row_keys_follow_the_converter() {
        for (code, key) in [
            ("ID", "id"),
            ("CREATED_DATE", "createdDate"),
            ("DESCRIPTION_IN_BBCODE", "descriptionInBbcode"),
            ("UF_CRM_TASK", "ufCrmTask"),
            ("UF_TASK_WEBDAV_FILES", "ufTaskWebdavFiles"),
            ("UF_AUTO_280393876337", "ufAuto280393876337"),
        ] {
            assert_eq!(row_key_of_code(code), key);
        }
        let task = spec("tasks.task").unwrap();
        assert_eq!(
            task.select_name("CHANGED_DATE", "changedDate"),
            "CHANGED_DATE"
        );
        assert_eq!(
            spec("crm.item").unwrap().select_name("TITLE", "title"),
            "title"
        );
        assert_eq!(task.scope(), "task");
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn owner_types_say_which_tables_can_own_their_rows() {
        let rows = owner_rows("crm.item.productrow").unwrap();
        // Deals, leads, quotes, smart invoices and smart processes; not contacts or companies.
        for eid in [2, 1, 7, 31, 128, 1032] {
            assert!(rows.owner_types.may_own(eid), "{eid}");
        }
        assert!(!rows.owner_types.may_own(3) && !rows.owner_types.may_own(4));
        let comments = owner_rows("crm.timeline.comment").unwrap();
        assert!(comments.owner_types.may_own(3) && !comments.owner_types.may_own(128));
    }

    use super::*;

    #[test]
    fn keys_are_unique_and_every_entity_method_exists() {
        for (i, m) in METHODS.iter().enumerate() {
            assert!(METHODS[i + 1..].iter().all(|o| o.key != m.key), "{}", m.key);
        }
        for (entity, key, eid) in ENTITY_METHODS {
            let s = spec(key).unwrap_or_else(|| panic!("{entity}: no spec {key}"));
            // A method that needs a type gets it from the entity or from its scope.
            let own = !matches!(s.type_scope, TypeScope::FixedAndSmartProcesses(_));
            assert_eq!(s.needs_entity_type_id, eid.is_some() || !own, "{entity}");
            assert_eq!(
                s.needs_entity_type_id,
                s.fields_entity_type_id(*eid).is_some(),
                "{entity}"
            );
        }
    }

    #[test]
    fn legacy_select_names_multifields_explicitly() {
        let s = spec("crm.contact").unwrap().default_select();
        assert_eq!(s, ["*", "UF_*", "PHONE", "EMAIL", "WEB", "IM"]);
        assert_eq!(spec("crm.item").unwrap().default_select(), ["*", "UF_*"]);
        assert!(spec("crm.status").unwrap().default_select().is_empty());
    }

    #[test]
    fn pipelines_cover_deals_and_smart_processes() {
        let cat = ENTITY_METHODS
            .iter()
            .find(|e| e.0 == "crm_category")
            .unwrap();
        let s = spec(cat.1).unwrap();
        assert_eq!(cat.2, None);
        assert_eq!(s.type_scope, TypeScope::FixedAndSmartProcesses(&[2]));
        assert_eq!(s.fields_entity_type_id(cat.2), Some(2));
        assert_eq!(smart_process_type_id("DYNAMIC_1032"), Some(1032));
        assert_eq!(smart_process_type_id("SMART_INVOICE"), None);
    }

    #[test]
    fn item_codes_become_legacy_codes_for_the_four_legacy_types_only() {
        assert_eq!(legacy_code(2, "CREATED_TIME"), "DATE_CREATE");
        assert_eq!(legacy_code(2, "UPDATED_BY"), "MODIFY_BY_ID");
        assert_eq!(legacy_code(2, "MOVED_BY"), "MOVED_BY_ID");
        assert_eq!(legacy_code(2, "STAGE_ID"), "STAGE_ID");
        assert_eq!(legacy_code(1, "STAGE_ID"), "STATUS_ID");
        assert_eq!(legacy_code(3, "COMPANY_IDS"), "COMPANY_IDS");
        assert_eq!(legacy_code(128, "CREATED_TIME"), "CREATED_TIME");
    }

    #[test]
    fn scopes_follow_the_method_family() {
        let scope = |k: &str| spec(k).unwrap().scope();
        assert_eq!(scope("crm.currency"), "crm");
        assert_eq!(scope("crm.stagehistory"), "crm");
        assert_eq!(scope("user"), "user");
        assert_eq!(scope("department"), "department");
        assert_eq!(scope("tasks.task"), "task");
    }

    #[test]
    fn deal_is_listed_with_crm_item() {
        let deal = ENTITY_METHODS.iter().find(|e| e.0 == "crm_deal").unwrap();
        assert_eq!((deal.1, deal.2), ("crm.item", Some(2)));
        let item = spec("crm.item").unwrap();
        assert_eq!(item.rows_path(), ["items"]);
        assert_eq!(item.id.row, "id");
    }
}
