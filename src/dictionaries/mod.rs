//! Reference data for ClickHouse dictionaries: users, departments, stages (`crm_status`),
//! pipelines, currencies, enumeration labels — any entity, in fact, keyed by its primary key
//! (or by the columns given with `--key`).
//!
//! Two ways to ask:
//! - **all rows** (layouts loaded whole: `HASHED`, `COMPLEX_KEY_HASHED`, …), optionally only
//!   those modified since a time (the `update_field` protocol of ClickHouse's HTTP source);
//! - **only some keys** (`CACHE`, `COMPLEX_KEY_CACHE`): ClickHouse writes the keys it misses to
//!   stdin (executable source) or POSTs them (HTTP source); b24ch lists just those rows with
//!   an `@KEY` (IN) filter — one HTTP request for up to 2,500 keys.
//!
//! Rows are the entity's table columns (service columns left out) in JSONEachRow — the
//! dictionary takes the attributes it declares and ClickHouse skips the others — or the
//! `--columns` given, in that order, for TabSeparated. The pseudo-entity `enum_labels` gives
//! `entity, field, id, label` for every enumeration option of the catalog.
//!
//! One module for both ways ClickHouse reads a dictionary: `b24ch exec dict` (executable
//! source, `crate::exec::dict`) and `serve`'s `/v1/dictionaries/{name}` (HTTP source,
//! `crate::serve`). It depends on neither.
//!
//! A source follows the entity's `enabled` setting (`[entities.<name>] enabled = false`, and
//! `[entities.enum_labels]` for the labels, which also leave out the disabled entities'
//! options): a disabled source is refused ([`DictError::Disabled`]), never read.
mod since;

pub use since::{parse_offset, parse_since};

use crate::bitrix::{self, BitrixError, Client, ListRequest};
use crate::catalog::{Catalog, Entity};
use crate::clickhouse::plan::selected_columns;
use crate::config::Config;
use crate::encode::tsv;
use crate::pipeline::PipelineError;
use crate::pipeline::{self, EntityJob};
use crate::schema::{Cell, Column, RowNormalizer, ServiceValues, primary_key_column};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};
use serde_json::{Map, Value, json};
use std::collections::HashSet;
use std::sync::Arc;

/// Errors of a dictionary source.
#[derive(Debug, thiserror::Error)]
pub enum DictError {
    /// Bad arguments or input keys (the caller's mistake).
    #[error("{0}")]
    BadInput(String),
    /// The source is switched off in the config.
    #[error("{0}")]
    Disabled(String),
    /// The portal refuses the entity (`Catalog::unavailable`): the portal's words, what to do.
    #[error("b24ch: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Bitrix(#[from] BitrixError),
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error(transparent)]
    Encode(#[from] crate::encode::EncodeError),
    #[error("b24ch: {0}")]
    Other(String),
}

/// The entity named `name`; the portal's words for one it refuses; or an error naming every
/// entity there is.
pub fn find_entity<'a>(catalog: &'a Catalog, name: &str) -> Result<&'a Entity, DictError> {
    if let Some(u) = catalog.unavailable(name) {
        return Err(DictError::Unavailable(u.explain()));
    }
    catalog.entity(name).ok_or_else(|| {
        let known: Vec<&str> = catalog.entities.iter().map(|e| e.name.as_str()).collect();
        DictError::BadInput(format!(
            "b24ch: unknown entity {:?}; known entities: {}",
            name.chars().take(64).collect::<String>(),
            known.join(", ")
        ))
    })
}

/// Refuses a source switched off in the config.
fn check_enabled(config: &Config, name: &str) -> Result<(), DictError> {
    if config.entity(name).enabled {
        return Ok(());
    }
    Err(DictError::Disabled(format!(
        "b24ch: dictionary source {name} is disabled in the config ([entities.{name}] enabled = false, or [entities.default] enabled = false); enable it there to read it"
    )))
}

/// The pseudo-entity of enumeration labels.
pub const ENUM_LABELS: &str = "enum_labels";
/// Keys per listing in keyed mode (the IN filter stays a reasonable size).
const KEYS_PER_LISTING: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DictFormat {
    JsonEachRow,
    TabSeparated,
}

impl DictFormat {
    pub fn parse(name: &str) -> Result<Self, DictError> {
        if name.eq_ignore_ascii_case("JSONEachRow") {
            Ok(Self::JsonEachRow)
        } else if name.eq_ignore_ascii_case("TabSeparated") || name.eq_ignore_ascii_case("TSV") {
            Ok(Self::TabSeparated)
        } else {
            Err(DictError::BadInput(format!(
                "b24ch: dictionary format {name:?} is not supported; use JSONEachRow or TabSeparated"
            )))
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::JsonEachRow => "application/x-ndjson",
            Self::TabSeparated => "text/tab-separated-values",
        }
    }
}

