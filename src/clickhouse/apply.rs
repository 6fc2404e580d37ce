//! `apply`: converge the ClickHouse schema to the portal's catalog (idempotent).
//!
//! New entity → table + views; new field → `ADD COLUMN` and the load view recreated with it;
//! entity gone → its views dropped, its table kept and marked; entity the portal refuses for
//! now (`Catalog::unavailable`) → nothing created, an existing table and views left as they
//! are; changed field type → reported, and the entity's load view dropped so nothing is ever
//! cast silently.
use super::ddl::{self, ColumnDef, ProxyEndpoint, Statement, TablePlan, Target};
use super::history;
use super::plan::{selected_columns, table_plan};
use super::quote::literal;
use super::{ClickHouseError, Connection};
use crate::catalog::Catalog;
use crate::config::{Config, DictionaryUser};
use crate::encode::Format;
use serde::Serialize;
use std::collections::BTreeMap;

/// What `apply` did; printed by the CLI and kept for the meta endpoint.
#[derive(Debug, Default, Clone, Serialize)]
pub struct ApplyReport {
    pub created_tables: Vec<String>,
    pub added_columns: Vec<String>,
    /// `entity.OLD → NEW`: columns renamed in place (data and cursor kept).
    pub renamed_columns: Vec<String>,
    pub recreated_views: Vec<String>,
    pub removed_entities: Vec<String>,
    /// Columns whose type changed in the portal: never cast silently; needs a decision.
    pub type_conflicts: Vec<String>,
    /// Columns whose field left the portal (deleted, or hidden by a rights change): later
    /// rows would silently get NULL, so the entity's loads are paused; needs a decision.
    pub vanished_fields: Vec<String>,
    /// Entities whose convergence failed (`entity: error`); the others were still applied.
    pub failed_entities: Vec<String>,
    /// Why the `enum_labels` dictionary could not be set up (its read-only user could not be
    /// created); the labels are still written to the `enum_labels` table.
    pub dictionary_skipped: Option<String>,
    pub enum_options: usize,
    pub statements: usize,
}

impl ApplyReport {
    pub fn changes(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut push = |list: &Vec<String>, what: &str| {
            for item in list {
                let entity = item.split('.').next().unwrap_or(item).to_string();
                out.push((entity, format!("{what}: {item}")));
            }
        };
        push(&self.created_tables, "table created");
        push(&self.added_columns, "column added");
        push(&self.renamed_columns, "column renamed");
        push(&self.recreated_views, "view recreated");
        push(
            &self.removed_entities,
            "entity removed from the portal, data kept",
        );
        push(&self.type_conflicts, "field type changed, loads paused");
        push(
            &self.vanished_fields,
            "field gone from the portal (deleted or hidden by a rights change), loads paused",
        );
        push(&self.failed_entities, "apply failed");
        if let Some(why) = &self.dictionary_skipped {
            out.push((
                ddl::ENUM_LABELS_TABLE.to_string(),
                format!("dictionary {} not created: {why}", ddl::ENUM_LABELS_DICT),
            ));
        }
        out
    }

    /// Entities whose loads are paused until someone decides (type change, vanished field).
    pub fn paused_entities(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .type_conflicts
            .iter()
            .chain(&self.vanished_fields)
            .filter_map(|c| c.split('.').next().map(str::to_string))
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// The problems that need a person, as one sentence each (empty = none).
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.type_conflicts.is_empty() {
            out.push(format!(
                "{} field type change(s) need a decision (loads of those entities are paused): {}",
                self.type_conflicts.len(),
                self.type_conflicts.join("; ")
            ));
        }
        if !self.vanished_fields.is_empty() {
            out.push(format!(
                "{} column(s) lost their field in the portal (deleted, or hidden from the webhook user by a rights change); loads of those entities are paused so later rows do not silently get NULL: {}. Restore the field or the rights, or keep the column's data and accept NULL from now on with `ALTER TABLE <table> COMMENT COLUMN <column> '{RETIRED}'` (or drop the column), then run apply again",
                self.vanished_fields.len(),
                self.vanished_fields.join(", ")
            ));
        }
        if !self.failed_entities.is_empty() {
            out.push(format!(
                "apply failed for {} entit(ies), the others were applied: {}",
                self.failed_entities.len(),
                self.failed_entities.join("; ")
            ));
        }
        out
    }
}

