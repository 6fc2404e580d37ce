//! `b24ch exec rows ENTITY`: an entity's rows on stdout for ClickHouse's `executable()`:
//!
//! ```sql
//! SELECT ID, TITLE, OPPORTUNITY
//! FROM executable('b24ch-rows crm_deal', 'JSONEachRow', '<b24ch exec structure crm_deal>')
//! ```
//!
//! Columns and types are exactly the entity's table columns (`clickhouse::plan`), so
//! `INSERT INTO b24.crm_deal SELECT * FROM executable(…)` works too. A failure after the
//! first row exits non-zero, which fails ClickHouse's query: a broken listing never looks
//! complete.
use super::{Context, ExecError};
use crate::clickhouse::plan::selected_columns;
use crate::clickhouse::quote;
use crate::encode::{Format, RowEncoder};
use crate::pipeline::{self, EntityJob};
use crate::schema::Column;
use clap::Args;
use futures::StreamExt;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;

#[derive(Debug, Args)]
pub struct RowsArgs {
    /// Entity name (`crm_deal`, `crm_dynamic_128`, `user`, …; see `GET /v1/entities`).
    pub entity: String,
    /// Output format, the second argument of `executable()`: JSONEachRow or Parquet.
    #[arg(long, default_value = "JSONEachRow")]
    pub format: String,
    /// Only rows modified at or after this time, minus the lookback (unix seconds,
    /// `YYYY-MM-DD hh:mm:ss` UTC, or RFC 3339). Entities without a cursor ignore it.
    #[arg(long)]
    pub modified_since: Option<String>,
    /// Seconds before --modified-since to start from (late commits, clock skew).
    #[arg(long, default_value_t = 120)]
    pub lookback: i64,
    /// End with the watermark row (ID 0) that records a complete load, as `serve` does; use
    /// it when INSERTing into the b24ch table so the next incremental load knows its cursor.
    #[arg(long)]
    pub with_watermark: bool,
}

#[derive(Debug, Args)]
pub struct StructureArgs {
    pub entity: String,
    /// Print a complete `SELECT … FROM executable(…)` instead of the structure alone.
    #[arg(long)]
    pub sql: bool,
    /// Format named in the printed SQL.
    #[arg(long, default_value = "JSONEachRow")]
    pub format: String,
}

fn format_arg(name: &str) -> Result<Format, ExecError> {
    Format::parse(name).ok_or_else(|| {
        ExecError::BadInput(format!(
            "b24ch: --format {name:?} is not supported; use JSONEachRow or Parquet"
        ))
    })
}

/// The structure string of these columns: ``ID Int64, `TITLE` String, …``.
pub fn structure_string(columns: &[Column]) -> String {
    columns
        .iter()
        .map(|c| format!("{} {}", quote::ident(&c.name), c.ch_type.sql()))
        .collect::<Vec<_>>()
        .join(", ")
}

async fn columns_of(
    ctx: &Context,
    entity: &str,
) -> Result<(crate::catalog::Entity, Vec<Column>), ExecError> {
    let entity = ctx.entity(entity).await?;
    let settings = ctx.config.entity(&entity.name);
    let columns = selected_columns(&entity, &settings);
    Ok((entity, columns))
}

/// `b24ch exec structure ENTITY [--sql]`.
pub async fn print_structure(ctx: &Context, args: StructureArgs) -> Result<(), ExecError> {
    let format = format_arg(&args.format)?;
    let (entity, columns) = columns_of(ctx, &args.entity).await?;
    let s = structure_string(&columns);
    let text = if args.sql {
        format!(
            "SELECT *\nFROM executable({}, {}, {},\n    SETTINGS check_exit_code = 1, command_read_timeout = 600000)\n",
            quote::literal(&format!("b24ch-rows {}", entity.name)),
            quote::literal(format.clickhouse_name()),
            quote::literal(&s)
        )
    } else {
        format!("{s}\n")
    };
    let mut out = tokio::io::stdout();
    out.write_all(text.as_bytes()).await?;
    out.flush().await?;
    Ok(())
}

/// `b24ch exec rows ENTITY`.
pub async fn run(ctx: &Context, args: RowsArgs) -> Result<(), ExecError> {
    let format = format_arg(&args.format)?;
    let since = match &args.modified_since {
        Some(t) => {
            super::parse_since(t, None).map_err(|m| ExecError::BadInput(format!("b24ch: {m}")))?
        }
        None => None,
    };
    if !(0..=86_400).contains(&args.lookback) {
        return Err(ExecError::BadInput(
            "b24ch: --lookback must be between 0 and 86400 seconds".into(),
        ));
    }
    let (entity, columns) = columns_of(ctx, &args.entity).await?;
    let job = Arc::new(EntityJob::new(entity, columns)?);
    let mut encoder = RowEncoder::new(format, &job.columns)?;
    let mut pages = Box::pin(pipeline::typed_rows(
        ctx.client(),
        job.clone(),
        since,
        chrono::Duration::seconds(args.lookback),
    ));
    let mut out = tokio::io::stdout();
    let mut rows = 0u64;
    while let Some(page) = pages.next().await {
        let page = page?;
        if page.watermark.is_some() && !args.with_watermark {
            continue;
        }
        for issue in &page.issues {
            tracing::warn!(entity = %issue.entity, id = %issue.id, field = %issue.field, "value does not fit its column; kept in _invalid");
        }
        rows += page.rows.len() as u64;
        let bytes = encoder.write_rows(&page.rows)?;
        if !bytes.is_empty() {
            out.write_all(&bytes).await?;
        }
    }
    let tail = encoder.finish()?;
    out.write_all(&tail).await?;
    out.flush().await?;
    tracing::debug!(entity = %job.entity.name, rows, "exec rows done");
    Ok(())
}
