//! Generated DDL: database, proxy endpoint, per-entity table, refreshable load and
//! reconcile views, the `_current` view and the enumeration-label dictionary.
//!
//! The incremental cursor lives in the table itself, in a **watermark row** (`ID = 0`) that
//! `serve` appends as the last row of a *complete* load: its cursor column holds the portal
//! time at which that load's listing started. A load that breaks never writes it (the stream
//! is aborted, so the INSERT fails before the end), so the next load starts from the last
//! complete one and no row can be skipped (`docs/architecture.md`, invariant 2).
use super::quote::{ident, literal, qualified};
use crate::config::{DeleteGuard, Schedule};
use crate::encode::Format;
use std::fmt::Write as _;

use crate::schema::WATERMARK_ID;

/// Where the DDL goes.
#[derive(Debug, Clone)]
pub struct Target {
    pub database: String,
    /// `ON CLUSTER` and `Replicated*MergeTree` when set.
    pub cluster: Option<String>,
}

/// How ClickHouse reaches `serve`.
#[derive(Debug, Clone)]
pub struct ProxyEndpoint {
    pub public_url: String,
    pub token: crate::config::Secret,
}

/// A column as ClickHouse sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnDef {
    pub name: String,
    pub sql_type: String,
}

/// Everything the DDL of one entity needs.
#[derive(Debug, Clone)]
pub struct TablePlan {
    pub entity: String,
    pub columns: Vec<ColumnDef>,
    pub primary_key: String,
    /// Numeric keys allow the watermark row and the reconcile safety filter.
    pub numeric_key: bool,
    /// Modification-time column for incremental loads; `None` = every load is full.
    pub cursor: Option<String>,
    pub schedule: Schedule,
    pub reconcile_schedule: Schedule,
    /// Rows loaded this recently are left for the next reconcile (see [`reconcile_view`]).
    pub reconcile_safety_ms: u64,
    /// ClickHouse's first wait before retrying a failed refresh of the entity's views.
    pub retry_backoff_ms: u64,
    /// How many rows one reconcile may tombstone before it fails instead.
    pub delete_guard: DeleteGuard,
    pub format: Format,
    /// Earlier names of columns (`old`, `new`): an existing table is migrated in place.
    pub renamed_from: Vec<(String, String)>,
}

/// One statement: the SQL to run and the text safe to show (secrets masked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub sql: String,
    pub display: String,
}

impl TablePlan {
    /// Whether complete loads append a watermark row (`ID = 0`): incremental entities only.
    /// Other entities may have a real row with key 0 (the default deal pipeline is
    /// category 0), which must not be hidden as a watermark.
    pub fn has_watermark(&self) -> bool {
        self.numeric_key && self.cursor.is_some()
    }
}

impl Statement {
    fn plain(sql: String) -> Self {
        Self {
            display: sql.clone(),
            sql,
        }
    }
}

/// Default of [`TablePlan::reconcile_safety_ms`]: rows loaded in the last minutes before a
/// reconcile are left for the next one, so a row created after the ID list was taken is never
/// tombstoned (also absorbs clock skew).
pub const RECONCILE_SAFETY_MS: u64 = 300_000;

impl Target {
    fn on_cluster(&self) -> String {
        match &self.cluster {
            Some(c) => format!(" ON CLUSTER {}", ident(c)),
            None => String::new(),
        }
    }

    fn table(&self, name: &str) -> String {
        qualified(&self.database, name)
    }

    /// Global names (named collections and functions are not per database).
    /// The named collection of one endpoint of one entity (`rows` or `ids`).
    pub fn collection_name(&self, entity: &str, endpoint: &str) -> String {
        format!("b24ch_{}_{entity}_{endpoint}", self.database)
    }

    /// Names of earlier versions (one collection with an overridable URL and a global URL
    /// function), dropped by [`proxy`].
    fn legacy_collection_name(&self) -> String {
        format!("b24ch_{}", self.database)
    }

    fn legacy_url_function(&self) -> String {
        format!("b24ch_{}_url", self.database)
    }
}

pub fn database(t: &Target) -> Statement {
    Statement::plain(format!(
        "CREATE DATABASE IF NOT EXISTS {}{}",
        ident(&t.database),
        t.on_cluster()
    ))
}

