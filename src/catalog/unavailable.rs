//! Entities a portal cannot serve: which answers of a list method mean "not on this portal"
//! (as opposed to a fault to retry or a bug to report), and what the user can do about it.
//!
//! Real portals differ here (docs/bitrix24-api.md §1.6, §5): a plan or an older version has no
//! `crm.currency.list` (`ERROR_METHOD_NOT_FOUND`), some portals answer stage history of a smart
//! process with `ENTITY_TYPE_NOT_SUPPORTED` (or, legacy style, `"error": 0` and "… is not
//! supported"), a webhook may lack a scope (`insufficient_scope`) and its user may lack rights
//! (`ACCESS_DENIED`). Such an entity is recorded as [`Unavailable`] instead of failing the catalog.
use super::model::{EntityKind, Unavailable, UnavailableReason};
use crate::bitrix::{BitrixError, ErrorClass, MethodSpec};

/// What a refusal of an entity's method is about: the entity as the catalog would name it.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub entity: &'a str,
    pub kind: EntityKind,
    pub title: &'a str,
    pub spec: &'a MethodSpec,
}

/// The refusal an error means, or `None` for anything else (limits, faults, bad requests).
pub fn reason_of(err: &BitrixError) -> Option<UnavailableReason> {
    let BitrixError::Api { code, class, .. } = err else {
        return None;
    };
    match class {
        ErrorClass::MethodNotFound => Some(UnavailableReason::MethodNotFound),
        ErrorClass::Unsupported => Some(UnavailableReason::NotSupported),
        ErrorClass::AccessDenied => Some(UnavailableReason::AccessDenied),
        ErrorClass::Auth if is_scope_code(code) => Some(UnavailableReason::MissingScope),
        _ => None,
    }
}

fn is_scope_code(code: &str) -> bool {
    let code = code.trim();
    code.eq_ignore_ascii_case("insufficient_scope") || code.eq_ignore_ascii_case("invalid_scope")
}

/// The entity marked unavailable with the portal's code and words, if `err` is a refusal.
pub fn classify(subject: Subject<'_>, err: &BitrixError) -> Option<Unavailable> {
    let reason = reason_of(err)?;
    let BitrixError::Api {
        method,
        code,
        description,
        ..
    } = err
    else {
        return None;
    };
    let scope = (reason == UnavailableReason::MissingScope).then(|| subject.spec.scope());
    Some(Unavailable {
        entity: subject.entity.to_string(),
        kind: subject.kind,
        title: subject.title.to_string(),
        method: method.clone(),
        reason,
        code: code.clone(),
        message: description.clone(),
        scope: scope.map(str::to_string),
        hint: hint(reason, subject.entity, method, scope),
    })
}