/// Column comment that marks a column whose field left the portal on purpose: no longer
/// loaded (NULL from then on), data kept, loads not paused for it.
pub const RETIRED: &str = "b24ch: retired";

pub fn target(config: &Config) -> Target {
    Target {
        database: config.clickhouse.database.clone(),
        cluster: config.clickhouse.cluster.clone(),
    }
}

pub fn endpoint(config: &Config) -> ProxyEndpoint {
    ProxyEndpoint {
        public_url: config.proxy.public_url.clone(),
        token: config.proxy.token.clone(),
    }
}

/// The plans of every enabled entity.
pub fn plans(config: &Config, catalog: &Catalog, format: Format) -> Vec<TablePlan> {
    catalog
        .entities
        .iter()
        .filter_map(|e| {
            let settings = config.entity(&e.name);
            settings.enabled.then(|| {
                let columns = selected_columns(e, &settings);
                table_plan(e, &columns, &settings, format)
            })
        })
        .collect()
}

/// The whole script for an empty database (what `b24ch sql` prints).
pub fn script(config: &Config, catalog: &Catalog, format: Format) -> Vec<Statement> {
    let t = target(config);
    let mut out = base_statements(config, &t);
    let p = endpoint(config);
    for plan in plans(config, catalog, format) {
        out.extend(ddl::endpoints(&t, &p, &plan));
        out.extend(entity_statements(
            &t,
            &plan,
            config.entity(&plan.entity).history_ttl,
        ));
    }
    out
}

/// A new entity's statements: its table, then its history and feed (so the first load is
/// recorded), then the views (the load view refreshes as soon as it exists).
pub fn entity_statements(
    t: &Target,
    plan: &TablePlan,
    ttl: Option<crate::config::Schedule>,
) -> Vec<Statement> {
    let mut all = ddl::entity(t, plan).into_iter();
    let mut out: Vec<Statement> = all.next().into_iter().collect();
    out.extend(history::create(t, plan, ttl));
    out.extend(all);
    out
}

fn base_statements(config: &Config, t: &Target) -> Vec<Statement> {
    let mut out = vec![ddl::database(t)];
    out.extend(ddl::proxy(t, &endpoint(config)));
    out.push(ddl::enum_labels_table(t));
    let (user, dictionary) = dictionary_statements(config, t);
    out.extend(user);
    out.push(dictionary);
    out
}

/// The label dictionary's read-only user (when b24ch creates it), and the dictionary.
fn dictionary_statements(config: &Config, t: &Target) -> (Vec<Statement>, Statement) {
    let user = &config.clickhouse.dictionary_user;
    let create = match user {
        DictionaryUser::Create(name) => ddl::dictionary_user(t, name),
        DictionaryUser::Existing(_) => Vec::new(),
    };
    (create, ddl::enum_labels_dictionary(t, user.name()))
}

/// Sets up the label dictionary. A ClickHouse where b24ch's user cannot create users (no
/// `access_management`, or no writable access storage) keeps the labels in their table and
/// gets no dictionary — never one that reads with b24ch's own password in its DDL.
async fn apply_dictionary(
    conn: &Connection,
    config: &Config,
    t: &Target,
    report: &mut ApplyReport,
) -> Result<(), ClickHouseError> {
    let (user, dictionary) = dictionary_statements(config, t);
    for s in &user {
        if let Err(e) = run(conn, s, report).await {
            let why = format!(
                "b24ch cannot create its read-only user {} ({e}); grant b24ch's ClickHouse user access management, or create a passwordless user that logs in only from the server's host, with readonly = 1 and SELECT on {}.{} alone, and name it in clickhouse.dictionary_user",
                config.clickhouse.dictionary_user.name(),
                t.database,
                ddl::ENUM_LABELS_TABLE
            );
            tracing::warn!("enum_labels dictionary not created: {why}");
            report.dictionary_skipped = Some(why);
            return Ok(());
        }
    }
    run(conn, &dictionary, report).await
}