/// The proxy token stays with the views: each endpoint of each entity has its own named
/// collection whose URL and `Authorization` header are `NOT OVERRIDABLE`, so a query that may
/// use the collection cannot send the token anywhere else (or to another endpoint), and no
/// replaceable global function builds the URL. The incremental cursor travels in a header.
/// This drops what earlier versions created instead.
pub fn proxy(t: &Target, _p: &ProxyEndpoint) -> Vec<Statement> {
    vec![
        Statement::plain(format!(
            "DROP FUNCTION IF EXISTS {}{}",
            ident(&t.legacy_url_function()),
            t.on_cluster()
        )),
        Statement::plain(format!(
            "DROP NAMED COLLECTION IF EXISTS {}{}",
            ident(&t.legacy_collection_name()),
            t.on_cluster()
        )),
    ]
}

/// The header a load view sends the cursor in (unix seconds; empty = a full load).
pub const MODIFIED_SINCE_HEADER: &str = "X-B24ch-Modified-Since";

/// The named collections of one entity's endpoints (see [`proxy`]): created if missing and
/// set to the current URL and token in one `ALTER` (no moment without a collection).
pub fn endpoints(t: &Target, p: &ProxyEndpoint, plan: &TablePlan) -> Vec<Statement> {
    let rows = format!(
        "{}/v1/entities/{}/rows?format={}&schema={}",
        p.public_url,
        plan.entity,
        plan.format.clickhouse_name(),
        schema_fingerprint(&plan.columns)
    );
    let ids = format!(
        "{}/v1/entities/{}/ids?format=TabSeparated",
        p.public_url, plan.entity
    );
    let mut out = Vec::new();
    for (endpoint, url) in [("rows", rows), ("ids", ids)] {
        let coll = ident(&t.collection_name(&plan.entity, endpoint));
        let keys = |token: &str| {
            format!(
                "url = {} NOT OVERRIDABLE, `headers.header.name` = 'Authorization' NOT OVERRIDABLE, `headers.header.value` = {} NOT OVERRIDABLE",
                literal(&url),
                literal(&format!("Bearer {token}"))
            )
        };
        for verb in [
            "CREATE NAMED COLLECTION IF NOT EXISTS",
            "ALTER NAMED COLLECTION",
        ] {
            let sep = if verb.starts_with("CREATE") {
                "AS"
            } else {
                "SET"
            };
            out.push(Statement {
                sql: format!(
                    "{verb} {coll}{} {sep} {}",
                    t.on_cluster(),
                    keys(p.token.expose())
                ),
                display: format!("{verb} {coll}{} {sep} {}", t.on_cluster(), keys("***")),
            });
        }
    }
    out
}

/// The entity's table: `ReplacingMergeTree(_version, _is_deleted) ORDER BY <key>`.
pub fn table(t: &Target, plan: &TablePlan) -> Statement {
    let cols = plan
        .columns
        .iter()
        .map(|c| format!("    {} {}", ident(&c.name), c.sql_type))
        .collect::<Vec<_>>()
        .join(",\n");
    let engine = match &t.cluster {
        Some(_) => {
            "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}', _version, _is_deleted)"
        }
        None => "ReplacingMergeTree(_version, _is_deleted)",
    };
    Statement::plain(format!(
        "CREATE TABLE IF NOT EXISTS {}{}\n(\n{cols}\n)\nENGINE = {engine}\nORDER BY {}\nCOMMENT {}",
        t.table(&plan.entity),
        t.on_cluster(),
        ident(&plan.primary_key),
        literal(&format!("b24ch: Bitrix24 entity {}", plan.entity)),
    ))
}

pub fn current_view_name(entity: &str) -> String {
    format!("{entity}_current")
}

pub fn load_view_name(entity: &str) -> String {
    format!("{entity}_load")
}

pub fn reconcile_view_name(entity: &str) -> String {
    format!("{entity}_reconcile")
}

/// Latest version of every live row.
pub fn current_view(t: &Target, plan: &TablePlan) -> Statement {
    let watermark = if plan.has_watermark() {
        format!(" AND {} != {WATERMARK_ID}", ident(&plan.primary_key))
    } else {
        String::new()
    };
    Statement::plain(format!(
        "CREATE OR REPLACE VIEW {}{} AS\nSELECT * EXCEPT (_version, _is_deleted)\nFROM {} FINAL\nWHERE _is_deleted = 0{watermark}",
        t.table(&current_view_name(&plan.entity)),
        t.on_cluster(),
        t.table(&plan.entity),
    ))
}

