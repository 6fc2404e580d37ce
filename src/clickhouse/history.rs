//! Every version kept: `<entity>_history`, fed from the entity's table by a plain
//! materialized view, and `<entity>_as_of(ts)`, a parameterized view of each row as b24ch
//! knew it at `ts`.
//!
//! The entity's table is a `ReplacingMergeTree`: merges forget old versions, so "what did
//! the pipeline look like on 1 March" cannot be answered from it. Every insert into it (loads,
//! event-driven fetches, tombstones) also lands in the history through the feed view, which
//! selects `*`: a column added to both tables flows on without recreating the view. The
//! history gets a new column before the entity's table does (see `apply`), so no insert
//! carries a column the history lacks.
use super::ddl::{ColumnDef, Statement, TablePlan, Target};
use super::quote::{ident, literal, qualified};
use crate::config::Schedule;
use crate::schema::WATERMARK_ID;

pub fn history_table_name(entity: &str) -> String {
    format!("{entity}_history")
}

pub fn feed_view_name(entity: &str) -> String {
    format!("{entity}_history_feed")
}

pub fn as_of_view_name(entity: &str) -> String {
    format!("{entity}_as_of")
}

fn on_cluster(t: &Target) -> String {
    match &t.cluster {
        Some(c) => format!(" ON CLUSTER {}", ident(c)),
        None => String::new(),
    }
}

/// Watermark rows (`ID = 0`) record loads, not versions of a row: they stay out.
fn not_watermark(plan: &TablePlan) -> Option<String> {
    plan.has_watermark()
        .then(|| format!("{} != {WATERMARK_ID}", ident(&plan.primary_key)))
}

/// The TTL clause for `ttl` (`None` = versions are kept forever).
pub fn ttl_clause(ttl: Option<Schedule>) -> Option<String> {
    ttl.map(|s| format!("toDateTime(dt_inserted) + INTERVAL {}", s.sql()))
}

/// `MergeTree` partitioned by month of load, ordered by key and version (the as-of lookup
/// reads one key's versions together). The comment does not say "entity": `apply` finds the
/// entity tables by that word.
pub fn table(t: &Target, plan: &TablePlan, ttl: Option<Schedule>) -> Statement {
    let cols = plan
        .columns
        .iter()
        .map(|c| format!("    {} {}", ident(&c.name), c.sql_type))
        .collect::<Vec<_>>()
        .join(",\n");
    let engine = match &t.cluster {
        Some(_) => {
            "ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')"
        }
        None => "MergeTree",
    };
    let ttl = ttl_clause(ttl)
        .map(|c| format!("\nTTL {c}"))
        .unwrap_or_default();
    plain(format!(
        "CREATE TABLE IF NOT EXISTS {}{}\n(\n{cols}\n)\nENGINE = {engine}\nPARTITION BY toYYYYMM(dt_inserted)\nORDER BY ({}, _version){ttl}\nCOMMENT {}",
        qualified(&t.database, &history_table_name(&plan.entity)),
        on_cluster(t),
        ident(&plan.primary_key),
        literal(&format!(
            "b24ch: every version of {} ever loaded",
            plan.entity
        )),
    ))
}

/// The plain materialized view that copies every insert into the entity's table.
pub fn feed(t: &Target, plan: &TablePlan) -> Statement {
    let filter = not_watermark(plan)
        .map(|w| format!("\nWHERE {w}"))
        .unwrap_or_default();
    plain(format!(
        "CREATE MATERIALIZED VIEW IF NOT EXISTS {}{} TO {}\nAS SELECT *\nFROM {}{filter}",
        qualified(&t.database, &feed_view_name(&plan.entity)),
        on_cluster(t),
        qualified(&t.database, &history_table_name(&plan.entity)),
        qualified(&t.database, &plan.entity),
    ))
}

