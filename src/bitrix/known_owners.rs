//! Owners b24ch already holds for a per-owner listing (`super::owners`): plain data, so a
//! listing request carries it without importing the owners' listing.
use chrono::{DateTime, FixedOffset};
use serde_json::Value;
use std::collections::HashMap;

/// Owners b24ch already holds, by entity type id (see `super::owners`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KnownOwners(pub HashMap<u32, OwnerSnapshot>);

/// The live owners of one type as an owner table holds them.
#[derive(Debug, Clone, PartialEq)]
pub struct OwnerSnapshot {
    /// Id and modification time (as the portal writes it, e.g. `2024-05-01T10:00:00+03:00`).
    pub owners: Vec<(i64, Value)>,
    /// Owners modified at or after this time are listed from the portal again: the table's
    /// watermark minus the lookback.
    pub changed_since: DateTime<FixedOffset>,
}