fn structure(columns: &[ColumnDef]) -> String {
    columns
        .iter()
        .map(|c| format!("{} {}", ident(&c.name), c.sql_type))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Settings for a pull through `url()`: one try (a retry would resume a stream that must
/// fail instead), a long receive timeout because the governor may pause a method until its
/// operating budget resets (up to 10 minutes), and ordered single-threaded inserts so the
/// watermark row lands last.
const PULL_SETTINGS: &str = "SETTINGS http_max_tries = 1, http_receive_timeout = 1800, http_send_timeout = 60, max_execution_time = 0, input_format_parallel_parsing = 0, max_insert_threads = 1";

/// Refresh retries with backoff: a failed refresh is retried, not skipped until the next tick.
fn refresh_settings(plan: &TablePlan) -> String {
    format!(
        "SETTINGS refresh_retries = 10, refresh_retry_initial_backoff_ms = {}, refresh_retry_max_backoff_ms = 600000",
        plan.retry_backoff_ms
    )
}

/// `url()` over the entity's endpoint collection, with `headers` when given.
fn pull(coll: &str, headers: Option<String>, format: &str, structure: &str) -> String {
    let headers = headers
        .map(|h| format!("headers({h}), "))
        .unwrap_or_default();
    format!(
        "url({}, {headers}format = {}, structure = {})",
        ident(coll),
        literal(format),
        literal(structure),
    )
}

/// The column-set fingerprint of a table: its columns, in order, with their types. The load
/// view's URL carries it (`&schema=`) and `serve` answers only with that column set: a
/// column missing from the Parquet would be filled with its default by ClickHouse, and
/// those rows, already behind the watermark, would stay wrong. FNV-1a: the same in every
/// process and every build.
pub fn schema_fingerprint(columns: &[ColumnDef]) -> String {
    use std::hash::Hasher;
    let mut h = fnv::FnvHasher::default();
    for c in columns {
        h.write(c.name.as_bytes());
        h.write(&[0]);
        h.write(c.sql_type.as_bytes());
        h.write(&[0xff]);
    }
    format!("{:016x}", h.finish())
}

/// The cursor header of a rows pull, read from the watermark row (incremental entities).
fn cursor_header(t: &Target, plan: &TablePlan) -> Option<String> {
    match (&plan.cursor, plan.numeric_key) {
        (Some(cursor), true) => Some(format!(
            "{} = ifNull(toString(toUnixTimestamp((SELECT max({}) FROM {} WHERE {} = {WATERMARK_ID}))), '')",
            literal(MODIFIED_SINCE_HEADER),
            ident(cursor),
            t.table(&plan.entity),
            ident(&plan.primary_key),
        )),
        _ => None,
    }
}

/// A hash of the definition in the view's comment lets `apply` skip unchanged views.
fn with_fingerprint(sql: String) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    sql.hash(&mut h);
    format!(
        "{sql}\nCOMMENT {}",
        literal(&fingerprint_comment(h.finish()))
    )
}

pub fn fingerprint_comment(hash: u64) -> String {
    format!("b24ch:{hash:016x}")
}

/// The refreshable view that loads the entity on its schedule.
pub fn load_view(t: &Target, plan: &TablePlan) -> Statement {
    let mut sql = String::new();
    let _ = write!(
        sql,
        "CREATE MATERIALIZED VIEW IF NOT EXISTS {}{}\nREFRESH EVERY {} RANDOMIZE FOR 10 SECOND {}\nAPPEND TO {}\nAS SELECT *\nFROM {}\n{PULL_SETTINGS}",
        t.table(&load_view_name(&plan.entity)),
        t.on_cluster(),
        plan.schedule.sql(),
        refresh_settings(plan),
        t.table(&plan.entity),
        pull(
            &t.collection_name(&plan.entity, "rows"),
            cursor_header(t, plan),
            plan.format.clickhouse_name(),
            &structure(&plan.columns)
        ),
    );
    Statement::plain(with_fingerprint(sql))
}

/// The refreshable view that writes tombstones for IDs that vanished from the portal.
/// It compares with a complete ID list only: `serve` aborts the stream on any listing
/// error, which fails this query before anything is written (docs/architecture.md, invariant 4).
pub fn reconcile_view(t: &Target, plan: &TablePlan) -> Statement {
    let key = ident(&plan.primary_key);
    let key_type = plan
        .columns
        .iter()
        .find(|c| c.name == plan.primary_key)
        .map(|c| c.sql_type.clone())
        .unwrap_or_else(|| "Int64".to_string());
    let ids = pull(
        &t.collection_name(&plan.entity, "ids"),
        None,
        "TabSeparated",
        &format!("{key} {key_type}"),
    );
    let watermark = if plan.has_watermark() {
        format!(" AND {key} != {WATERMARK_ID}")
    } else {
        String::new()
    };
    let table = t.table(&plan.entity);
    let sql = format!(
        "CREATE MATERIALIZED VIEW IF NOT EXISTS {}{}\nREFRESH EVERY {} RANDOMIZE FOR 10 SECOND {}\nAPPEND TO {table}\nAS {}\n{PULL_SETTINGS}",
        t.table(&reconcile_view_name(&plan.entity)),
        t.on_cluster(),
        plan.reconcile_schedule.sql(),
        refresh_settings(plan),
        guarded_tombstones(
            &table,
            &plan.entity,
            &key,
            &watermark,
            &format!(
                "_version < toUInt64(toUnixTimestamp64Milli(now64(3))) - {}{watermark}\n  AND {key} NOT IN (SELECT {key} FROM {ids})",
                plan.reconcile_safety_ms
            ),
            plan.delete_guard,
        ),
    );
    Statement::plain(with_fingerprint(sql))
}

/// [`tombstones`] for the keys matching `condition`, refused (the query throws, so the
/// refresh fails and nothing is written) when the guard forbids that many. The keys are
/// collected once into a scalar (the ID list is fetched once) and counted before any
/// tombstone is written; scalars are constants, so the refusal can name the counts.
fn guarded_tombstones(
    table: &str,
    entity: &str,
    key: &str,
    watermark: &str,
    condition: &str,
    guard: DeleteGuard,
) -> String {
    let gone = "_b24ch_gone";
    let live = "_b24ch_live";
    let check = match guard {
        DeleteGuard::Off => String::new(),
        DeleteGuard::Limit { percent, rows } => {
            let n = format!("length({gone})");
            format!(
                "\nWHERE throwIf({n} > 0 AND ({n} >= {live} OR ({n} > {rows} AND {n} * 100 > {percent} * {live})), concat({}, toString({n}), ' of ', toString({live}), {})) = 0",
                literal(DeleteGuard::REFUSAL_HEAD),
                literal(&guard.refusal_tail(entity)),
            )
        }
    };
    format!(
        "WITH\n  (SELECT groupArray({key}) FROM {table} FINAL WHERE _is_deleted = 0 AND {condition}) AS {gone},\n  (SELECT count() FROM {table} FINAL WHERE _is_deleted = 0{watermark}) AS {live}\nSELECT * FROM ({}){check}",
        tombstones(table, &format!("{key} IN {gone}"))
    )
}

/// Tombstones for the live rows of `table` matching `condition` (a newer version with
/// `_is_deleted = 1` that keeps the last known values). The filter runs in a subquery:
/// in the outer query the `REPLACE` aliases would shadow `_is_deleted` and `_version`.
pub fn tombstones(table: &str, condition: &str) -> String {
    let condition = if condition.trim().is_empty() {
        String::new()
    } else {
        format!(" AND {condition}")
    };
    format!(
        "SELECT * REPLACE (\n    now64(3, 'UTC') AS dt_inserted,\n    greatest(toUInt64(toUnixTimestamp64Milli(now64(3))), _version + 1) AS _version,\n    toUInt8(1) AS _is_deleted)\nFROM (SELECT * FROM {table} FINAL WHERE _is_deleted = 0{condition})"
    )
}

/// Every statement for one entity, in dependency order (the load view refreshes as soon as
/// it is created, so the table and proxy must exist first).
pub fn entity(t: &Target, plan: &TablePlan) -> Vec<Statement> {
    vec![
        table(t, plan),
        current_view(t, plan),
        load_view(t, plan),
        reconcile_view(t, plan),
    ]
}

/// `ALTER TABLE … ADD COLUMN` for columns the table lacks.
pub fn add_columns(t: &Target, entity: &str, columns: &[ColumnDef]) -> Option<Statement> {
    if columns.is_empty() {
        return None;
    }
    let adds = columns
        .iter()
        .map(|c| format!("ADD COLUMN IF NOT EXISTS {} {}", ident(&c.name), c.sql_type))
        .collect::<Vec<_>>()
        .join(", ");
    Some(Statement::plain(format!(
        "ALTER TABLE {}{} {adds}",
        t.table(entity),
        t.on_cluster()
    )))
}

/// `ALTER TABLE … RENAME COLUMN` for columns that had another name (data and the cursor kept).
pub fn rename_columns(t: &Target, entity: &str, renames: &[(String, String)]) -> Option<Statement> {
    if renames.is_empty() {
        return None;
    }
    let parts = renames
        .iter()
        .map(|(old, new)| format!("RENAME COLUMN {} TO {}", ident(old), ident(new)))
        .collect::<Vec<_>>()
        .join(", ");
    Some(Statement::plain(format!(
        "ALTER TABLE {}{} {parts}",
        t.table(entity),
        t.on_cluster()
    )))
}

/// Deletes the watermark rows, so the next load of the entity is a full one.
pub fn reset_cursor(t: &Target, plan: &TablePlan) -> Statement {
    Statement::plain(format!(
        "ALTER TABLE {}{} DELETE WHERE {} = {WATERMARK_ID} SETTINGS mutations_sync = 2",
        t.table(&plan.entity),
        t.on_cluster(),
        ident(&plan.primary_key)
    ))
}

pub fn drop_view(t: &Target, name: &str) -> Statement {
    Statement::plain(format!(
        "DROP VIEW IF EXISTS {}{}",
        t.table(name),
        t.on_cluster()
    ))
}

/// Marks a table whose entity left the portal; its data is kept.
pub fn mark_removed(t: &Target, entity: &str, when: &str) -> Statement {
    Statement::plain(format!(
        "ALTER TABLE {}{} MODIFY COMMENT {}",
        t.table(entity),
        t.on_cluster(),
        literal(&format!(
            "b24ch: entity {entity} was removed from the portal ({when}); data kept, no longer loaded"
        ))
    ))
}

pub const ENUM_LABELS_TABLE: &str = "enum_labels";
pub const ENUM_LABELS_DICT: &str = "enum_labels_dict";

/// The enumeration-label table (`dictGet` reads it through [`enum_labels_dictionary`]).
pub fn enum_labels_table(t: &Target) -> Statement {
    let engine = match &t.cluster {
        Some(_) => {
            "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}', _version)"
        }
        None => "ReplacingMergeTree(_version)",
    };
    Statement::plain(format!(
        "CREATE TABLE IF NOT EXISTS {}{}\n(\n    entity LowCardinality(String),\n    field LowCardinality(String),\n    id UInt64,\n    label String,\n    _version UInt64\n)\nENGINE = {engine}\nORDER BY (entity, field, id)",
        t.table(ENUM_LABELS_TABLE),
        t.on_cluster()
    ))
}

/// The user the label dictionary reads as: no password (so none is written into the
/// dictionary's DDL), able to log in only from this host (`HOST LOCAL`: the dictionary's query
/// runs inside the server, as a local login), read-only (`readonly = 1`, not changeable), and
/// allowed `SELECT` on the label table alone.
pub fn dictionary_user(t: &Target, user: &str) -> Vec<Statement> {
    vec![
        Statement::plain(format!(
            "CREATE USER IF NOT EXISTS {}{} IDENTIFIED WITH no_password HOST LOCAL SETTINGS readonly = 1 CONST",
            ident(user),
            t.on_cluster()
        )),
        Statement::plain(format!(
            "GRANT{} SELECT ON {} TO {}",
            t.on_cluster(),
            t.table(ENUM_LABELS_TABLE),
            ident(user)
        )),
    ]
}

/// The label dictionary, reading the table as `user` ([`dictionary_user`]), with no password
/// in its DDL. `OR REPLACE`: a dictionary of an older b24ch (which read as b24ch's own user,
/// its password in the DDL) is replaced, not kept.
pub fn enum_labels_dictionary(t: &Target, user: &str) -> Statement {
    Statement::plain(format!(
        "CREATE OR REPLACE DICTIONARY {}{}\n(\n    entity String,\n    field String,\n    id UInt64,\n    label String\n)\nPRIMARY KEY entity, field, id\nSOURCE(CLICKHOUSE(QUERY {} USER {}))\nLAYOUT(COMPLEX_KEY_HASHED())\nLIFETIME(MIN 60 MAX 300)",
        t.table(ENUM_LABELS_DICT),
        t.on_cluster(),
        literal(&format!(
            "SELECT entity, field, id, label FROM {} FINAL",
            t.table(ENUM_LABELS_TABLE)
        )),
        literal(user),
    ))
}
