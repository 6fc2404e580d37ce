//! demo_portal: a faithful Bitrix24 REST emulator with generated data.
//!
//! See `docs/bitrix24-api.md` for the behaviour it reproduces. Start it with [`start`]; drive it
//! in-process through [`PortalControl`] or over HTTP under `/_control/...`.

mod addresses;
mod batch;
mod billing;
mod bindings;
mod cli;
mod config;
mod control;
mod crm_docs;
mod error;
mod events;
mod faults;
mod fields;
mod generate;
mod hash;
mod json_out;
mod limits;
mod method_error;
mod methods;
mod model;
mod oauth;
mod params;
mod productrows;
mod products;
mod query;
mod render;
mod requisites;
mod running;
mod server;
mod state;
mod store;
mod timeline;
mod work;

pub use cli::{DemoPortalArgs, run_cli};
pub use config::{
    BatchBilling, BillingSettings, COST_SCALE_RANGE, DataSizes, LimitsConfig, NestedFigures,
    OAuthConfig, PortalConfig, ProductRowOwnerArrays, RenderStyle, SmartProcessSpec,
    SmartStageHistory,
};
pub use control::{PortalControl, UserFieldSpec};
pub use error::DemoPortalError;
pub use events::{
    EventCounters, EventSettings, Handler as EventHandler, OfflineEventData, OfflineRecord,
    OfflineTimestamp, OnlineFormat,
};
pub use limits::CostModel;
pub use limits::published as cost_calibration;
pub use running::{RunningPortal, start};
pub use state::{Counters, Fault, FaultKind};
