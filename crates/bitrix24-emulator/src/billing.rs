//! What a call costs and how the portal reports it: the cost factor, the operating budget per
//! billing key, the counters, and the `time` object of an answer (docs/bitrix24-api.md §3, §4).
use super::json_out::J;
use super::methods::{self, Ctx};
use super::params::PVal;
use super::render::iso_from_f64;

/// Runs a (non-batch) method with its cost scaled by the portal's cost factor in force.
pub(crate) fn call_scaled(ctx: &mut Ctx, method: &str, params: &PVal) -> Option<methods::Outcome> {
    let scale = ctx.st.billing.cost_scale;
    methods::call(ctx, method, params).map(|mut o| {
        o.cost *= scale;
        o
    })
}

/// Whether `method` is over its operating budget now.
pub(crate) fn operating_blocked(ctx: &mut Ctx, method: &str, now: f64) -> bool {
    let l = &ctx.shared.cfg.limits;
    if !l.enabled {
        return false;
    }
    let (used, _) = ctx.st.operating.state(method, now, l.window_secs);
    used >= l.operating_limit_secs
}

/// Record a call in counters and bill its cost (to `bill_to`, when the billing mode says so).
pub(crate) fn bill(
    ctx: &mut Ctx,
    method: &str,
    bill_to: Option<&str>,
    now: f64,
    cost: f64,
    count_ran: bool,
    rows: usize,
) {
    let st = &mut *ctx.st;
    if count_ran {
        st.counters.count_queries += 1;
        *st.counters
            .count_queries_per_method
            .entry(method.to_string())
            .or_default() += 1;
    }
    *st.counters
        .rows_served
        .entry(method.to_string())
        .or_default() += rows as u64;
    if let Some(m) = bill_to {
        *st.counters.operating_secs.entry(m.to_string()).or_default() += cost;
        st.operating
            .add(m, now, cost, ctx.shared.cfg.limits.window_secs);
    }
}

/// The `time` object of a call that started at `start` and took `processing` seconds, with
/// the accumulated figure of `method`'s key.
pub(crate) fn time_object(ctx: &mut Ctx, method: &str, start: f64, processing: f64) -> J {
    let figure = key_figure(ctx, method, finish_of(start, processing), 0.0);
    time_with_figure(ctx, start, processing, figure)
}

/// `(operating, operating_reset_at)` of a billing key at `at`, plus `pending` seconds not
/// billed yet; `None` when the limits are off.
pub(crate) fn key_figure(ctx: &mut Ctx, key: &str, at: f64, pending: f64) -> Option<(f64, i64)> {
    if !ctx.shared.cfg.limits.enabled {
        return None;
    }
    let window = ctx.shared.cfg.limits.window_secs;
    let (operating, reset) = ctx.st.operating.state(key, at, window);
    let reset = reset.unwrap_or_else(|| (at + window as f64).floor() as i64);
    Some((operating + pending, reset))
}

/// When a call that started at `start` and took `processing` seconds finishes.
pub(crate) fn finish_of(start: f64, processing: f64) -> f64 {
    start + processing + 0.000_35
}

/// The `time` object of a call that started at `start` and took `processing` seconds,
/// carrying `figure` as `operating` / `operating_reset_at` (left out when `None`).
pub(crate) fn time_with_figure(
    ctx: &mut Ctx,
    start: f64,
    processing: f64,
    figure: Option<(f64, i64)>,
) -> J {
    let offset = ctx.offset();
    let finish = finish_of(start, processing);
    let mut t = vec![
        ("start".to_string(), J::Float(start)),
        ("finish".into(), J::Float(finish)),
        ("duration".into(), J::Float(finish - start)),
        ("processing".into(), J::Float(processing)),
        ("date_start".into(), J::Str(iso_from_f64(start, offset))),
        ("date_finish".into(), J::Str(iso_from_f64(finish, offset))),
    ];
    if let Some((operating, reset)) = figure {
        t.push(("operating_reset_at".into(), J::Int(reset)));
        t.push(("operating".into(), J::Float(operating)));
    }
    J::Obj(t)
}
