//! `b24ch sql` and `b24ch apply`: the ClickHouse DDL for the portal, printed or run.
use crate::clickhouse::{Connection, apply};
use crate::config::Config;
use crate::encode::Format;
use crate::portal::{self, DemoSettings};

#[derive(Debug, Clone, clap::Args)]
pub struct SchemaArgs {
    /// Only these entities (default: every enabled entity of the portal).
    pub entities: Vec<String>,
    /// Row format ClickHouse pulls in: Parquet or JSONEachRow.
    #[arg(long, default_value = "Parquet", value_parser = parse_format)]
    pub format: Format,
}

fn parse_format(s: &str) -> Result<Format, String> {
    Format::parse(s).ok_or_else(|| format!("`{s}` is not a format; use Parquet or JSONEachRow"))
}

async fn catalog(
    config: &mut Config,
    args: &SchemaArgs,
) -> anyhow::Result<crate::catalog::Catalog> {
    let conn = portal::connect(config, DemoSettings::default()).await?;
    let mut catalog = crate::catalog::discover(&conn.client).await?;
    if !args.entities.is_empty() {
        if let Some(u) = args.entities.iter().find_map(|e| catalog.unavailable(e)) {
            anyhow::bail!("{}", u.explain());
        }
        if let Some(bad) = args.entities.iter().find(|e| catalog.entity(e).is_none()) {
            let known: Vec<&str> = catalog.entities.iter().map(|e| e.name.as_str()).collect();
            return Err(super::BadInput(format!(
                "unknown entity `{bad}`; the portal has: {}",
                known.join(", ")
            ))
            .into());
        }
        // Unavailable entities stay listed: `apply` must know them to leave their tables be.
        catalog.entities.retain(|e| args.entities.contains(&e.name));
    }
    Ok(catalog)
}

/// The entities the portal refuses, enabled in the config (disabled ones are not wanted anyway).
fn refused<'a>(
    config: &'a Config,
    catalog: &'a crate::catalog::Catalog,
) -> impl Iterator<Item = &'a crate::catalog::Unavailable> {
    catalog
        .unavailable
        .iter()
        .filter(|u| config.entity(&u.entity).enabled)
}

/// Prints the statements (secrets masked) for an empty database.
pub async fn sql(mut config: Config, args: SchemaArgs) -> anyhow::Result<()> {
    let catalog = catalog(&mut config, &args).await?;
    for u in refused(&config, &catalog) {
        println!("-- not created: {}\n", u.explain());
    }
    for s in apply::script(&config, &catalog, args.format) {
        println!("{};\n", s.display);
    }
    Ok(())
}

/// Converges ClickHouse to the portal and prints what changed.
pub async fn apply(mut config: Config, args: SchemaArgs) -> anyhow::Result<()> {
    if config.proxy.token.is_empty() {
        return Err(super::BadInput(
            "config error in `proxy.token`: apply stores the token ClickHouse sends to `serve`; set it (the same value `serve` uses)".into(),
        )
        .into());
    }
    let catalog = catalog(&mut config, &args).await?;
    let conn = Connection::connect(&config.clickhouse)?.with_secret(&config.proxy.token);
    let report = apply::apply(&conn, &config, &catalog, args.format).await?;
    for (entity, change) in report.changes() {
        println!("{entity}: {change}");
    }
    for u in refused(&config, &catalog) {
        println!("{}: not created: {}", u.entity, u.explain());
    }
    println!(
        "apply: {} statements, {} enumeration labels",
        report.statements, report.enum_options
    );
    let problems = report.problems();
    if !problems.is_empty() {
        anyhow::bail!("{}", problems.join("\n"));
    }
    Ok(())
}
