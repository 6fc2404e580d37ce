//! Rows modified since a time, or with given IDs, read as commands of one `batch`: the change
//! feed asks for the rows changed since its last read in the same request as the event queue
//! (`crate::events::feed`), so a steady trickle of changes costs one request per read, and
//! fetches the few rows those pages lack by ID in one more (`crate::events::sink`), both
//! methods' pages together instead of a listing and a companion batch after it.
//!
//! Both methods' pages have the same filter and order (`>=` the cursor or `@ID`, `ID ASC`). A
//! row that changed between the two methods' pages, or that the pages did not reach, is left
//! out: the caller fetches whatever the events named and these pages lack, by ID.
use super::companion::{CompanionJob, page_start, primary_ids};
use super::error::PipelineError;
use super::extract::{EntityJob, service_values};
use crate::bitrix::batch::{Batch, BatchResponse, CommandOutcome, MAX_COMMANDS};
use crate::bitrix::listing::{PAGE_SIZE, first_page_params, raw_rows, row_id};
use crate::bitrix::methods::{FilterStyle, Paging};
use crate::bitrix::{BitrixError, RawResult, RawRow};
use crate::schema::Cell;
use chrono::{DateTime, FixedOffset};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// IDs one batch reads by ID: half its commands for each method.
pub const MAX_IDS: usize = PAGE_SIZE * MAX_COMMANDS / 2;

/// One entity's pages of rows (modified since a time, or with given IDs), planned as batch
/// commands.
pub struct ChangedRows {
    job: Arc<EntityJob>,
    /// (command name, params) of the primary's pages, and of the companion's.
    primary: Vec<(String, Value)>,
    companion: Vec<(String, Value)>,
}

impl ChangedRows {
    /// `pages` pages of 50 of each method, named `{tag}p{k}` / `{tag}c{k}`; `None` where the
    /// method has no modification cursor or does not page by offset with an ID order.
    pub fn plan(
        job: Arc<EntityJob>,
        since: DateTime<FixedOffset>,
        pages: usize,
        tag: &str,
    ) -> Option<Self> {
        if !job.incremental() {
            return None;
        }
        let first = first_page_params(job.spec(), &job.list_request(Some(since), false));
        let primary = (0..pages)
            .map(|k| {
                let mut p = first.clone();
                if let Some(o) = p.as_object_mut() {
                    o.insert("start".into(), json!(page_start(k)));
                }
                (format!("{tag}p{k}"), p)
            })
            .collect();
        let since_text = since.to_rfc3339_opts(chrono::SecondsFormat::Secs, false);
        Self::with_pages(
            job,
            primary,
            |c, k| c.since_params(&since_text, k),
            pages,
            tag,
        )
    }

    /// The rows with these IDs (50 per page, so at most [`MAX_IDS`]); `None` as for
    /// [`Self::plan`].
    pub fn by_ids(job: Arc<EntityJob>, ids: &[i64], tag: &str) -> Option<Self> {
        if ids.is_empty() || ids.len() > MAX_IDS {
            return None;
        }
        let chunks: Vec<&[i64]> = ids.chunks(PAGE_SIZE).collect();
        let primary = chunks
            .iter()
            .enumerate()
            .map(|(k, chunk)| {
                let mut req = job.list_request(None, false);
                req.extra_filter
                    .insert(format!("@{}", job.spec().id.filter), json!(chunk));
                (format!("{tag}p{k}"), first_page_params(job.spec(), &req))
            })
            .collect();
        let pages = chunks.len();
        Self::with_pages(
            job,
            primary,
            |c, k| Some(c.ids_params(chunks[k])),
            pages,
            tag,
        )
    }

    fn with_pages(
        job: Arc<EntityJob>,
        primary: Vec<(String, Value)>,
        companion_page: impl Fn(&CompanionJob, usize) -> Option<Value>,
        pages: usize,
        tag: &str,
    ) -> Option<Self> {
        let spec = job.spec();
        if spec.cursor.is_none()
            || spec.paging != Paging::IdChain
            || spec.filter_style == FilterStyle::Positional
        {
            return None;
        }
        let companion = match &job.companion {
            None => Vec::new(),
            Some(c) => (0..pages)
                .map(|k| Some((format!("{tag}c{k}"), companion_page(c, k)?)))
                .collect::<Option<Vec<_>>>()?,
        };
        Some(Self {
            job,
            primary,
            companion,
        })
    }

    /// Commands this plan adds to a batch.
    pub fn commands(&self) -> usize {
        self.primary.len() + self.companion.len()
    }

    pub fn push_into(&self, batch: &mut Batch) -> Result<(), BitrixError> {
        for (name, p) in &self.primary {
            batch.push(name.clone(), self.job.spec().list, p.clone())?;
        }
        if let Some(c) = &self.job.companion {
            for (name, p) in &self.companion {
                batch.push(name.clone(), c.spec().list, p.clone())?;
            }
        }
        Ok(())
    }

    /// The rows read, typed and joined, by ID. A page that failed leaves every row out
    /// ([`Read::complete`] false); a malformed answer is an error.
    pub fn take(&self, resp: &mut BatchResponse<RawResult>) -> Result<Read, PipelineError> {
        let Some(rows) = pages_rows(resp, self.job.spec(), &self.primary)? else {
            return Ok(Read::default());
        };
        let ids = primary_ids(self.job.spec(), &rows)?;
        let service = service_values(false);
        let mut read = Read {
            rows: HashMap::with_capacity(rows.len()),
            listed: ids.iter().copied().collect(),
            complete: true,
        };
        let Some(companion) = &self.job.companion else {
            for (raw, id) in rows.iter().zip(ids) {
                read.rows
                    .insert(id, self.job.normalize(raw, &service)?.cells);
            }
            return Ok(read);
        };
        let Some(other) = pages_rows(resp, companion.spec(), &self.companion)? else {
            return Ok(Read::default());
        };
        let by_id: HashMap<i64, RawRow> = other
            .into_iter()
            .filter_map(|r| Some((row_id(companion.spec(), &r)?, r)))
            .collect();
        let joined = companion.join_fetched(self.job.as_ref(), &rows, &ids, &by_id, &service)?;
        read.rows = joined.ids.into_iter().zip(joined.rows).collect();
        Ok(read)
    }
}

/// What a [`ChangedRows`] read.
#[derive(Debug, Default)]
pub struct Read {
    /// Rows read whole (joined where the entity has a companion), by ID.
    pub rows: HashMap<i64, Vec<Cell>>,
    /// IDs the primary's pages listed: those missing from `rows` changed between the two
    /// methods' pages.
    pub listed: HashSet<i64>,
    /// Every page answered.
    pub complete: bool,
}

/// Every row of these pages, or `None` if one of them failed or is missing (a halted batch).
fn pages_rows(
    resp: &mut BatchResponse<RawResult>,
    spec: &crate::bitrix::MethodSpec,
    pages: &[(String, Value)],
) -> Result<Option<Vec<RawRow>>, BitrixError> {
    let mut rows = Vec::new();
    for (name, _) in pages {
        match resp.take(name) {
            CommandOutcome::Ok(r) => rows.extend(raw_rows(spec, &r)?),
            CommandOutcome::Err(e) => {
                tracing::debug!(command = %name, error = %e, "a page of changed rows failed; its rows are fetched by ID");
                return Ok(None);
            }
            CommandOutcome::Missing => return Ok(None),
        }
    }
    Ok(Some(rows))
}
