//! What every method is handed (the portal state and config), and the parameter conventions
//! the methods share.

use super::super::params::PVal;
use super::super::state::{Shared, State};

/// Context handed to every method.
pub(crate) struct Ctx<'a> {
    pub st: &'a mut State,
    pub shared: &'a Shared,
}

impl Ctx<'_> {
    pub(crate) fn offset(&self) -> i32 {
        self.shared.cfg.utc_offset_secs
    }
}

/// `CCrmRestHelper::resolveArrayParam`: `filter`, `FILTER`, `Filter`, `arFilter`.
pub(crate) fn array_param<'a>(params: &'a PVal, name: &str) -> Option<&'a PVal> {
    let mut cap = name.to_string();
    if let Some(first) = cap.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    [
        name.to_string(),
        name.to_uppercase(),
        cap.clone(),
        format!("ar{cap}"),
    ]
    .iter()
    .find_map(|k| params.get(k))
}

/// `start` is read only in lowercase by the REST server.
pub(crate) fn start_param(params: &PVal) -> i64 {
    params.get("start").and_then(PVal::as_i64).unwrap_or(0)
}
