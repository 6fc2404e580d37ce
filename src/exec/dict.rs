//! `b24ch exec dict NAME`: the executable dictionary source. What it prints comes from
//! [`crate::dictionaries`], the same rows `serve`'s `/v1/dictionaries/{name}` answers.
use super::{Context, ExecError};
use crate::dictionaries::{self, DictFormat, DictRequest, DictSource, parse_keys};
use chrono::Utc;
use clap::Args;
use futures::StreamExt;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Debug, Args)]
pub struct DictArgs {
    /// Entity (`user`, `department`, `crm_status`, `crm_category`, `crm_currency`, any other)
    /// or `enum_labels`.
    pub name: String,
    /// JSONEachRow (attributes picked by name) or TabSeparated (then give --columns).
    #[arg(long, default_value = "JSONEachRow")]
    pub format: String,
    /// Only these columns, in this order (comma-separated; the dictionary's key(s) first).
    #[arg(long, value_delimiter = ',')]
    pub columns: Vec<String>,
    /// Read the requested keys from stdin (CACHE / COMPLEX_KEY_CACHE layouts).
    #[arg(long)]
    pub keys: bool,
    /// Key column(s) of the dictionary, comma-separated; default: the entity's primary key.
    #[arg(long, value_delimiter = ',')]
    pub key: Vec<String>,
    /// Only rows modified since this time (entities with a cursor; others are listed whole).
    #[arg(long)]
    pub modified_since: Option<String>,
}

/// `b24ch exec dict NAME`.
pub async fn run(ctx: &Context, args: DictArgs) -> Result<(), ExecError> {
    let format = DictFormat::parse(&args.format)?;
    let since = match &args.modified_since {
        Some(t) => dictionaries::parse_since(t, None)
            .map_err(|m| ExecError::BadInput(format!("b24ch: {m}")))?,
        None => None,
    };
    let catalog = ctx.catalog().await?;
    let source = DictSource::resolve(&catalog, &ctx.config, &args.name)?;
    let key = if args.key.is_empty() {
        source.default_key()
    } else {
        args.key.clone()
    };
    let keys = if args.keys {
        let mut input = String::new();
        tokio::io::stdin().read_to_string(&mut input).await?;
        let keys = parse_keys(&input, format, &key)?;
        log_keys(ctx, &args.name, &keys);
        if keys.is_empty() {
            return Ok(());
        }
        Some(keys)
    } else {
        None
    };
    let req = DictRequest {
        format,
        columns: args.columns,
        key,
        keys,
        since,
    };
    let stream = dictionaries::rows(ctx.client(), source, req);
    futures::pin_mut!(stream);
    let mut out = tokio::io::stdout();
    while let Some(bytes) = stream.next().await {
        out.write_all(&bytes?).await?;
    }
    out.flush().await?;
    Ok(())
}

/// Appends the keys a CACHE dictionary asked for to `state_dir/exec-dict.log` (one JSON line
/// per request), so it can be seen that only missing keys reach Bitrix24.
fn log_keys(ctx: &Context, name: &str, keys: &[Vec<String>]) {
    use std::io::Write;
    let path = ctx.config.state_dir.join("exec-dict.log");
    let line = json!({
        "at": Utc::now().to_rfc3339(),
        "dictionary_source": name,
        "keys": keys,
    });
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(&ctx.config.state_dir)?;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)?;
        writeln!(f, "{line}")
    };
    if let Err(e) = write() {
        tracing::debug!(error = %e, "cannot append to exec-dict.log");
    }
}
