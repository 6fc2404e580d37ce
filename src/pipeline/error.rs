//! Errors of the pipeline.
use crate::bitrix::BitrixError;

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Bitrix(#[from] BitrixError),
    #[error("entity {entity} uses unknown method key `{method}`")]
    UnknownMethod { entity: String, method: String },
}
