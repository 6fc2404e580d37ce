//! The Bitrix24 side: the REST client and its auth, the per-portal governor, batch and
//! COUNT-free listing, and the per-method knowledge table.
pub mod auth;
pub mod batch;
mod both_ends;
pub mod client;
mod dispatch;
pub mod envelope;
pub mod error;
pub mod governor;
pub mod governor_file;
pub mod keyset;
pub mod known_owners;
pub mod listing;
pub mod meter;
pub mod methods;
pub mod owners;
pub mod productrows;
pub mod raw;

pub use auth::{AuthConfig, OAuthConfig};
pub use batch::{Batch, BatchResponse, CommandOutcome};
pub use client::{Client, ClientConfig};
pub use dispatch::list;
pub use envelope::{Response, TimeInfo};
pub use error::{BitrixError, ErrorClass};
pub use governor::{Governor, GovernorConfig, GovernorSnapshot};
pub use listing::{ListRequest, Page};
pub use meter::Meter;
pub use methods::{MethodSpec, spec};
pub use raw::{RawResult, RawRow};
