//! The `b24ch` command line: parses arguments and dispatches to `b24ch::commands`.
use b24ch::commands;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "b24ch",
    version,
    about = "Moves Bitrix24 CRM data into ClickHouse: typed, incremental, with deletions.",
    long_about = "Moves Bitrix24 CRM data into ClickHouse: typed, incremental, with deletions.\n\n\
        Every command but `demo` and `demo-portal` needs a config (--config, $B24CH_CONFIG or\n\
        ./b24ch.toml) that names a portal; `demo` runs the embedded demo portal and a local ClickHouse."
)]
struct Cli {
    /// Config file (TOML, see config_example.toml); else ./b24ch.toml. Required by every
    /// command but `demo` and `demo-portal`.
    #[arg(long, short, global = true, env = "B24CH_CONFIG")]
    config: Option<PathBuf>,
    /// Log as JSON lines instead of human-readable text.
    #[arg(long, global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate the config and test connectivity to the portal and to ClickHouse.
    ///
    /// Prints one line per check (what works and what not); exits 0 only if all pass,
    /// 2 if the config itself is invalid.
    Check,
    /// Run the whole pipeline on the embedded default: demo portal, local ClickHouse, serve, apply.
    ///
    /// Starts a local ClickHouse 26.9 (chdb-core; run scripts/setup_clickhouse.sh once), the
    /// demo portal with generated data, `serve`, and `apply`; then shows the tables filling as
    /// ClickHouse's refreshable materialized views pull every entity.
    #[cfg(feature = "demo")]
    Demo(commands::demo::DemoArgs),
    /// Run the Bitrix24 demo portal (REST emulator) alone and print its webhook URL.
    #[cfg(feature = "demo")]
    DemoPortal(bitrix24_emulator::DemoPortalArgs),
    /// Serve the HTTP contract ClickHouse pulls typed rows from (Parquet / JSONEachRow).
    ///
    /// Discovers the portal's catalog, listens on proxy.listen and, every
    /// proxy.autopilot_interval, converges the ClickHouse schema (new tables, columns, views).
    Serve {
        /// Do not run the schema autopilot loop.
        #[arg(long)]
        no_autopilot: bool,
    },
    /// Print the ClickHouse DDL for the portal (secrets masked) without running it.
    Sql(commands::schema_cmds::SchemaArgs),
    /// Create or evolve the ClickHouse schema to match the portal (idempotent).
    Apply(commands::schema_cmds::SchemaArgs),
    /// Executable modes ClickHouse runs itself: table function rows, UDF, dictionary source.
    ///
    /// Config: --config, else $B24CH_CONFIG, else ./b24ch.toml (required; it must name a portal).
    /// See clickhouse_config/ for the XML and the wrapper script.
    Exec(b24ch::exec::ExecArgs),
    /// Push rows into ClickHouse yourself (for a ClickHouse that cannot reach `serve`).
    ///
    /// Same tables, incremental cursor, deletions and schema autopilot as the pull path,
    /// over the ClickHouse HTTP(S) interface (clickhouse.ca_cert for managed clouds).
    Sync(commands::sync::SyncArgs),
    /// Keep ClickHouse fresh from Bitrix24's offline event queue (needs an OAuth app).
    ///
    /// Binds ONCRM…ADD|UPDATE|DELETE for the loaded entities, reads the queue every
    /// events.poll_interval to events.max_delay (as the flow of changes allows), writes changed
    /// rows and tombstones, and clears the queue only after they are in ClickHouse.
    Events(commands::events::EventsArgs),
    /// Convert the original Python connector's config.cfg into an equivalent b24ch.toml.
    ///
    /// Secrets go to an env file (`--secrets env`, default) or stay inline (`--secrets inline`);
    /// every file written is mode 0600. Prints what has no equivalent.
    ImportConfig(commands::import_config::ImportConfigArgs),
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    commands::logging::init(cli.log_json);
    let result = dispatch(cli).await;
    if let Err(err) = result {
        eprintln!("error: {err:#}");
        std::process::exit(commands::exit_code(&err));
    }
}

async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Check => {
            let config = commands::load_portal_config(cli.config.as_deref(), "check")?;
            let (lines, ok) = commands::check::run(&config).await;
            for l in &lines {
                println!("{} {}: {}", l.status.label(), l.what, l.detail);
            }
            if !ok {
                anyhow::bail!("some checks failed (see above)");
            }
            Ok(())
        }
        #[cfg(feature = "demo")]
        Command::Demo(args) => {
            let config = commands::load_config(cli.config.as_deref())?;
            commands::demo::run(config, args).await
        }
        #[cfg(feature = "demo")]
        Command::DemoPortal(args) => Ok(bitrix24_emulator::run_cli(args).await?),
        Command::Serve { no_autopilot } => {
            let config = commands::load_portal_config(cli.config.as_deref(), "serve")?;
            commands::serve::run(config, !no_autopilot).await
        }
        Command::Sql(args) => {
            let config = commands::load_portal_config(cli.config.as_deref(), "sql")?;
            commands::schema_cmds::sql(config, args).await
        }
        Command::Apply(args) => {
            let config = commands::load_portal_config(cli.config.as_deref(), "apply")?;
            commands::schema_cmds::apply(config, args).await
        }
        Command::Exec(args) => b24ch::exec::run(cli.config.as_deref(), args)
            .await
            .map_err(b24ch::exec::ExecError::into_anyhow),
        Command::ImportConfig(args) => commands::import_config::run(&args),
        Command::Sync(args) => {
            let config = commands::load_portal_config(cli.config.as_deref(), "sync")?;
            commands::sync::run(config, args).await
        }
        Command::Events(args) => {
            let config = commands::load_portal_config(cli.config.as_deref(), "events")?;
            commands::events::run(config, args).await
        }
    }
}
