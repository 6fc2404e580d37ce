//! Errors of the Bitrix24 client, classified by the Bitrix24 error **code**
//! (docs/bitrix24-api.md §1.6):
//! `OVERLOAD_LIMIT` and `QUERY_LIMIT_EXCEEDED` share HTTP 503 but one means "slow down" and the
//! other "stop". Messages never carry URLs or secrets: they name the method only.

/// What a caller should do with an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// 503 `QUERY_LIMIT_EXCEEDED`: refused before execution; back off and retry.
    RateLimited,
    /// 429 `OPERATION_TIME_LIMIT`: the method's operating budget is spent; wait for the reset.
    OperatingLimit,
    /// 5xx, timeouts, connection resets, truncated bodies: retry with backoff.
    Transient,
    /// 401 `expired_token`: refresh the OAuth token and repeat.
    ExpiredToken,
    /// `OVERLOAD_LIMIT`: blocked by support. Never retried, never hammered.
    Overload,
    /// Wrong credentials, revoked token, missing scope, unpaid plan.
    Auth,
    /// `ACCESS_DENIED` / `Access denied.`
    AccessDenied,
    /// `NOT_FOUND` / `Not found`.
    NotFound,
    /// `ERROR_METHOD_NOT_FOUND`.
    MethodNotFound,
    /// `ENTITY_TYPE_NOT_SUPPORTED` / `… is not supported`: the method exists, not for this
    /// entity type (`crm.stagehistory.list` of a smart process on some portals).
    Unsupported,
    /// Anything the request itself got wrong (`INVALID_ARG_VALUE`, empty-code 400s, …).
    BadRequest,
    /// `PORTAL_DELETED` and other final server answers.
    Fatal,
}

impl ErrorClass {
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorClass::RateLimited | ErrorClass::OperatingLimit | ErrorClass::Transient
        )
    }
}

/// Classifies an error answer by its code first, the HTTP status only as a fallback.
pub fn classify(status: u16, code: &str, description: &str) -> ErrorClass {
    let code = code.trim().to_ascii_lowercase();
    let desc = description.to_ascii_lowercase();
    // A legacy `RestException` without a code may also arrive as the number 0
    // (crm-stage-history-list.md: `"error": 0`).
    let code = if code == "0" { String::new() } else { code };
    match code.as_str() {
        "query_limit_exceeded" => ErrorClass::RateLimited,
        "operation_time_limit" => ErrorClass::OperatingLimit,
        "overload_limit" => ErrorClass::Overload,
        "expired_token" => ErrorClass::ExpiredToken,
        "invalid_token"
        | "no_auth_found"
        | "invalid_credentials"
        | "wrong_auth_type"
        | "insufficient_scope"
        | "invalid_scope"
        | "invalid_grant"
        | "invalid_client"
        | "payment_required"
        | "authorization_error"
        | "user_access_error" => ErrorClass::Auth,
        "access_denied" | "allowed_only_intranet_user" => ErrorClass::AccessDenied,
        // Some portals refuse a type they keep no stage history for this way.
        "not_found" if desc.contains("is not supported") => ErrorClass::Unsupported,
        "not_found" => ErrorClass::NotFound,
        "error_method_not_found" | "method_not_found" => ErrorClass::MethodNotFound,
        "entity_type_not_supported" => ErrorClass::Unsupported,
        "internal_server_error" | "error_unexpected_answer" => ErrorClass::Transient,
        "portal_deleted" => ErrorClass::Fatal,
        "" if desc.contains("access denied") => ErrorClass::AccessDenied,
        "" if desc.contains("not found") => ErrorClass::NotFound,
        "" if desc.contains("is not supported") => ErrorClass::Unsupported,
        "" if status >= 500 => ErrorClass::Transient,
        "" => ErrorClass::BadRequest,
        _ => by_status(status),
    }
}