fn hint(reason: UnavailableReason, entity: &str, method: &str, scope: Option<&str>) -> String {
    let retried = "b24ch asks again at every catalog discovery (the serve autopilot, the next \
                   `apply` or `sync`) and creates and loads it once the portal serves it";
    let silence = format!("to stop asking, set `[entities.{entity}] enabled = false`");
    match reason {
        UnavailableReason::MethodNotFound => {
            format!("this portal (its plan or version) has no `{method}`; {retried}; {silence}")
        }
        UnavailableReason::NotSupported => {
            format!("this portal has `{method}` but not for this entity type; {retried}; {silence}")
        }
        UnavailableReason::MissingScope => format!(
            "add the `{}` scope to the webhook (Bitrix24: Developer resources → your inbound \
             webhook → permissions) or to the app, then run `b24ch apply` (or wait for the \
             autopilot)",
            scope.unwrap_or("crm")
        ),
        UnavailableReason::AccessDenied => format!(
            "the user the webhook or app acts as may not read this; use a webhook of a user \
             with access (e.g. an administrator) or grant the rights, then run `b24ch apply` \
             (or wait for the autopilot); {silence}"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bitrix::methods::spec;

    fn subject(entity: &'static str, key: &str) -> Subject<'static> {
        Subject {
            entity,
            kind: EntityKind::Reference,
            title: "Title",
            spec: spec(key).unwrap(),
        }
    }

    fn api(method: &str, status: u16, code: &str, text: &str) -> BitrixError {
        BitrixError::api(method, status, code, text)
    }

    #[test]
    fn method_not_found_keeps_the_portal_s_code_and_words() {
        let e = api(
            "crm.currency.list",
            404,
            "ERROR_METHOD_NOT_FOUND",
            "Method not found!",
        );
        let u = classify(subject("crm_currency", "crm.currency"), &e).unwrap();
        assert_eq!(u.reason, UnavailableReason::MethodNotFound);
        assert_eq!(
            (u.method.as_str(), u.code.as_str(), u.message.as_str()),
            (
                "crm.currency.list",
                "ERROR_METHOD_NOT_FOUND",
                "Method not found!"
            )
        );
        assert_eq!(u.scope, None);
        assert!(
            u.hint.contains("[entities.crm_currency] enabled = false"),
            "{}",
            u.hint
        );
        assert_eq!(
            u.explain(),
            format!(
                "crm_currency is unavailable on this portal: Bitrix24 crm.currency.list answered \
                 ERROR_METHOD_NOT_FOUND: Method not found!; {}",
                u.hint
            )
        );
    }

    #[test]
    fn stage_history_not_supported_with_a_code_or_legacy_zero() {
        let s = subject("crm_stagehistory_dynamic_128", "crm.stagehistory");
        for (code, text) in [
            (
                "ENTITY_TYPE_NOT_SUPPORTED",
                "Entity type DYNAMIC_128 is not supported",
            ),
            ("0", "DYNAMIC_128 entity is not supported"),
            ("NOT_FOUND", "entityTypeId is not supported"),
            ("", "DYNAMIC_128 entity is not supported"),
        ] {
            let u = classify(s, &api("crm.stagehistory.list", 400, code, text)).unwrap();
            assert_eq!(u.reason, UnavailableReason::NotSupported, "{code}");
            assert_eq!((u.code.as_str(), u.message.as_str()), (code, text));
        }
    }

    #[test]
    fn scope_errors_name_the_scope_to_add() {
        // Inside a batch the description is empty (docs/bitrix24-api.md §1.6).
        let u = classify(
            subject("user", "user"),
            &api("user.get", 0, "insufficient_scope", ""),
        )
        .unwrap();
        assert_eq!(u.reason, UnavailableReason::MissingScope);
        assert_eq!(u.scope.as_deref(), Some("user"));
        assert!(u.hint.starts_with("add the `user` scope"), "{}", u.hint);
        assert_eq!(u.portal_said(), "user.get answered insufficient_scope");
        let u = classify(
            subject("crm_currency", "crm.currency"),
            &api(
                "crm.currency.list",
                401,
                "INSUFFICIENT_SCOPE",
                "The request requires higher privileges than provided by the webhook token",
            ),
        )
        .unwrap();
        assert_eq!(u.scope.as_deref(), Some("crm"));
    }

    #[test]
    fn access_denied_in_either_spelling() {
        let s = subject("crm_currency", "crm.currency");
        for (code, text) in [("ACCESS_DENIED", "Access denied!"), ("", "Access denied.")] {
            let u = classify(s, &api("crm.currency.list", 400, code, text)).unwrap();
            assert_eq!(u.reason, UnavailableReason::AccessDenied);
        }
    }

    #[test]
    fn other_errors_are_not_refusals() {
        let s = subject("crm_currency", "crm.currency");
        for e in [
            api(
                "crm.currency.list",
                503,
                "QUERY_LIMIT_EXCEEDED",
                "Too many requests",
            ),
            api(
                "crm.currency.list",
                429,
                "OPERATION_TIME_LIMIT",
                "Method is blocked",
            ),
            api(
                "crm.currency.list",
                400,
                "INVALID_ARG_VALUE",
                "Invalid filter",
            ),
            api(
                "crm.currency.list",
                401,
                "INVALID_CREDENTIALS",
                "Invalid request credentials",
            ),
            api("crm.currency.list", 401, "expired_token", "expired"),
            api("crm.currency.list", 500, "INTERNAL_SERVER_ERROR", ""),
            BitrixError::Transport {
                method: "crm.currency.list".into(),
                message: "reset".into(),
            },
        ] {
            assert_eq!(classify(s, &e), None, "{e}");
        }
    }
}
