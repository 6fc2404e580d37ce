//! Columns read with an entity's companion method, joined to the primary rows by ID.
//!
//! For every batch of primary pages, one `batch` asks the companion for the same IDs
//! (`@ID` filter, 50 per command, `start=-1`: no COUNT). Both rows carry the modification
//! stamp; a row whose stamps differ changed between the two reads, and a row the companion no
//! longer has was deleted or changed: such rows are read again (both methods) once, and if they
//! are still in flux they are left out of this load. That never loses them: they were modified
//! after the load's first page, so the next incremental load (which starts at the watermark
//! taken then, minus the lookback) reads them. A row is never emitted torn (half old, half new).
use super::error::PipelineError;
use crate::bitrix::batch::{Batch, CommandOutcome, MAX_COMMANDS};
use crate::bitrix::governor::{BATCH_KEY, Evidence, Request, command_kind};
use crate::bitrix::listing::{PAGE_SIZE, raw_rows, row_id};
use crate::bitrix::{self, BitrixError, Client, MethodSpec, RawRow};
use crate::catalog::Entity;
use crate::schema::{
    Cell, Column, ColumnSource, NormalizeIssue, NormalizedRow, RowNormalizer, ServiceColumn,
    ServiceValues, cursor_column,
};
use serde_json::{Map, Value, json};
use std::collections::HashMap;

/// The primary method's side of a join: its method and how one of its rows is normalised.
pub(super) trait PrimaryRows: Sync {
    fn spec(&self) -> &'static MethodSpec;
    fn normalize(
        &self,
        raw: &RawRow,
        service: &ServiceValues,
    ) -> Result<NormalizedRow, PipelineError>;
}

/// Attempts for companion commands failing with a retryable error inside a batch.
const MAX_ATTEMPTS: u32 = 8;

/// How one entity's companion is read and joined.
#[derive(Debug)]
pub(super) struct CompanionJob {
    spec: &'static MethodSpec,
    entity_type_id: Option<u32>,
    select: Vec<String>,
    normalizer: RowNormalizer,
    /// (index in the entity's columns, index in the companion's normalised cells).
    targets: Vec<(usize, usize)>,
    /// The modification stamp: (entity column index, companion cell index).
    stamp: Option<(usize, usize)>,
    /// `_invalid`: (entity column index, companion cell index).
    invalid: Option<(usize, usize)>,
}

/// Rows of one group of primary pages after the join.
#[derive(Debug, Default)]
pub(super) struct Joined {
    pub rows: Vec<Vec<Cell>>,
    pub issues: Vec<NormalizeIssue>,
    /// The ID of each row of `rows`.
    pub ids: Vec<i64>,
    /// IDs whose two reads disagreed (changed or deleted in between).
    pub unsettled: Vec<i64>,
}

impl CompanionJob {
    /// The companion plan of `entity`, if its catalog entry names one.
    pub(super) fn new(entity: &Entity, columns: &[Column]) -> Result<Option<Self>, PipelineError> {
        let Some(c) = &entity.companion else {
            return Ok(None);
        };
        let spec = bitrix::spec(&c.method).ok_or_else(|| PipelineError::UnknownMethod {
            entity: entity.name.clone(),
            method: c.method.clone(),
        })?;
        let api_names: Vec<&str> = c
            .fields
            .iter()
            .filter_map(|code| entity.field(code).map(|f| f.api_name.as_str()))
            .collect();
        let mut comp_columns: Vec<Column> = Vec::new();
        let mut targets = Vec::new();
        for (i, col) in columns.iter().enumerate() {
            if col.api_name().is_some_and(|a| api_names.contains(&a)) {
                targets.push((i, comp_columns.len()));
                comp_columns.push(col.clone());
            }
        }
        // A field selection (config `fields`) may leave nothing for the companion to read.
        if targets.is_empty() {
            return Ok(None);
        }
        let stamp = cursor_column(columns).zip(spec.cursor).map(|(cur, sc)| {
            let i = columns.iter().position(|x| x.name == cur.name).unwrap_or(0);
            let mut col = cur.clone();
            col.source = ColumnSource::Field {
                api_name: sc.row.to_string(),
                part: crate::schema::ValuePart::Whole,
            };
            comp_columns.push(col);
            (i, comp_columns.len() - 1)
        });
        let invalid = columns
            .iter()
            .position(|x| x.service() == Some(ServiceColumn::Invalid))
            .map(|i| {
                comp_columns.push(columns[i].clone());
                (i, comp_columns.len() - 1)
            });
        let mut select = vec![spec.id.filter.to_string()];
        select.extend(spec.cursor.map(|sc| sc.filter.to_string()));
        for a in &api_names {
            if !select.iter().any(|s| s == a) {
                select.push(a.to_string());
            }
        }
        Ok(Some(CompanionJob {
            spec,
            entity_type_id: c.entity_type_id,
            select,
            normalizer: RowNormalizer::new(&comp_columns, spec.value_style, &entity.name),
            targets,
            stamp,
            invalid,
        }))
    }

