//! Errors of the pipeline.
use crate::bitrix::BitrixError;

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Bitrix(#[from] BitrixError),
    #[error("entity {entity} uses unknown method key `{method}`")]
    UnknownMethod { entity: String, method: String },
}

impl PipelineError {
    /// What an operator can do about a failed load (shown on the status page next to it).
    pub fn remedy(&self) -> &'static str {
        match self {
            PipelineError::Bitrix(e) => bitrix_remedy(e),
            PipelineError::UnknownMethod { .. } => {
                "A defect in b24ch's method table: please report it with this message; disable the entity meanwhile ([entities.NAME] enabled = false)."
            }
        }
    }
}

fn bitrix_remedy(e: &BitrixError) -> &'static str {
    use crate::bitrix::ErrorClass as C;
    if let BitrixError::RetriesExhausted { .. } = e {
        return "The portal kept failing on every retry. The next scheduled load tries again by itself; if this repeats, check that the portal is up and not overloaded.";
    }
    match e.class() {
        C::RateLimited | C::OperatingLimit => {
            "The portal's limits were reached; b24ch waits for them and the next scheduled load goes on. Nothing to do unless it repeats (then schedule the entity less often)."
        }
        C::Transient => {
            "A temporary failure between b24ch and the portal; the next scheduled load retries. Nothing to do unless it repeats."
        }
        C::ExpiredToken | C::Auth => {
            "The portal refused the credentials: check [portal] webhook_url (or the OAuth app) in the config, that the webhook still exists and has the crm scope, and that the plan is paid."
        }
        C::AccessDenied => {
            "The webhook's user may not read this: give that user the rights (e.g. CRM administrator for smart-process types), or turn the entity off with [entities.NAME] enabled = false."
        }
        C::NotFound | C::MethodNotFound | C::Unsupported => {
            "The portal does not offer this (module off, plan, or removed): enable it in the portal, or turn the entity off with [entities.NAME] enabled = false."
        }
        C::Overload => {
            "The portal blocked the webhook (OVERLOAD_LIMIT). b24ch does not retry: contact Bitrix24 support, then restart b24ch."
        }
        C::BadRequest => {
            "The portal refused b24ch's request: please report it with this message; turn the entity off meanwhile if it blocks you."
        }
        C::Fatal => "The portal answered a final error: check the portal's address and status.",
    }
}
