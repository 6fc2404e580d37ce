//! The catalog: the entities of a portal, their fields, discovery and diffing.
pub mod model;

pub use model::{
    Catalog, Companion, Entity, EntityKind, EnumOption, Field, Unavailable, UnavailableReason,
};
mod companion;
pub mod diff;
pub mod discover;
pub mod field_description;
mod static_fields;
mod task_fields;
pub mod unavailable;
mod work_static;

pub use diff::{CatalogDiff, diff};
pub use discover::discover;
pub use field_description::fields_from_description;