    /// Whether the entity column `i` is read with the companion (left out of the primary select).
    pub(super) fn fills(&self, i: usize) -> bool {
        self.targets.iter().any(|(t, _)| *t == i)
    }

    /// Normalises the primary rows and joins the companion's columns for the same IDs, read
    /// with plain calls if `plain_calls` (`bitrix::Page::companion_plain`) or where that pays.
    pub(super) async fn join(
        &self,
        client: &Client,
        job: &dyn PrimaryRows,
        rows: &[RawRow],
        service: &ServiceValues,
        plain_calls: bool,
    ) -> Result<Joined, PipelineError> {
        let ids = primary_ids(job.spec(), rows)?;
        let companion = self.fetch(client, &ids, plain_calls).await?;
        self.join_fetched(job, rows, &ids, &companion, service)
    }

    /// Joins primary rows (with their `ids`) to companion rows already read.
    pub(super) fn join_fetched(
        &self,
        job: &dyn PrimaryRows,
        rows: &[RawRow],
        ids: &[i64],
        companion: &HashMap<i64, RawRow>,
        service: &ServiceValues,
    ) -> Result<Joined, PipelineError> {
        let mut out = Joined::default();
        for (raw, &id) in rows.iter().zip(ids) {
            let mut main = job.normalize(raw, service)?;
            let Some(other) = companion.get(&id) else {
                out.unsettled.push(id);
                continue;
            };
            let other = self
                .normalizer
                .normalize_json(other.json(), service)
                .map_err(|e| malformed(self.spec, &format!("a row is not a JSON object: {e}")))?;
            if let Some((m, c)) = self.stamp
                && main.cells.get(m) != other.cells.get(c)
            {
                out.unsettled.push(id);
                continue;
            }
            let mut cells = other.cells;
            for &(m, c) in &self.targets {
                main.cells[m] = std::mem::replace(&mut cells[c], Cell::Null);
            }
            if let Some((m, c)) = self.invalid
                && let (Cell::Map(extra), Some(Cell::Map(into))) = (
                    std::mem::replace(&mut cells[c], Cell::Null),
                    main.cells.get_mut(m),
                )
            {
                into.extend(extra);
            }
            out.issues.extend(main.issues);
            out.issues.extend(other.issues);
            out.rows.push(main.cells);
            out.ids.push(id);
        }
        Ok(out)
    }

