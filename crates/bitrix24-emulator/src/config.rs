//! What defines a demo portal: data sizes, limits, billing, OAuth, rendering and availability
//! variants. Plain data, read by every layer above.

use serde::{Deserialize, Serialize};

use super::error::DemoPortalError;
use super::hash;
use super::limits::CostModel;

/// A smart process to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct SmartProcessSpec {
    pub entity_type_id: u32,
    pub title: String,
    pub items: u64,
}

/// How many rows of each entity to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct DataSizes {
    pub deals: u64,
    pub leads: u64,
    pub contacts: u64,
    pub companies: u64,
    pub users: u64,
    pub departments: u64,
    pub activities: u64,
    /// Deal pipelines besides the default one (id 0).
    pub deal_categories: u32,
    /// Tasks (`tasks.task.list`).
    pub tasks: u64,
    /// Task time records (`task.elapseditem.getlist`).
    pub task_elapsed: u64,
    /// Call records (`voximplant.statistic.get`).
    pub calls: u64,
    /// Workgroups and projects (`sonet_group.get`).
    pub workgroups: u64,
    pub smart_processes: Vec<SmartProcessSpec>,
    /// Quotes (`entityTypeId` 7).
    pub quotes: u64,
    /// New-type invoices (`entityTypeId` 31).
    pub smart_invoices: u64,
    /// Catalog products (product rows name ids 1..=40 of them).
    pub products: u64,
    pub product_sections: u64,
    pub requisites: u64,
    pub requisite_banks: u64,
    /// Addresses (`crm.address.list`): two per requisite, every fifth pair a lead's.
    pub addresses: u64,
    /// Timeline comments of leads, deals, contacts and companies.
    pub timeline_comments: u64,
}

impl Default for DataSizes {
    fn default() -> Self {
        DataSizes {
            deals: 240,
            leads: 120,
            contacts: 200,
            companies: 80,
            users: 12,
            departments: 5,
            activities: 300,
            deal_categories: 2,
            tasks: 150,
            task_elapsed: 300,
            calls: 400,
            workgroups: 8,
            smart_processes: vec![
                SmartProcessSpec {
                    entity_type_id: 128,
                    title: "Проекты 🚀".into(),
                    items: 60,
                },
                SmartProcessSpec {
                    entity_type_id: 130,
                    title: "Purchase \"orders\"".into(),
                    items: 45,
                },
                SmartProcessSpec {
                    entity_type_id: 132,
                    title: "Contracts'; DROP TABLE x; --".into(),
                    items: 30,
                },
            ],
            quotes: 60,
            smart_invoices: 40,
            products: 40,
            product_sections: 6,
            requisites: 60,
            requisite_banks: 40,
            addresses: 100,
            timeline_comments: 150,
        }
    }
}

/// How a `batch` call is billed against the operating-time limit. Sources disagree (see
/// `bitrix24-api.md` §3), so every plausible variant can be switched on.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum BatchBilling {
    /// Each nested call is billed to its own method; `batch` itself is ignored
    /// (docs and `loadlimiter.php` `ignoreMethod = [batch]`).
    #[default]
    PerMethod,
    /// The whole batch is billed to the method `batch` (one field measurement, see
    /// docs/bitrix24-api.md §3).
    WholeBatch,
    /// Both: each nested call to its own method and the whole batch to `batch`.
    Both,
}

impl BatchBilling {
    /// Whether a batch's cost lands on the key `batch`.
    pub fn bills_batch_key(self) -> bool {
        matches!(self, BatchBilling::WholeBatch | BatchBilling::Both)
    }

    /// Whether each nested command's cost lands on its own method's key.
    pub fn bills_nested_methods(self) -> bool {
        matches!(self, BatchBilling::PerMethod | BatchBilling::Both)
    }
}

/// What `operating` each nested `result_time` entry of a batch answer reports. Undocumented;
/// portals may differ (`bitrix24-api.md` §3).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum NestedFigures {
    /// (a) The nested method's own accumulated figure.
    #[default]
    Own,
    /// (b) The `batch` key's running total, this batch's cost so far included.
    BatchTotal,
    /// (c) No `operating` / `operating_reset_at` in nested entries.
    Absent,
}

/// The billing settings in force; changeable at run time through the control API.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BillingSettings {
    pub batch_billing: BatchBilling,
    pub nested_figures: NestedFigures,
    /// Factor on every cost coefficient (0.5–2): a slower or faster portal.
    pub cost_scale: f64,
}

