//! `b24ch demo`: the whole pipeline on the embedded default — demo portal, a local
//! ClickHouse, `serve`, `apply`, and ClickHouse filling its tables by itself.
use crate::clickhouse::{Connection, apply};
use crate::config::{Config, DictionaryUser, Secret, Transport};
use crate::encode::Format;
use crate::portal;
use bitrix24_emulator::{DataSizes, PortalConfig};
use local_clickhouse::{LocalClickHouse, LocalClickHouseOptions};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Deals in the demo portal (leads, contacts, companies and smart-process items scale with it).
    #[arg(long, default_value_t = 2000)]
    pub deals: u64,
    /// Simulated portal seconds per real second (the cloud limits run this much faster).
    #[arg(long, default_value_t = 20.0)]
    pub time_scale: f64,
    /// Data directory of the local ClickHouse.
    #[arg(long, default_value = ".build/demo-clickhouse")]
    pub data_dir: PathBuf,
    /// Exit once every table has loaded (otherwise keep running until Ctrl-C).
    #[arg(long)]
    pub exit_after_load: bool,
    /// Give up waiting for the first loads after this many seconds.
    #[arg(long, default_value_t = 600)]
    pub timeout_secs: u64,
    /// Serve over HTTPS: a fresh CA and certificate are generated into --tls-dir, and the
    /// local ClickHouse trusts that CA (openSSL.client.caConfig).
    #[arg(long)]
    pub tls: bool,
    /// Where --tls writes the CA (ca.pem) and serve's certificate and key.
    #[arg(long, default_value = ".build/demo-tls")]
    pub tls_dir: PathBuf,
}