    /// The companion method.
    pub(super) fn spec(&self) -> &'static MethodSpec {
        self.spec
    }

    /// Parameters of the companion's page `k` (50 rows, by ID) of the rows modified at or
    /// after `since`: the same rows as the primary's page `k` under the same filter.
    pub(super) fn since_params(&self, since: &str, k: usize) -> Option<Value> {
        let cursor = self.spec.cursor?;
        let mut p = self.base_params();
        p.insert(
            "filter".into(),
            json!({ format!(">={}", cursor.filter): since }),
        );
        p.insert("order".into(), json!({ self.spec.id.filter: "ASC" }));
        p.insert("start".into(), json!(page_start(k)));
        Some(Value::Object(p))
    }

    /// The companion's rows for `ids`, by ID: 50 IDs per command, in batches of up to 50
    /// commands, or in plain calls where asked or where that pays (see
    /// [`Self::plain_calls_pay`]).
    async fn fetch(
        &self,
        client: &Client,
        ids: &[i64],
        plain_calls: bool,
    ) -> Result<HashMap<i64, RawRow>, BitrixError> {
        let mut found = HashMap::with_capacity(ids.len());
        for part in ids.chunks(PAGE_SIZE * MAX_COMMANDS) {
            let rows = if plain_calls || self.plain_calls_pay(client, part) {
                self.fetch_plain(client, part).await?
            } else {
                self.fetch_batched(client, part).await?
            };
            found.extend(rows);
        }
        Ok(found)
    }

    /// Whether these IDs are read with plain calls. The portal may bill whole batches to the
    /// `batch` key while a plain call is billed to its own method (learned from its figures),
    /// a second budget — but a plain call carries 50 IDs of the bucket's requests where a
    /// batch carries 2,500. So plain calls go where the batch would pause for its key, or
    /// where the bucket has the requests to spare and the `batch` key is past half its
    /// budget or carries more than the companion's own key (a listing read from both ends
    /// keeps the bucket busy, and then batches go: `bitrix::both_ends`).
    fn plain_calls_pay(&self, client: &Client, ids: &[i64]) -> bool {
        let gov = client.governor();
        if gov.billing().batch_key != Evidence::Yes {
            return false;
        }
        let commands = ids.len().div_ceil(PAGE_SIZE);
        let kind = command_kind(self.spec.list, &self.ids_params(&ids[..ids.len().min(1)]));
        if gov.would_pause(&Request::batch(
            (0..commands).map(|_| (self.spec.list, kind.as_str())),
        )) {
            return true;
        }
        let spare = gov
            .bucket_free()
            .is_none_or(|free| free >= commands as f64 + SPARE_REQUESTS);
        let busy = gov
            .headroom(BATCH_KEY)
            .is_some_and(|free| free < BATCH_KEY_BUSY);
        spare && (busy || gov.batch_key_ahead_of(self.spec.list))
    }

    /// One plain call per 50 IDs (the client retries each).
    async fn fetch_plain(
        &self,
        client: &Client,
        ids: &[i64],
    ) -> Result<HashMap<i64, RawRow>, BitrixError> {
        let mut found = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(PAGE_SIZE) {
            let r = client
                .call_raw(self.spec.list, &self.ids_params(chunk))
                .await?;
            for row in raw_rows(self.spec, &r)? {
                if let Some(id) = row_id(self.spec, &row) {
                    found.insert(id, row);
                }
            }
        }
        Ok(found)
    }

    /// Batches of 50 IDs per command, each sized to the operating budget's room left
    /// (`Governor::batch_room`: a shorter batch now beats a full one after the window turns),
    /// retrying commands that failed with a retryable error.
    async fn fetch_batched(
        &self,
        client: &Client,
        ids: &[i64],
    ) -> Result<HashMap<i64, RawRow>, BitrixError> {
        let mut pending: Vec<&[i64]> = ids.chunks(PAGE_SIZE).collect();
        let mut found = HashMap::with_capacity(ids.len());
        let mut attempt = 0;
        let kind = command_kind(self.spec.list, &self.ids_params(&ids[..ids.len().min(1)]));
        while !pending.is_empty() {
            let room = client.governor().batch_room(pending.len(), |n| {
                Request::batch((0..n).map(|_| (self.spec.list, kind.as_str())))
            });
            let later = pending.split_off(room.min(pending.len()));
            let mut batch = Batch::new();
            for (k, chunk) in pending.iter().enumerate() {
                batch.push(format!("c{k}"), self.spec.list, self.ids_params(chunk))?;
            }
            let mut resp = client.batch_raw(&batch).await?;
            let mut failed = Vec::new();
            let mut last_error = None;
            for (k, chunk) in pending.iter().enumerate() {
                match resp.take(&format!("c{k}")) {
                    CommandOutcome::Ok(r) => {
                        for row in raw_rows(self.spec, &r)? {
                            if let Some(id) = row_id(self.spec, &row) {
                                found.insert(id, row);
                            }
                        }
                    }
                    CommandOutcome::Err(e) if e.is_retryable() => {
                        failed.push(*chunk);
                        last_error = Some(e);
                    }
                    CommandOutcome::Err(e) => return Err(e),
                    CommandOutcome::Missing => failed.push(*chunk),
                }
            }
            if !failed.is_empty() {
                attempt += 1;
                if attempt >= MAX_ATTEMPTS {
                    let last = last_error.unwrap_or_else(|| {
                        malformed(self.spec, "the batch answer lacks companion commands")
                    });
                    return Err(BitrixError::RetriesExhausted {
                        method: self.spec.list.to_string(),
                        attempts: attempt,
                        last: Box::new(last),
                    });
                }
                client.governor().on_retry();
                client.governor().backoff(attempt).await;
            }
            pending = failed;
            pending.extend(later);
        }
        Ok(found)
    }

    fn base_params(&self) -> Map<String, Value> {
        let mut p = Map::new();
        if let Some(eid) = self
            .entity_type_id
            .filter(|_| self.spec.needs_entity_type_id)
        {
            p.insert("entityTypeId".into(), json!(eid));
        }
        p.insert("select".into(), json!(self.select));
        p
    }

    /// Parameters of one page: the rows with these IDs (at most 50).
    pub(super) fn ids_params(&self, ids: &[i64]) -> Value {
        let mut p = self.base_params();
        p.insert(
            "filter".into(),
            json!({ format!("@{}", self.spec.id.filter): ids }),
        );
        // No COUNT: the answer has at most 50 rows anyway.
        p.insert("start".into(), json!(-1));
        Value::Object(p)
    }
}

/// Each row's ID once; a malformed page is refused before the companion is asked.
pub(super) fn primary_ids(spec: &MethodSpec, rows: &[RawRow]) -> Result<Vec<i64>, BitrixError> {
    rows.iter()
        .map(|r| row_id(spec, r).ok_or_else(|| malformed(spec, "a row has no numeric ID")))
        .collect()
}

