//! `crm.activity.binding.list` (`bindings.rs`): one activity per call, unpaged.

use super::super::json_out::J;
use super::super::method_error::MethodError;
use super::super::params::PVal;
use super::ctx::Ctx;
use super::outcome::{Outcome, Success};

pub(crate) fn list(ctx: &mut Ctx, params: &PVal) -> Outcome {
    let cost = ctx.shared.cfg.cost.clone();
    let Some(activity) = params.get("activityId").and_then(PVal::as_i64) else {
        return Outcome::err(
            MethodError::new(400, "100", "Required fields are missing"),
            cost.call_secs,
        );
    };
    let rows = u64::try_from(activity)
        .ok()
        .and_then(|a| ctx.st.data.bindings_of(a));
    match rows {
        Some(rows) => {
            let n = rows.len();
            Outcome::ok(Success::plain(J::List(rows)), cost.page(n, 2), n)
        }
        None => Outcome::err(
            MethodError::new(400, "NOT_FOUND", "Element not found"),
            cost.call_secs,
        ),
    }
}