/// Who moves the rows: ClickHouse pulling from `serve` (refreshable views), or b24ch
/// pushing with `sync` (tables and current views only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Pull,
    Push,
}

/// Converges ClickHouse to the catalog for the pull path.
pub async fn apply(
    conn: &Connection,
    config: &Config,
    catalog: &Catalog,
    format: Format,
) -> Result<ApplyReport, ClickHouseError> {
    apply_mode(conn, config, catalog, format, Mode::Pull).await
}

/// Converges ClickHouse to the catalog.
pub async fn apply_mode(
    conn: &Connection,
    config: &Config,
    catalog: &Catalog,
    format: Format,
    mode: Mode,
) -> Result<ApplyReport, ClickHouseError> {
    let t = target(config);
    let mut report = ApplyReport::default();
    let mut base = vec![ddl::database(&t)];
    if mode == Mode::Pull {
        base.extend(ddl::proxy(&t, &endpoint(config)));
    }
    base.push(ddl::enum_labels_table(&t));
    for s in base {
        run(conn, &s, &mut report).await?;
    }
    apply_dictionary(conn, config, &t, &mut report).await?;
    let existing = existing_entities(conn, &t).await?;
    let plans = plans(config, catalog, format);
    for plan in &plans {
        let known: Vec<String> = catalog
            .entity(&plan.entity)
            .map(|e| {
                crate::schema::table_columns(e)
                    .into_iter()
                    .map(|c| c.name)
                    .collect()
            })
            .unwrap_or_default();
        let converged = converge_entity(
            conn,
            config,
            plan,
            &known,
            existing.contains_key(&plan.entity),
            mode,
            &mut report,
        )
        .await;
        // One failing entity must not stop the others.
        if let Err(e) = converged {
            tracing::error!(entity = %plan.entity, error = %e, "apply failed for this entity; continuing with the others");
            report.failed_entities.push(format!("{}: {e}", plan.entity));
        }
    }
    for (entity, comment) in &existing {
        let gone = !plans.iter().any(|p| &p.entity == entity);
        // An entity the portal refuses for now keeps its table and views as they are: its
        // data stays queryable, and its load fails with the portal's words until it is back.
        let refused = catalog.unavailable(entity).is_some();
        if refused && gone {
            tracing::warn!(%entity, "unavailable on the portal; existing table and views left as they are");
        }
        if gone && !refused && !comment.contains("was removed") {
            remove_entity(conn, &t, entity, &mut report).await?;
        }
    }
    report.enum_options = write_enum_labels(conn, &t, catalog).await?;
    Ok(report)
}

async fn run(
    conn: &Connection,
    s: &Statement,
    report: &mut ApplyReport,
) -> Result<(), ClickHouseError> {
    tracing::debug!(sql = %s.display, "apply");
    report.statements += 1;
    conn.execute(&s.sql).await
}

/// b24ch's entity tables in the database, with their comments.
async fn existing_entities(
    conn: &Connection,
    t: &Target,
) -> Result<BTreeMap<String, String>, ClickHouseError> {
    let rows = conn
        .pairs(&format!(
            "SELECT name, comment FROM system.tables WHERE database = {} AND comment LIKE 'b24ch: %entity%'",
            literal(&t.database)
        ))
        .await?;
    Ok(rows.into_iter().collect())
}

async fn existing_columns(
    conn: &Connection,
    t: &Target,
    table: &str,
) -> Result<Vec<(String, String)>, ClickHouseError> {
    conn.pairs(&format!(
        "SELECT name, type FROM system.columns WHERE database = {} AND table = {} ORDER BY position",
        literal(&t.database),
        literal(table)
    ))
    .await
}

/// The fingerprint comment of an existing view, if any.
async fn view_comment(
    conn: &Connection,
    t: &Target,
    view: &str,
) -> Result<Option<String>, ClickHouseError> {
    let rows = conn
        .pairs(&format!(
            "SELECT name, comment FROM system.tables WHERE database = {} AND name = {}",
            literal(&t.database),
            literal(view)
        ))
        .await?;
    Ok(rows.into_iter().next().map(|(_, c)| c))
}

