//! An error of a REST method, as the portal reports it (HTTP status, `error`, `error_description`).

/// A method error as the portal reports it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MethodError {
    pub status: u16,
    pub code: String,
    pub description: String,
}

impl MethodError {
    pub(crate) fn new(status: u16, code: &str, description: &str) -> MethodError {
        MethodError {
            status,
            code: code.into(),
            description: description.into(),
        }
    }
    /// Legacy CRM `RestException` without a code: `error: ""`, HTTP 400.
    pub(crate) fn legacy(description: &str) -> MethodError {
        MethodError::new(400, "", description)
    }
}