/// Allowed range of [`BillingSettings::cost_scale`].
pub const COST_SCALE_RANGE: std::ops::RangeInclusive<f64> = 0.5..=2.0;

impl BillingSettings {
    /// Refuses settings the emulator does not model.
    pub fn validate(&self) -> Result<(), DemoPortalError> {
        if !self.cost_scale.is_finite() || !COST_SCALE_RANGE.contains(&self.cost_scale) {
            return Err(DemoPortalError::Config(format!(
                "cost_scale {} is outside {}..={}",
                self.cost_scale,
                COST_SCALE_RANGE.start(),
                COST_SCALE_RANGE.end()
            )));
        }
        Ok(())
    }
}

/// Cloud limits (Bitrix24 docs `limits.md`; see docs/bitrix24-api.md §4).
#[derive(Debug, Clone, PartialEq)]
pub struct LimitsConfig {
    pub enabled: bool,
    /// Leaky-bucket drain rate, requests per simulated second.
    pub rate_per_sec: f64,
    /// Bucket size; above it requests get 503 QUERY_LIMIT_EXCEEDED.
    pub burst: f64,
    /// Per-method operating seconds allowed within the window.
    pub operating_limit_secs: f64,
    /// The sliding window (10 one-minute baskets = 600 s).
    pub window_secs: u64,
    pub batch_billing: BatchBilling,
    pub nested_figures: NestedFigures,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            enabled: true,
            rate_per_sec: 2.0,
            burst: 50.0,
            operating_limit_secs: 480.0,
            window_secs: 600,
            batch_billing: BatchBilling::PerMethod,
            nested_figures: NestedFigures::Own,
        }
    }
}

/// The OAuth application the portal accepts.
#[derive(Debug, Clone, PartialEq)]
pub struct OAuthConfig {
    pub client_id: String,
    pub client_secret: String,
    pub access_token: String,
    pub refresh_token: String,
    /// Access-token lifetime in simulated seconds.
    pub access_token_ttl_secs: f64,
}

impl Default for OAuthConfig {
    fn default() -> Self {
        OAuthConfig {
            client_id: "local.demo0000000000.00000000".into(),
            client_secret: "demo-client-secret".into(),
            access_token: "demoaccesstoken000000000000000000".into(),
            refresh_token: "demorefreshtoken00000000000000000".into(),
            access_token_ttl_secs: 3600.0,
        }
    }
}

/// Everything that defines a demo portal.
#[derive(Debug, Clone, PartialEq)]
pub struct PortalConfig {
    pub seed: u64,
    pub sizes: DataSizes,
    pub limits: LimitsConfig,
    pub cost: CostModel,
    /// Simulated seconds per real second.
    pub time_scale: f64,
    /// Portal/server UTC offset in seconds (dates print in it).
    pub utc_offset_secs: i32,
    pub webhook_user_id: u32,
    pub webhook_code: String,
    pub oauth: OAuthConfig,
    /// Whether the webhook user is a CRM administrator (`crm.type.list` needs it).
    pub crm_admin: bool,
    /// How empty values are printed where real portals differ (see [`RenderStyle`]).
    pub render: RenderStyle,
    /// Methods this portal does not have (a plan or version without them): they answer
    /// 404 `ERROR_METHOD_NOT_FOUND` (`crm.currency.list`, …). Switchable at run time.
    pub missing_methods: Vec<String>,
    /// Whether `crm.stagehistory.list` serves smart processes, and how it refuses them.
    pub smart_stage_history: SmartStageHistory,
    /// Scopes the webhook (or app) lacks (`crm`, `user`, `department`): their methods answer
    /// `insufficient_scope`. Switchable at run time.
    pub denied_scopes: Vec<String>,
    /// Whether `crm.item.productrow.list` takes an array in `=ownerId`.
    pub productrow_owner_arrays: ProductRowOwnerArrays,
}

/// Whether `crm.item.productrow.list` accepts several owners in `=ownerId`: the connector
/// notes (`bitrix24-api.md`) and older docs say an array is allowed; the current docs say
/// only `@id` takes an array and an array under a prefixed key is `INVALID_ARG_VALUE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProductRowOwnerArrays {
    /// Rows of every listed owner.
    #[default]
    Accepted,
    /// HTTP 400 `INVALID_ARG_VALUE`.
    Rejected,
}