fn fingerprint_of(sql: &str) -> Option<&str> {
    sql.rsplit("COMMENT '").next()?.strip_suffix('\'')
}

/// Columns of `table` marked [`RETIRED`].
async fn retired_columns(
    conn: &Connection,
    t: &Target,
    table: &str,
) -> Result<Vec<String>, ClickHouseError> {
    Ok(conn
        .pairs(&format!(
            "SELECT name, '' FROM system.columns WHERE database = {} AND table = {} AND comment = {}",
            literal(&t.database),
            literal(table),
            literal(RETIRED)
        ))
        .await?
        .into_iter()
        .map(|(n, _)| n)
        .collect())
}

/// `known`: every column the portal's catalog gives the entity (selected or not).
async fn converge_entity(
    conn: &Connection,
    config: &Config,
    plan: &TablePlan,
    known: &[String],
    exists: bool,
    mode: Mode,
    report: &mut ApplyReport,
) -> Result<(), ClickHouseError> {
    let (t, proxy) = (&target(config), &endpoint(config));
    let ttl = config.entity(&plan.entity).history_ttl;
    if !exists {
        let stmts = match mode {
            Mode::Pull => {
                let mut s = ddl::endpoints(t, proxy, plan);
                s.extend(entity_statements(t, plan, ttl));
                s
            }
            Mode::Push => {
                let mut s = vec![ddl::table(t, plan)];
                s.extend(history::create(t, plan, ttl));
                s.push(ddl::current_view(t, plan));
                s
            }
        };
        for s in stmts {
            run(conn, &s, report).await?;
        }
        report.created_tables.push(plan.entity.clone());
        return Ok(());
    }
    let mut have = existing_columns(conn, t, &plan.entity).await?;
    if rename_columns(conn, t, plan, &have, mode, report).await? {
        have = existing_columns(conn, t, &plan.entity).await?;
    }
    // The history after the renames (its feed selects the table's columns by name) and before
    // new columns: it must have every column before the entity's table gets it.
    converge_history(conn, t, plan, ttl, report).await?;
    let (missing, conflicts) = compare_columns(&plan.columns, &have);
    let retired = retired_columns(conn, t, &plan.entity).await?;
    let vanished: Vec<String> = have
        .iter()
        .map(|(n, _)| n)
        .filter(|n| !known.contains(n) && !plan.columns.iter().any(|c| &c.name == *n))
        .filter(|n| !retired.contains(n))
        .cloned()
        .collect();
    if !vanished.is_empty() {
        for c in &vanished {
            tracing::error!(entity = %plan.entity, column = %c, "field gone from the portal (deleted or hidden by a rights change); loads of this entity are paused until resolved");
        }
        report
            .vanished_fields
            .extend(vanished.iter().map(|c| format!("{}.{c}", plan.entity)));
        run(
            conn,
            &ddl::drop_view(t, &ddl::load_view_name(&plan.entity)),
            report,
        )
        .await?;
        return Ok(());
    }
    if !conflicts.is_empty() {
        for c in &conflicts {
            tracing::error!(entity = %plan.entity, conflict = %c, "field type changed in the portal; loads of this entity are paused until resolved");
        }
        report
            .type_conflicts
            .extend(conflicts.iter().map(|c| format!("{}.{c}", plan.entity)));
        run(
            conn,
            &ddl::drop_view(t, &ddl::load_view_name(&plan.entity)),
            report,
        )
        .await?;
        return Ok(());
    }
    if let Some(s) = ddl::add_columns(t, &plan.entity, &missing) {
        run(conn, &s, report).await?;
        report.added_columns.extend(
            missing
                .iter()
                .map(|c| format!("{}.{}", plan.entity, c.name)),
        );
        if plan.has_watermark() {
            // Rows already loaded lack the new columns, and an incremental load only brings
            // rows modified since: the next load must be full. The old load view goes first
            // so no refresh of it can append a watermark after the reset.
            let load = ddl::load_view_name(&plan.entity);
            if mode == Mode::Pull && view_comment(conn, t, &load).await?.is_some() {
                run(conn, &ddl::drop_view(t, &load), report).await?;
                report.recreated_views.push(load);
            }
            run(conn, &ddl::reset_cursor(t, plan), report).await?;
        }
    }
    run(conn, &ddl::current_view(t, plan), report).await?;
    if mode == Mode::Push {
        return Ok(());
    }
    // Before the views: a recreated load view refreshes at once, with the new column set.
    for s in ddl::endpoints(t, proxy, plan) {
        run(conn, &s, report).await?;
    }
    for (name, stmt) in [
        (ddl::load_view_name(&plan.entity), ddl::load_view(t, plan)),
        (
            ddl::reconcile_view_name(&plan.entity),
            ddl::reconcile_view(t, plan),
        ),
    ] {
        let current = view_comment(conn, t, &name).await?;
        let wanted = fingerprint_of(&stmt.sql).map(str::to_string);
        if current.is_none() || current != wanted {
            if current.is_some() {
                run(conn, &ddl::drop_view(t, &name), report).await?;
                report.recreated_views.push(name.clone());
            }
            run(conn, &stmt, report).await?;
        }
    }
    Ok(())
}

