//! The catalog: the entities of a portal, their fields, discovery and diffing.
pub mod model;

pub use model::{Catalog, Entity, EntityKind, EnumOption, Field};
