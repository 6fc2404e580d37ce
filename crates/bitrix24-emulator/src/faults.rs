//! Picking the injected fault (if any) that applies to a request.

use super::hash::mix;
use super::state::{Fault, FaultKind, State};

/// Return the fault to apply to a request for `method`, consuming one use of it.
pub(crate) fn take(st: &mut State, method: &str) -> Option<FaultKind> {
    let mut hit = None;
    for i in 0..st.faults.len() {
        let Some(f) = st.faults.get(i) else { break };
        if f.method
            .as_deref()
            .is_some_and(|m| !m.eq_ignore_ascii_case(method))
        {
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