/// Brings `<entity>_history` of an existing entity in line with the plan: created (with the
/// feed view, then filled from the versions the table still holds) when missing, renamed and
/// new columns applied before the entity's table gets them, TTL as configured, and the
/// as-of view recreated.
async fn converge_history(
    conn: &Connection,
    t: &Target,
    plan: &TablePlan,
    ttl: Option<crate::config::Schedule>,
    report: &mut ApplyReport,
) -> Result<(), ClickHouseError> {
    let name = history::history_table_name(&plan.entity);
    let engine = conn
        .pairs(&format!(
            "SELECT engine_full, '' FROM system.tables WHERE database = {} AND name = {}",
            literal(&t.database),
            literal(&name)
        ))
        .await?;
    let Some((engine, _)) = engine.into_iter().next() else {
        run(conn, &history::table(t, plan, ttl), report).await?;
        run(conn, &history::feed(t, plan), report).await?;
        run(conn, &history::backfill(t, plan), report).await?;
        run(conn, &history::as_of(t, plan), report).await?;
        report.created_tables.push(name);
        return Ok(());
    };
    let have = existing_columns(conn, t, &name).await?;
    let has = |n: &str| have.iter().any(|(c, _)| c == n);
    let renames: Vec<(String, String)> = plan
        .renamed_from
        .iter()
        .filter(|(old, new)| has(old) && !has(new))
        .cloned()
        .collect();
    if let Some(s) = ddl::rename_columns(t, &name, &renames) {
        run(conn, &s, report).await?;
    }
    let have = existing_columns(conn, t, &name).await?;
    if let Some(s) = ddl::add_columns(t, &name, &history::missing(plan, &have)) {
        run(conn, &s, report).await?;
    }
    let in_force = match history::ttl_marker(ttl) {
        Some(m) => engine.contains(&m),
        None => !engine.contains(" TTL "),
    };
    if !in_force {
        run(conn, &history::set_ttl(t, &plan.entity, ttl), report).await?;
    }
    run(conn, &history::feed(t, plan), report).await?;
    run(conn, &history::as_of(t, plan), report).await
}

/// Renames columns the table still has under an earlier name; `true` if any was renamed.
/// The load view goes first (it inserts by the old names) and is recreated afterwards; the
/// watermark row keeps its cursor value, so the next load stays incremental.
async fn rename_columns(
    conn: &Connection,
    t: &Target,
    plan: &TablePlan,
    have: &[(String, String)],
    mode: Mode,
    report: &mut ApplyReport,
) -> Result<bool, ClickHouseError> {
    let has = |n: &str| have.iter().any(|(c, _)| c == n);
    let renames: Vec<(String, String)> = plan
        .renamed_from
        .iter()
        .filter(|(old, new)| has(old) && !has(new))
        .cloned()
        .collect();
    let Some(stmt) = ddl::rename_columns(t, &plan.entity, &renames) else {
        return Ok(false);
    };
    let load = ddl::load_view_name(&plan.entity);
    if mode == Mode::Pull && view_comment(conn, t, &load).await?.is_some() {
        run(conn, &ddl::drop_view(t, &load), report).await?;
        report.recreated_views.push(load);
    }
    run(conn, &stmt, report).await?;
    for (old, new) in &renames {
        tracing::info!(entity = %plan.entity, %old, %new, "column renamed to the portal's own code");
        report
            .renamed_columns
            .push(format!("{}.{old} → {new}", plan.entity));
    }
    Ok(true)
}