/// How `crm.stagehistory.list` answers for a smart process (`entityTypeId` ≥ 128). The docs'
/// error table and its example body disagree, so each shape is a variant
/// (crm-stage-history-list.md, "Обработка ошибок").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmartStageHistory {
    /// Rows, like leads and deals.
    #[default]
    Supported,
    /// HTTP 400 `ENTITY_TYPE_NOT_SUPPORTED`, `Entity type DYNAMIC_128 is not supported` (the
    /// docs' error table).
    EntityTypeNotSupported,
    /// HTTP 400 `"error": 0`, `DYNAMIC_128 entity is not supported` (the docs' example body:
    /// a legacy `RestException` without a code).
    LegacyZero,
    /// HTTP 400 `NOT_FOUND`, `entityTypeId is not supported` (what this emulator answers for
    /// types without stage history).
    NotFound,
}

impl SmartStageHistory {
    /// The name used on the control API and the command line.
    pub fn name(self) -> &'static str {
        match self {
            SmartStageHistory::Supported => "supported",
            SmartStageHistory::EntityTypeNotSupported => "entity_type_not_supported",
            SmartStageHistory::LegacyZero => "legacy_zero",
            SmartStageHistory::NotFound => "not_found",
        }
    }

    /// Parses [`Self::name`].
    pub fn parse(s: &str) -> Option<Self> {
        [
            SmartStageHistory::Supported,
            SmartStageHistory::EntityTypeNotSupported,
            SmartStageHistory::LegacyZero,
            SmartStageHistory::NotFound,
        ]
        .into_iter()
        .find(|v| v.name() == s)
    }
}

/// Variants of how a portal prints some empty or composite values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenderStyle {
    /// crm.item prints `0` for an empty `companyId`, `contactId`, `mycompanyId`, `webformId`
    /// (the columns default to 0; docs crm-item-get.md example). Off: `null`.
    pub item_zero_refs: bool,
    /// Legacy lists print `"0"` for an empty single id reference (rows written with 0 by older
    /// code). Off (default): `null`, as in the docs' crm-lead-get.md / crm-deal-get.md examples.
    pub legacy_zero_refs: bool,
    /// crm.item prints a file as the JSON text of `{"id","url"}` instead of the object.
    pub files_as_text: bool,
}

impl Default for RenderStyle {
    fn default() -> Self {
        RenderStyle {
            item_zero_refs: true,
            legacy_zero_refs: false,
            files_as_text: false,
        }
    }
}

impl Default for PortalConfig {
    fn default() -> Self {
        PortalConfig {
            seed: 42,
            sizes: DataSizes::default(),
            limits: LimitsConfig::default(),
            cost: CostModel::default(),
            time_scale: 1.0,
            utc_offset_secs: 10_800,
            webhook_user_id: 1,
            webhook_code: "demo0webhook0code".into(),
            oauth: OAuthConfig::default(),
            crm_admin: true,
            render: RenderStyle::default(),
            missing_methods: Vec::new(),
            smart_stage_history: SmartStageHistory::default(),
            denied_scopes: Vec::new(),
            productrow_owner_arrays: ProductRowOwnerArrays::default(),
        }
    }
}

impl PortalConfig {
    /// The application token the demo app's online events carry (`auth.application_token`),
    /// derived from the seed so a handler can be configured before the portal starts.
    pub fn application_token(&self) -> String {
        format!(
            "{:016x}{:016x}",
            hash::mix(self.seed ^ 0xa5a5),
            hash::mix(self.seed ^ 0x5a5a)
        )
    }

    pub(crate) fn validate(&self) -> Result<(), DemoPortalError> {
        let bad = |m: &str| Err(DemoPortalError::Config(m.to_string()));
        if !(self.time_scale.is_finite() && self.time_scale > 0.0) {
            return bad("time_scale must be > 0");
        }
        if self.webhook_code.is_empty() || self.webhook_code.contains('/') {
            return bad("webhook_code must be a non-empty path segment");
        }
        if self.limits.enabled && (self.limits.rate_per_sec <= 0.0 || self.limits.burst < 1.0) {
            return bad("limits: rate_per_sec must be > 0 and burst >= 1");
        }
        if self.limits.window_secs < 60 {
            return bad("limits: window_secs must be >= 60");
        }
        if self.utc_offset_secs.abs() > 14 * 3600 {
            return bad("utc_offset_secs out of range");
        }
        self.billing().validate()
    }

    /// The billing settings this config starts with.
    pub fn billing(&self) -> BillingSettings {
        BillingSettings {
            batch_billing: self.limits.batch_billing,
            nested_figures: self.limits.nested_figures,
            cost_scale: self.cost.scale,
        }
    }
}
