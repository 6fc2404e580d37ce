//! The pipeline: an entity's rows out of Bitrix24 as typed pages, and what each load did.
pub mod changed;
mod companion;
mod error;
pub mod extract;
pub mod stats;

pub use extract::{EntityJob, PipelineError, TypedPage, ids, rows_by_ids, typed_rows};