/// Columns the table lacks, and columns whose type differs (`name: old → new`).
fn compare_columns(
    wanted: &[ColumnDef],
    have: &[(String, String)],
) -> (Vec<ColumnDef>, Vec<String>) {
    let mut missing = Vec::new();
    let mut conflicts = Vec::new();
    for c in wanted {
        match have.iter().find(|(n, _)| *n == c.name) {
            None => missing.push(c.clone()),
            Some((_, ty)) if normalise_type(ty) != normalise_type(&c.sql_type) => {
                conflicts.push(format!("{}: {} → {}", c.name, ty, c.sql_type))
            }
            Some(_) => {}
        }
    }
    (missing, conflicts)
}

/// ClickHouse prints types without the spaces we may write (`Decimal(18, 2)`).
fn normalise_type(t: &str) -> String {
    t.chars().filter(|c| !c.is_whitespace()).collect()
}

async fn remove_entity(
    conn: &Connection,
    t: &Target,
    entity: &str,
    report: &mut ApplyReport,
) -> Result<(), ClickHouseError> {
    for view in [
        ddl::load_view_name(entity),
        ddl::reconcile_view_name(entity),
    ] {
        run(conn, &ddl::drop_view(t, &view), report).await?;
    }
    let when = chrono::Utc::now()
        .format("%Y-%m-%d %H:%M:%S UTC")
        .to_string();
    run(conn, &ddl::mark_removed(t, entity, &when), report).await?;
    report.removed_entities.push(entity.to_string());
    Ok(())
}

/// Upserts every enumeration option's label (ReplacingMergeTree keeps the latest).
async fn write_enum_labels(
    conn: &Connection,
    t: &Target,
    catalog: &Catalog,
) -> Result<usize, ClickHouseError> {
    let version = crate::schema::now_ms();
    let mut values = Vec::new();
    for e in &catalog.entities {
        for f in &e.fields {
            for o in &f.options {
                values.push(format!(
                    "({}, {}, {}, {}, {version})",
                    literal(&e.name),
                    literal(&f.code),
                    o.id,
                    literal(&o.value)
                ));
            }
        }
    }
    if values.is_empty() {
        return Ok(0);
    }
    for chunk in values.chunks(5000) {
        conn.execute(&format!(
            "INSERT INTO {} (entity, field, id, label, _version) VALUES {}",
            super::quote::qualified(&t.database, ddl::ENUM_LABELS_TABLE),
            chunk.join(", ")
        ))
        .await?;
    }
    Ok(values.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(n: &str, t: &str) -> ColumnDef {
        ColumnDef {
            name: n.into(),
            sql_type: t.into(),
        }
    }

    #[test]
    fn compare_finds_missing_and_changed_columns() {
        let wanted = [
            c("ID", "Int64"),
            c("AMOUNT", "Decimal(18, 2)"),
            c("UF_NEW", "Array(UInt64)"),
            c("UF_T", "Nullable(UInt64)"),
        ];
        let have = [
            ("ID".to_string(), "Int64".to_string()),
            ("AMOUNT".to_string(), "Decimal(18,2)".to_string()),
            ("UF_T".to_string(), "Nullable(String)".to_string()),
        ];
        let (missing, conflicts) = compare_columns(&wanted, &have);
        assert_eq!(missing, vec![c("UF_NEW", "Array(UInt64)")]);
        assert_eq!(conflicts, vec!["UF_T: Nullable(String) → Nullable(UInt64)"]);
    }

    #[test]
    fn fingerprint_is_read_from_the_comment() {
        assert_eq!(
            fingerprint_of("CREATE ... AS SELECT 1\nCOMMENT 'b24ch:00ff'"),
            Some("b24ch:00ff")
        );
    }
}