/// `start` of page `k` of an offset listing: `-1` (no COUNT) for the first.
pub(super) fn page_start(k: usize) -> i64 {
    if k == 0 { -1 } else { (k * PAGE_SIZE) as i64 }
}

/// Below this share of the `batch` key's budget left, companion reads may move to plain calls.
const BATCH_KEY_BUSY: f64 = 0.5;
/// Requests the bucket keeps free beyond a plain read's own (never enough to make a batch
/// behind it wait).
const SPARE_REQUESTS: f64 = 10.0;

fn malformed(spec: &MethodSpec, message: &str) -> BitrixError {
    BitrixError::Malformed {
        method: spec.list.to_string(),
        status: 200,
        message: message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bitrix::{AuthConfig, ClientConfig, Governor, GovernorConfig, ListRequest};
    use crate::pipeline::EntityJob;
    use crate::schema::table_columns;
    use bitrix24_emulator::{self as demo_portal, PortalConfig};
    use futures::StreamExt;
    use std::sync::Arc;

    async fn setup() -> (demo_portal::RunningPortal, Arc<Client>, EntityJob) {
        let portal = demo_portal::start(PortalConfig::default(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let cfg = ClientConfig::new(AuthConfig::Webhook {
            url: crate::config::Secret::new(portal.webhook_url()),
        });
        let client = Arc::new(Client::new(cfg, Governor::new(GovernorConfig::standard())).unwrap());
        let catalog = crate::catalog::discover(&client).await.unwrap();
        let entity = catalog.entity("crm_deal").unwrap().clone();
        let job = EntityJob::new(entity.clone(), table_columns(&entity)).unwrap();
        (portal, client, job)
    }

    /// Every deal as crm.item.list returns it (all fields).
    async fn primary_rows(client: &Arc<Client>) -> Vec<RawRow> {
        let req = ListRequest {
            method_key: "crm.item".into(),
            entity_type_id: Some(2),
            ..Default::default()
        };
        let pages: Vec<_> = bitrix::list(client.clone(), req).collect().await;
        pages.into_iter().flat_map(|p| p.unwrap().rows).collect()
    }

    fn cell<'a>(job: &EntityJob, row: &'a [Cell], column: &str) -> &'a Cell {
        let i = job.columns.iter().position(|c| c.name == column).unwrap();
        &row[i]
    }

    #[tokio::test]
    async fn rows_changed_between_the_two_reads_are_never_emitted_torn() {
        let (portal, client, job) = setup().await;
        let companion = job.companion.clone().unwrap();
        assert!(companion.spec.list == "crm.deal.list");
        let rows = primary_rows(&client).await;
        let total = rows.len();
        // A user edits deals 5 and 77 and deletes deal 9 after the primary read.
        let c = portal.control();
        let mut set = Map::new();
        set.insert("TITLE".into(), json!("edited meanwhile"));
        let later = c.now() as i64 + 100;
        c.modify_rows("deal", &[5, 77], &set, Some(later)).unwrap();
        c.delete_rows("deal", &[9]).unwrap();

        let service = crate::schema::ServiceValues {
            loaded_at_ms: 0,
            version: 1,
            is_deleted: false,
        };
        let joined = companion
            .join(&client, &job, &rows, &service, false)
            .await
            .unwrap();
        assert_eq!(joined.unsettled, [5, 9, 77]);
        assert_eq!(joined.rows.len(), total - 3);
        // Columns from both methods are filled: the legacy-only field and the title (moved to
        // crm.deal.list) next to crm.item's contact list.
        let truth = c.ground_truth("deal").unwrap();
        let first = &joined.rows[0];
        assert_eq!(
            cell(&job, first, "TITLE"),
            &Cell::Str(truth[0]["TITLE"].as_str().unwrap().to_string())
        );
        assert!(job.entity.from_companion("ADDITIONAL_INFO"));
        assert!(!job.entity.from_companion("CONTACT_IDS"));
        let with_contacts = joined
            .rows
            .iter()
            .filter(|r| matches!(cell(&job, r, "CONTACT_IDS"), Cell::Array(a) if !a.is_empty()))
            .count();
        assert!(with_contacts > 0, "contact lists come from crm.item");

        // The whole step: unsettled rows are read again; the edited ones now agree, the
        // deleted one is gone.
        let page = super::super::extract::joined_page(&client, &job, &companion, &rows, false)
            .await
            .unwrap();
        assert_eq!(page.rows.len(), total - 1);
        let id5 = page
            .rows
            .iter()
            .find(|r| matches!(r[0], Cell::Int(5) | Cell::UInt(5)))
            .unwrap();
        assert_eq!(
            cell(&job, id5, "TITLE"),
            &Cell::Str("edited meanwhile".into())
        );
        portal.shutdown().await;
    }
}