fn sizes(deals: u64) -> DataSizes {
    let base = DataSizes::default();
    DataSizes {
        deals,
        leads: deals / 2,
        contacts: deals * 3 / 4,
        companies: deals / 4,
        activities: deals,
        // Outside CRM (issue #12): tasks and their time, calls.
        tasks: deals / 4,
        task_elapsed: deals / 2,
        calls: deals,
        // Second wave: comments of some of the leads, deals, contacts and companies.
        timeline_comments: deals / 2,
        smart_processes: base
            .smart_processes
            .into_iter()
            .map(|mut s| {
                s.items = (deals / 8).max(10);
                s
            })
            .collect(),
        ..base
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

pub async fn run(mut config: Config, args: DemoArgs) -> anyhow::Result<()> {
    println!(
        "b24ch demo: starting a fresh local ClickHouse 26.9 in {} …",
        args.data_dir.display()
    );
    // Demo data is disposable: a fresh start keeps views of an earlier run (pointing at an
    // earlier serve port) from muddling this one.
    if args.data_dir.exists() {
        std::fs::remove_dir_all(&args.data_dir)?;
    }
    let tls = match args.tls {
        true => Some(super::demo_tls::generate(&args.tls_dir)?),
        false => None,
    };
    // The label dictionary's read-only user: clickhouse-local cannot `CREATE USER`, so the
    // launcher declares it (passwordless, this host only, SELECT on enum_labels alone).
    let dictionary_user = "b24ch_dict";
    let ch = LocalClickHouse::start(LocalClickHouseOptions {
        client_ca: tls.as_ref().map(|t| t.ca.clone()),
        readonly_user: Some((
            dictionary_user.to_string(),
            format!(
                "{}.{}",
                config.clickhouse.database,
                crate::clickhouse::ddl::ENUM_LABELS_TABLE
            ),
        )),
        ..LocalClickHouseOptions::new(&args.data_dir)
    })
    .await?;
    config.clickhouse.url = ch.http_url();
    config.clickhouse.user = "default".into();
    config.clickhouse.password = Secret::new("");
    config.clickhouse.dictionary_user = DictionaryUser::Existing(dictionary_user.into());
    let generated_token = config.proxy.token.is_empty();
    if generated_token {
        config.proxy.token = Secret::new(format!("demo-{:032x}", rand::random::<u128>()));
    }
    let port = free_port()?;
    config.proxy.listen = format!("127.0.0.1:{port}").parse()?;
    config.proxy.public_url = format!("http://127.0.0.1:{port}");
    if let Some(t) = &tls {
        config.proxy.transport = Transport::Tls(t.files.clone());
        config.proxy.public_url = format!("https://127.0.0.1:{port}");
        println!(
            "TLS: CA {} (trusted by the local ClickHouse through openSSL.client.caConfig), certificate {}",
            t.ca.display(),
            t.files.cert.display()
        );
    }

    let demo = PortalConfig {
        sizes: sizes(args.deals),
        time_scale: args.time_scale,
        ..PortalConfig::default()
    };
    let conn = portal::connect(&mut config, demo).await?;
    if let Some(p) = &conn.demo {
        println!(
            "demo portal: {} (cloud limits, time x{})",
            p.base_url(),
            args.time_scale
        );
    }
    let config = Arc::new(config);
    let serve = super::serve::start(config.clone(), &conn).await?;
    println!("b24ch serve: {}", serve.url());
    print_page_login(&serve, generated_token.then_some(&config.proxy.token));

    let ch_conn = Connection::connect(&config.clickhouse)?.with_secret(&config.proxy.token);
    let report = apply::apply(&ch_conn, &config, &serve.state.catalog(), Format::Parquet).await?;
    println!(
        "apply: {} tables created, {} statements; ClickHouse now loads every entity by itself (refreshable materialized views)",
        report.created_tables.len(),
        report.statements
    );
    let tables: Vec<String> = apply::plans(&config, &serve.state.catalog(), Format::Parquet)
        .into_iter()
        .map(|p| p.entity)
        .collect();
    let done = watch_loads(&ch, &config.clickhouse.database, &tables, args.timeout_secs).await?;
    if !done {
        anyhow::bail!(
            "not every table loaded within {} s; see `SELECT * FROM system.view_refreshes`",
            args.timeout_secs
        );
    }
    let db = &config.clickhouse.database;
    let sample = format!(
        "SELECT STAGE_ID, count() AS deals, sum(OPPORTUNITY) AS amount, toTypeName(amount) AS type FROM {db}.crm_deal_current GROUP BY STAGE_ID ORDER BY deals DESC LIMIT 5"
    );
    println!("\nEvery table is loaded. Typed data, straight from ClickHouse:\n{sample}");
    match ch
        .query(&format!("{sample} FORMAT PrettyCompactMonoBlock"))
        .await
    {
        Ok(table) => println!("{table}"),
        Err(e) => println!("(sample query failed: {e})"),
    }
    println!(
        "See it in a browser: {} (the login link above works once; the token always)",
        serve.page_url()
    );
    println!("Try more, against {}:", ch.http_url());
    println!(
        "  SYSTEM REFRESH VIEW {}.crm_deal_load",
        config.clickhouse.database
    );
    if !args.exit_after_load {
        println!("\nRunning; Ctrl-C to stop.");
        let state = serve.state.clone();
        tokio::spawn(super::serve::autopilot_loop(
            state,
            ch_conn,
            Format::Parquet,
        ));
        tokio::signal::ctrl_c().await?;
    }
    serve.stop();
    ch.stop().await?;
    Ok(())
}

/// Prints row counts as the tables fill; true once every load view succeeded once.
async fn watch_loads(
    ch: &LocalClickHouse,
    db: &str,
    tables: &[String],
    timeout: u64,
) -> anyhow::Result<bool> {
    let started = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let pending = ch
            .query(&format!(
                "SELECT count() FROM system.view_refreshes WHERE database = '{db}' AND view LIKE '%\\_load' AND last_success_time IS NULL"
            ))
            .await?;
        let counts = table_counts(ch, db, tables).await?;
        println!("[{:>4}s] {counts}", started.elapsed().as_secs());
        if pending.trim() == "0" {
            return Ok(true);
        }
        if started.elapsed() > Duration::from_secs(timeout) {
            return Ok(false);
        }
    }
}

async fn table_counts(ch: &LocalClickHouse, db: &str, tables: &[String]) -> anyhow::Result<String> {
    let mut parts = Vec::new();
    for t in tables {
        let n = ch
            .query(&format!("SELECT count() FROM `{db}`.`{t}_current`"))
            .await
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "?".into());
        parts.push(format!("{t}={n}"));
    }
    Ok(parts.join(" "))
}

/// How a person opens the status page. The demo made its token itself, so it shows it once
/// here on stdout (never in a log line); a token from the config is not repeated.
fn print_page_login(serve: &super::serve::RunningServe, generated: Option<&Secret>) {
    println!("status page: {}", serve.page_url());
    println!(
        "  log in by opening this link (works once, for 15 minutes): {}",
        serve.one_time_login_url()
    );
    match generated {
        Some(token) => println!(
            "  or type the proxy token this demo generated (a secret: it also opens /v1/… and /metrics):\n  PROXY TOKEN: {}",
            token.expose()
        ),
        None => println!("  or type proxy.token from your config"),
    }
}