fn by_status(status: u16) -> ErrorClass {
    match status {
        401 => ErrorClass::Auth,
        403 => ErrorClass::AccessDenied,
        404 => ErrorClass::MethodNotFound,
        429 => ErrorClass::OperatingLimit,
        500..=599 => ErrorClass::Transient,
        _ => ErrorClass::BadRequest,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BitrixError {
    /// An error answer of the portal (top level or one batch command).
    #[error("Bitrix24 {method}: {} (HTTP {status}): {description}", display_code(.code))]
    Api {
        method: String,
        /// 0 for a command inside a batch (the batch itself answered 200).
        status: u16,
        code: String,
        description: String,
        class: ErrorClass,
    },
    /// No usable HTTP answer: timeout, reset, DNS. The message is stripped of URLs.
    #[error("Bitrix24 {method}: transport error: {message}")]
    Transport { method: String, message: String },
    /// An answer that is not the JSON it must be (truncated, HTML error page, missing `result`).
    #[error("Bitrix24 {method}: malformed response (HTTP {status}): {message}")]
    Malformed {
        method: String,
        status: u16,
        message: String,
    },
    /// Bounded retries ran out.
    #[error("Bitrix24 {method}: gave up after {attempts} attempts; last error: {last}")]
    RetriesExhausted {
        method: String,
        attempts: u32,
        last: Box<BitrixError>,
    },
    /// The OAuth server refused to refresh the token.
    #[error("OAuth token refresh failed: {} (HTTP {status}): {description}", display_code(.code))]
    OAuth {
        status: u16,
        code: String,
        description: String,
    },
    /// The rotated token could not be persisted (state directory).
    #[error("cannot persist OAuth tokens: {0}")]
    State(String),
    /// Misuse of the client API (too many batch commands, unknown method key…).
    #[error("invalid request: {0}")]
    Usage(String),
}

fn display_code(code: &str) -> &str {
    if code.is_empty() {
        "(empty code)"
    } else {
        code
    }
}

impl BitrixError {
    pub fn class(&self) -> ErrorClass {
        match self {
            BitrixError::Api { class, .. } => *class,
            BitrixError::Transport { .. } | BitrixError::Malformed { .. } => ErrorClass::Transient,
            BitrixError::RetriesExhausted { last, .. } => match last.class() {
                // Exhausted retries are final for the caller.
                ErrorClass::RateLimited | ErrorClass::OperatingLimit | ErrorClass::Transient => {
                    ErrorClass::Fatal
                }
                other => other,
            },
            BitrixError::OAuth { code, .. } => match classify(401, code, "") {
                ErrorClass::Transient => ErrorClass::Transient,
                _ => ErrorClass::Auth,
            },
            BitrixError::State(_) => ErrorClass::Fatal,
            BitrixError::Usage(_) => ErrorClass::BadRequest,
        }
    }

    pub fn is_retryable(&self) -> bool {
        self.class().is_retryable()
    }

    /// The Bitrix24 error code, if the portal sent one (for the 502 message of `serve`).
    pub fn code(&self) -> Option<&str> {
        match self {
            BitrixError::Api { code, .. } | BitrixError::OAuth { code, .. } => Some(code),
            BitrixError::RetriesExhausted { last, .. } => last.code(),
            _ => None,
        }
    }

    /// Builds an API error from an `{error, error_description}` body.
    pub fn api(method: &str, status: u16, code: &str, description: &str) -> Self {
        BitrixError::Api {
            method: method.to_string(),
            status,
            code: code.to_string(),
            description: description.to_string(),
            class: classify(status, code, description),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_status_different_code_different_class() {
        assert_eq!(
            classify(503, "QUERY_LIMIT_EXCEEDED", ""),
            ErrorClass::RateLimited
        );
        assert_eq!(classify(503, "OVERLOAD_LIMIT", ""), ErrorClass::Overload);
        assert!(!ErrorClass::Overload.is_retryable());
        // Some third parties report QUERY_LIMIT_EXCEEDED with HTTP 200: the code decides.
        assert_eq!(
            classify(200, "QUERY_LIMIT_EXCEEDED", ""),
            ErrorClass::RateLimited
        );
    }

    #[test]
    fn empty_code_uses_description() {
        assert_eq!(classify(400, "", "Not found"), ErrorClass::NotFound);
        assert_eq!(
            classify(400, "", "Access denied."),
            ErrorClass::AccessDenied
        );
        assert_eq!(
            classify(400, "", "Parameter 'filter' must be array."),
            ErrorClass::BadRequest
        );
        assert_eq!(classify(502, "", ""), ErrorClass::Transient);
    }

    #[test]
    fn entity_type_not_supported_with_and_without_a_code() {
        assert_eq!(
            classify(
                400,
                "ENTITY_TYPE_NOT_SUPPORTED",
                "Entity type DYNAMIC_128 is not supported"
            ),
            ErrorClass::Unsupported
        );
        // crm-stage-history-list.md shows `"error": 0` (a batch passes it on as "0").
        assert_eq!(
            classify(400, "0", "SHIPMENT_DOCUMENT entity is not supported"),
            ErrorClass::Unsupported
        );
        assert_eq!(
            classify(0, "", "DYNAMIC_128 entity is not supported"),
            ErrorClass::Unsupported
        );
        assert_eq!(classify(400, "0", "Not found"), ErrorClass::NotFound);
        assert_eq!(
            classify(400, "NOT_FOUND", "entityTypeId is not supported"),
            ErrorClass::Unsupported
        );
        assert_eq!(
            classify(400, "NOT_FOUND", "Element not found"),
            ErrorClass::NotFound
        );
    }

    #[test]
    fn codes_are_case_insensitive_and_unknown_codes_fall_back_to_status() {
        assert_eq!(classify(401, "EXPIRED_TOKEN", ""), ErrorClass::ExpiredToken);
        assert_eq!(classify(500, "SOMETHING_NEW", ""), ErrorClass::Transient);
        assert_eq!(classify(400, "SOMETHING_NEW", ""), ErrorClass::BadRequest);
    }

    #[test]
    fn exhausted_retries_are_final() {
        let e = BitrixError::RetriesExhausted {
            method: "crm.deal.list".into(),
            attempts: 5,
            last: Box::new(BitrixError::api(
                "crm.deal.list",
                503,
                "QUERY_LIMIT_EXCEEDED",
                "",
            )),
        };
        assert!(!e.is_retryable());
        assert_eq!(e.code(), Some("QUERY_LIMIT_EXCEEDED"));
    }
}