/// Copies the versions the entity's table still holds into a new history (those merges have
/// not yet collapsed). Run after [`feed`] exists: a row inserted in between lands twice,
/// which the as-of view ignores (same key and version).
pub fn backfill(t: &Target, plan: &TablePlan) -> Statement {
    let filter = not_watermark(plan)
        .map(|w| format!(" WHERE {w}"))
        .unwrap_or_default();
    plain(format!(
        "INSERT INTO {} SELECT * FROM {}{filter}",
        qualified(&t.database, &history_table_name(&plan.entity)),
        qualified(&t.database, &plan.entity),
    ))
}

/// `SELECT * FROM <entity>_as_of(ts = '2026-03-01 00:00:00')`: each row's latest version
/// loaded at or before `ts` (UTC), deleted rows left out. Versions are ordered as the
/// entity's `ReplacingMergeTree` orders them (`_version`), ties by load time.
pub fn as_of(t: &Target, plan: &TablePlan) -> Statement {
    let key = ident(&plan.primary_key);
    plain(format!(
        "CREATE OR REPLACE VIEW {}{} AS\nSELECT * EXCEPT (_version, _is_deleted)\nFROM\n(\n    SELECT *\n    FROM {}\n    WHERE dt_inserted <= {{ts:DateTime64(3, 'UTC')}}\n    ORDER BY {key} ASC, _version DESC, dt_inserted DESC\n    LIMIT 1 BY {key}\n)\nWHERE _is_deleted = 0",
        qualified(&t.database, &as_of_view_name(&plan.entity)),
        on_cluster(t),
        qualified(&t.database, &history_table_name(&plan.entity)),
    ))
}

/// Everything for a new entity, after its table: history, feed, as-of view.
pub fn create(t: &Target, plan: &TablePlan, ttl: Option<Schedule>) -> Vec<Statement> {
    vec![table(t, plan, ttl), feed(t, plan), as_of(t, plan)]
}

/// `ALTER TABLE <history> MODIFY TTL …` or `REMOVE TTL`.
pub fn set_ttl(t: &Target, entity: &str, ttl: Option<Schedule>) -> Statement {
    let what = match ttl_clause(ttl) {
        Some(c) => format!("MODIFY TTL {c}"),
        None => "REMOVE TTL".to_string(),
    };
    plain(format!(
        "ALTER TABLE {}{} {what}",
        qualified(&t.database, &history_table_name(entity)),
        on_cluster(t)
    ))
}

/// How ClickHouse prints the TTL of [`ttl_clause`] in `system.tables.engine_full`
/// (`toIntervalDay(365)`), to tell whether the configured TTL is in force.
pub fn ttl_marker(ttl: Option<Schedule>) -> Option<String> {
    use crate::config::TimeUnit as U;
    ttl.map(|s| {
        let unit = match s.unit {
            U::Second => "Second",
            U::Minute => "Minute",
            U::Hour => "Hour",
            U::Day => "Day",
            U::Week => "Week",
        };
        format!("toIntervalDay({})", s.count).replace("Day", unit)
    })
}

/// The columns of `plan` the history lacks.
pub fn missing(plan: &TablePlan, have: &[(String, String)]) -> Vec<ColumnDef> {
    plan.columns
        .iter()
        .filter(|c| !have.iter().any(|(n, _)| *n == c.name))
        .cloned()
        .collect()
}

fn plain(sql: String) -> Statement {
    Statement {
        display: sql.clone(),
        sql,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TimeUnit;

    #[test]
    fn ttl_marker_matches_clickhouse_spelling() {
        let s = Schedule {
            count: 365,
            unit: TimeUnit::Day,
        };
        assert_eq!(ttl_marker(Some(s)).as_deref(), Some("toIntervalDay(365)"));
        let w = Schedule {
            count: 2,
            unit: TimeUnit::Week,
        };
        assert_eq!(ttl_marker(Some(w)).as_deref(), Some("toIntervalWeek(2)"));
        assert_eq!(ttl_marker(None), None);
    }
}
