//! Picking the injected fault (if any) that applies to a request.

use super::hash::mix;
use super::method_error::MethodError;
use super::oauth::EXPIRED;
use super::state::{Fault, FaultKind, State};

/// Return the fault to apply to a request for `method`, consuming one use of it.
pub(crate) fn take(st: &mut State, method: &str) -> Option<FaultKind> {
    take_matching(st, method, false)
}

/// Return the error to answer for `method`'s command inside a batch, from a fault that names
/// that method (a fault naming no method applies to whole requests only), consuming one use.
pub(crate) fn take_nested(st: &mut State, method: &str) -> Option<MethodError> {
    let e = |status, code: &str, description: &str| MethodError::new(status, code, description);
    match take_matching(st, method, true)? {
        FaultKind::QueryLimitExceeded => Some(e(503, "QUERY_LIMIT_EXCEEDED", "Too many requests")),
        FaultKind::OperationTimeLimit => Some(e(
            429,
            "OPERATION_TIME_LIMIT",
            "Method is blocked due to operation time limit.",
        )),
        FaultKind::InternalError => Some(e(500, "INTERNAL_SERVER_ERROR", "Internal server error")),
        FaultKind::ExpiredToken => Some(e(401, EXPIRED.code, EXPIRED.description)),
        FaultKind::PortalError {
            status,
            code,
            description,
        } => Some(e(status, &code, &description)),
        // Transport faults have no meaning for one command of an answer.
        FaultKind::Slow { .. } | FaultKind::ConnectionReset | FaultKind::TruncatedJson => None,
    }
}

fn take_matching(st: &mut State, method: &str, named_only: bool) -> Option<FaultKind> {
    let mut hit = None;
    for i in 0..st.faults.len() {
        let Some(f) = st.faults.get(i) else { break };
        let applies = match f.method.as_deref() {
            Some(m) => m.eq_ignore_ascii_case(method),
            None => !named_only,
        };
        if !applies {
            continue;
        }
        if let Some(p) = f.probability {
            st.rng = mix(st.rng);
            let roll = (st.rng >> 11) as f64 / (1u64 << 53) as f64;
            if roll >= p {
                continue;
            }
        }
        hit = Some(i);
        break;
    }
    let i = hit?;
    let fault: &mut Fault = st.faults.get_mut(i)?;
    let kind = fault.kind.clone();
    if let Some(rem) = fault.remaining.as_mut() {
        *rem = rem.saturating_sub(1);
        if *rem == 0 {
            st.faults.remove(i);
        }
    }
    st.counters.faults_injected += 1;
    *st.counters
        .faults_by_kind
        .entry(kind.name().to_string())
        .or_default() += 1;
    Some(kind)
}