/// What a dictionary source is made of.
pub enum DictSource {
    Entity {
        entity: Entity,
        /// Every column of the table (without service columns).
        columns: Vec<Column>,
    },
    EnumLabels(Catalog),
}

impl DictSource {
    /// The source named `name` in `catalog`.
    pub fn resolve(catalog: &Catalog, config: &Config, name: &str) -> Result<Self, DictError> {
        if name == ENUM_LABELS {
            check_enabled(config, name)?;
            // Labels of disabled entities are not served either.
            let mut catalog = catalog.clone();
            catalog.entities.retain(|e| config.entity(&e.name).enabled);
            return Ok(Self::EnumLabels(catalog));
        }
        let entity = find_entity(catalog, name)?.clone();
        check_enabled(config, &entity.name)?;
        let columns = selected_columns(&entity, &config.entity(&entity.name))
            .into_iter()
            .filter(|c| c.service().is_none())
            .collect();
        Ok(Self::Entity { entity, columns })
    }

    fn column_names(&self) -> Vec<String> {
        match self {
            Self::Entity { columns, .. } => columns.iter().map(|c| c.name.clone()).collect(),
            Self::EnumLabels(_) => ["entity", "field", "id", "label"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }

    /// The key columns when none are given: the primary key (`entity, field, id` for labels).
    pub fn default_key(&self) -> Vec<String> {
        match self {
            Self::Entity { columns, .. } => primary_key_column(columns)
                .map(|c| vec![c.name.clone()])
                .unwrap_or_default(),
            Self::EnumLabels(_) => vec!["entity".into(), "field".into(), "id".into()],
        }
    }
}

/// One request for dictionary rows.
#[derive(Debug, Clone)]
pub struct DictRequest {
    pub format: DictFormat,
    /// Output columns (empty: all of them).
    pub columns: Vec<String>,
    /// Key columns (empty: the primary key).
    pub key: Vec<String>,
    /// Only these keys (text forms, in `key` order); `None` = all rows.
    pub keys: Option<Vec<Vec<String>>>,
    pub since: Option<DateTime<Utc>>,
}

/// The text form of a key value, as compared between ClickHouse's keys and portal rows.
fn key_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Parses the keys ClickHouse sends (a block in the dictionary's format, key columns named
/// as in the dictionary).
pub fn parse_keys(
    input: &str,
    format: DictFormat,
    key: &[String],
) -> Result<Vec<Vec<String>>, DictError> {
    let mut out = Vec::new();
    for (n, line) in input.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let tuple = match format {
            DictFormat::TabSeparated => {
                let fields = tsv::split_row(line);
                if fields.len() < key.len() {
                    return Err(DictError::BadInput(format!(
                        "b24ch: key row {} has {} fields, the key has {}",
                        n + 1,
                        fields.len(),
                        key.len()
                    )));
                }
                fields.into_iter().take(key.len()).collect()
            }
            DictFormat::JsonEachRow => {
                let obj: Map<String, Value> = serde_json::from_str(line).map_err(|e| {
                    DictError::BadInput(format!(
                        "b24ch: key row {} is not a JSON object: {e}",
                        n + 1
                    ))
                })?;
                key.iter()
                    .map(|k| {
                        obj.get(k).map(key_text).ok_or_else(|| {
                            DictError::BadInput(format!(
                                "b24ch: key row {} lacks the key column {k:?} (declare it with --key)",
                                n + 1
                            ))
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?
            }
        };
        out.push(tuple);
    }
    Ok(out)
}

/// Resolved output shape.
struct Shape {
    /// Indices into the source's columns.
    out: Vec<usize>,
    names: Vec<String>,
    /// Indices of the key columns.
    key: Vec<usize>,
}

fn shape(source: &DictSource, req: &DictRequest) -> Result<Shape, DictError> {
    let all = source.column_names();
    let find = |name: &String| {
        all.iter().position(|c| c == name).ok_or_else(|| {
            DictError::BadInput(format!(
                "b24ch: the source has no column {name:?}; it has: {}",
                all.join(", ")
            ))
        })
    };
    let out: Vec<usize> = if req.columns.is_empty() {
        if req.format == DictFormat::TabSeparated {
            return Err(DictError::BadInput(
                "b24ch: TabSeparated dictionary rows need the column list (--columns / columns=) in the dictionary's order"
                    .into(),
            ));
        }
        (0..all.len()).collect()
    } else {
        req.columns.iter().map(find).collect::<Result<_, _>>()?
    };
    let key_names = if req.key.is_empty() {
        source.default_key()
    } else {
        req.key.clone()
    };
    if key_names.is_empty() {
        return Err(DictError::BadInput(
            "b24ch: the source has no key column".into(),
        ));
    }
    let key = key_names.iter().map(find).collect::<Result<_, _>>()?;
    Ok(Shape {
        names: out.iter().map(|i| all[*i].clone()).collect(),
        out,
        key,
    })
}

/// Dictionary rows as bytes in the requested format, page by page.
pub fn rows(
    client: Arc<Client>,
    source: DictSource,
    req: DictRequest,
) -> impl Stream<Item = Result<Bytes, DictError>> {
    async_stream::try_stream! {
        let shape = shape(&source, &req)?;
        match source {
            DictSource::EnumLabels(catalog) => {
                let wanted: Option<HashSet<Vec<String>>> = req.keys.clone().map(|k| k.into_iter().collect());
                // One chunk per entity: the whole label set is never held as one buffer.
                for e in &catalog.entities {
                    let mut lines = String::new();
                    for f in &e.fields {
                        for o in &f.options {
                            let row = vec![json!(e.name), json!(f.code), json!(o.id), json!(o.value)];
                            if let Some(w) = &wanted {
                                let k: Vec<String> = shape.key.iter().map(|i| key_text(&row[*i])).collect();
                                if !w.contains(&k) {
                                    continue;
                                }
                            }
                            lines.push_str(&render_values(&shape, &row, req.format)?);
                        }
                    }
                    if !lines.is_empty() {
                        yield Bytes::from(lines);
                    }
                }
            }
            DictSource::Entity { entity, columns } => {
                let json_columns: Vec<Column> = shape.out.iter().map(|i| columns[*i].clone()).collect();
                let mut encoder = crate::encode::JsonEachRowEncoder::new(&json_columns);
                match &req.keys {
                    None => {
                        let job = Arc::new(EntityJob::new(entity, columns.clone())?);
                        let pages = pipeline::typed_rows(client, job, req.since, pipeline::extract::DEFAULT_LOOKBACK);
                        futures::pin_mut!(pages);
                        while let Some(page) = pages.next().await {
                            let page = page?;
                            if page.watermark.is_some() {
                                continue;
                            }
                            let rows: Vec<Vec<Cell>> = page.rows.into_iter().map(|r| project(r, &shape.out)).collect();
                            yield encode(&mut encoder, &rows, req.format)?;
                        }
                    }
                    Some(keys) => {
                        let normalizer = normalizer(&entity, &columns)?;
                        for chunk in keys.chunks(KEYS_PER_LISTING) {
                            let wanted: HashSet<&Vec<String>> = chunk.iter().collect();
                            let list = keyed_request(&entity, &columns, &shape.key, chunk);
                            let pages = bitrix::list(client.clone(), list);
                            futures::pin_mut!(pages);
                            while let Some(page) = pages.next().await {
                                let page = page?;
                                let mut rows = Vec::new();
                                for raw in &page.rows {
                                    let k: Vec<String> = shape.key.iter().map(|i| {
                                        columns[*i].api_name().and_then(|a| raw.get(a)).as_ref().map(key_text).unwrap_or_default()
                                    }).collect();
                                    if !wanted.contains(&k) {
                                        continue;
                                    }
                                    let n = normalizer
                                        .normalize_json(raw.json(), &ServiceValues::default())
                                        .map_err(|e| DictError::Other(format!("row is not a JSON object: {e}")))?;
                                    rows.push(project(n.cells, &shape.out));
                                }
                                yield encode(&mut encoder, &rows, req.format)?;
                            }
                        }
                    }
                }
            }
        }
    }
}

fn normalizer(entity: &Entity, columns: &[Column]) -> Result<RowNormalizer, DictError> {
    let spec = bitrix::spec(&entity.method).ok_or_else(|| {
        DictError::Other(format!(
            "entity {} uses unknown method key `{}`",
            entity.name, entity.method
        ))
    })?;
    Ok(RowNormalizer::new(columns, spec.value_style, &entity.name))
}

/// A listing of just the rows with these keys: one `@FIELD` (IN) filter per key column.
fn keyed_request(
    entity: &Entity,
    columns: &[Column],
    key: &[usize],
    keys: &[Vec<String>],
) -> ListRequest {
    // Methods whose row keys are derived from the codes filter and select by code.
    let spec = crate::bitrix::spec(&entity.method);
    let name = |c: &Column| -> Option<String> {
        let api = c.api_name()?;
        let code = entity
            .fields
            .iter()
            .find(|f| f.api_name == api)
            .map_or(api, |f| &f.code);
        Some(spec.map_or(api, |s| s.select_name(code, api)).to_string())
    };
    let mut filter = Map::new();
    for (pos, i) in key.iter().enumerate() {
        let Some(api) = name(&columns[*i]) else {
            continue;
        };
        let mut values: Vec<&String> = keys.iter().filter_map(|k| k.get(pos)).collect();
        values.sort();
        values.dedup();
        filter.insert(format!("@{api}"), json!(values));
    }
    let mut select: Vec<String> = Vec::new();
    for c in columns {
        if let Some(api) = name(c)
            && !select.contains(&api)
        {
            select.push(api);
        }
    }
    ListRequest {
        method_key: entity.method.clone(),
        entity_type_id: entity.entity_type_id,
        select,
        modified_since: None,
        ids_only: false,
        extra_filter: filter,
        known_owners: None,
    }
}

fn project(row: Vec<Cell>, out: &[usize]) -> Vec<Cell> {
    let mut row: Vec<Option<Cell>> = row.into_iter().map(Some).collect();
    out.iter()
        .map(|i| row.get_mut(*i).and_then(Option::take).unwrap_or(Cell::Null))
        .collect()
}

fn encode(
    encoder: &mut crate::encode::JsonEachRowEncoder,
    rows: &[Vec<Cell>],
    format: DictFormat,
) -> Result<Bytes, DictError> {
    let json = encoder.write_rows(rows)?;
    if format == DictFormat::JsonEachRow {
        return Ok(json);
    }
    // TabSeparated from the JSON text forms (scalars only).
    let mut out = String::new();
    for line in json.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let obj: Map<String, Value> = serde_json::from_slice(line)
            .map_err(|e| DictError::Other(format!("internal JSON row: {e}")))?;
        let values: Vec<Value> = obj.into_iter().map(|(_, v)| v).collect();
        out.push_str(&tsv_line(&values)?);
    }
    Ok(Bytes::from(out))
}

fn render_values(shape: &Shape, row: &[Value], format: DictFormat) -> Result<String, DictError> {
    let values: Vec<Value> = shape.out.iter().map(|i| row[*i].clone()).collect();
    match format {
        DictFormat::TabSeparated => tsv_line(&values),
        DictFormat::JsonEachRow => {
            let obj: Map<String, Value> = shape.names.iter().cloned().zip(values).collect();
            Ok(format!("{}\n", Value::Object(obj)))
        }
    }
}

fn tsv_line(values: &[Value]) -> Result<String, DictError> {
    let mut out = String::new();
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push('\t');
        }
        match v {
            Value::Null => out.push_str("\\N"),
            Value::String(s) => tsv::escape(s, &mut out),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Number(n) => out.push_str(&n.to_string()),
            Value::Array(_) | Value::Object(_) => {
                return Err(DictError::BadInput(
                    "b24ch: an array or tuple column cannot be a TabSeparated dictionary attribute; use JSONEachRow or leave the column out"
                        .into(),
                ));
            }
        }
    }
    out.push('\n');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_read_in_both_formats() {
        let key = vec!["ENTITY_ID".to_string(), "STATUS_ID".to_string()];
        let j = parse_keys(
            "{\"ENTITY_ID\":\"DEAL_STAGE\",\"STATUS_ID\":\"NEW\"}\n{\"STATUS_ID\":\"WON\",\"ENTITY_ID\":\"DEAL_STAGE\"}\n",
            DictFormat::JsonEachRow,
            &key,
        )
        .unwrap();
        assert_eq!(
            j,
            vec![vec!["DEAL_STAGE", "NEW"], vec!["DEAL_STAGE", "WON"]]
        );
        let ids = parse_keys("5\n7\n", DictFormat::TabSeparated, &["ID".to_string()]).unwrap();
        assert_eq!(ids, vec![vec!["5"], vec!["7"]]);
        let n = parse_keys("{\"ID\":5}\n", DictFormat::JsonEachRow, &["ID".to_string()]).unwrap();
        assert_eq!(n, vec![vec!["5"]]);
        assert!(parse_keys("{\"X\":5}\n", DictFormat::JsonEachRow, &["ID".to_string()]).is_err());
    }

    #[test]
    fn tsv_rows_escape_and_refuse_arrays() {
        assert_eq!(
            tsv_line(&[json!(1), json!("a\tb"), Value::Null, json!(true)]).unwrap(),
            "1\ta\\tb\t\\N\ttrue\n"
        );
        assert!(tsv_line(&[json!([1])]).is_err());
    }
}
