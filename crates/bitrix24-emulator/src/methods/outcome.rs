//! What a method returns: the result or an error, plus what it cost.

use super::super::json_out::J;
use super::super::method_error::MethodError;

/// A successful method result: `result` plus `total`/`next` lifted to the top level.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Success {
    pub result: J,
    pub total: Option<u64>,
    pub next: Option<u64>,
}

impl Success {
    pub(crate) fn plain(result: J) -> Success {
        Success {
            result,
            total: None,
            next: None,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    pub result: Result<Success, MethodError>,
    /// Simulated operating seconds.
    pub cost: f64,
    pub count_ran: bool,
    pub rows: usize,
}

impl Outcome {
    pub(crate) fn ok(s: Success, cost: f64, rows: usize) -> Outcome {
        Outcome {
            result: Ok(s),
            cost,
            count_ran: false,
            rows,
        }
    }
    /// A page of a counted or COUNT-free listing (`start`, `total`, `next`), billed for its
    /// rows and, when COUNT ran, for the count. Legacy lists answer `total: 0` without COUNT
    /// (`NavRecordCount` null → intval 0).
    pub(crate) fn listed(
        rows: Vec<J>,
        page: &super::super::query::Page,
        cost: &super::super::limits::CostModel,
        cols: usize,
    ) -> Outcome {
        let total = Some(page.total.unwrap_or(0));
        Self::page_of(J::List, rows, total, page, cost, cols)
    }

    /// [`Self::listed`] for the listings that answer `{key: [...]}` (`crm.item.list`'s
    /// `items`, `tasks.task.list`'s `tasks`) and no `total` without COUNT.
    pub(crate) fn listed_under(
        key: &'static str,
        rows: Vec<J>,
        page: &super::super::query::Page,
        cost: &super::super::limits::CostModel,
        cols: usize,
    ) -> Outcome {
        let wrap = |rows| J::obj([(key, J::List(rows))]);
        Self::page_of(wrap, rows, page.total, page, cost, cols)
    }

    fn page_of(
        wrap: impl FnOnce(Vec<J>) -> J,
        rows: Vec<J>,
        total: Option<u64>,
        page: &super::super::query::Page,
        cost: &super::super::limits::CostModel,
        cols: usize,
    ) -> Outcome {
        let n = rows.len();
        let mut secs = cost.page(n, cols);
        if let Some(total) = page.total {
            secs += cost.count(total, cols);
        }
        Outcome {
            result: Ok(Success {
                result: wrap(rows),
                total,
                next: page.next,
            }),
            cost: secs,
            count_ran: page.total.is_some(),
            rows: n,
        }
    }
    pub(crate) fn err(e: MethodError, cost: f64) -> Outcome {
        Outcome {
            result: Err(e),
            cost,
            count_ran: false,
            rows: 0,
        }
    }
}
