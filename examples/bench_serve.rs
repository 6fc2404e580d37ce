//! End to end into ClickHouse through `url()`, and `serve` under concurrent pulls.
//!
//! A fresh local ClickHouse (chdb-core), an in-process demo portal with cloud limits, `serve` and
//! `apply`, wired as `b24ch demo` wires them. Every view is scheduled `EVERY 1 WEEK`, so nothing
//! refreshes unless the bench says `SYSTEM REFRESH VIEW`. A full load is forced by truncating
//! the entity's table (its watermark rows go with it).
//!
//! - `e2e`: one full load of `crm_deal` (`--deals`, all fields + UF) by ClickHouse's refreshable
//!   view: `INSERT … SELECT FROM url('http://serve/v1/entities/crm_deal/rows?format=Parquet')`.
//! - `concurrent`: 8 entities of `--entity-rows` rows each (deal, lead, contact, company,
//!   activity, three smart processes): each refreshed alone, then all 8 at once.
//!
//! `cargo run --release --example bench_serve -- --phase e2e,concurrent`
use anyhow::{Context, bail};
use b24ch::clickhouse::{Connection, apply};
use b24ch::commands::serve;
use b24ch::config::{Config, from_toml_str};
use b24ch::encode::Format;
use b24ch::portal;
use bitrix24_emulator::{Counters, DataSizes, PortalConfig, PortalControl, SmartProcessSpec};
use clap::Parser;
use local_clickhouse::{LocalClickHouse, LocalClickHouseOptions};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

const TOKEN: &str = "bench-serve-token-0123456789abcdef";

#[derive(Parser, Debug)]
struct Args {
    /// Comma-separated: e2e,concurrent
    #[arg(long, default_value = "e2e,concurrent")]
    phase: String,
    #[arg(long, default_value_t = 100_000)]
    deals: u64,
    /// Rows of each of the 8 entities in the concurrent phase.
    #[arg(long, default_value_t = 10_000)]
    entity_rows: u64,
    #[arg(long, default_value_t = 100.0)]
    time_scale: f64,
    #[arg(long, default_value = ".build/bench-clickhouse")]
    data_dir: PathBuf,
}

struct Setup {
    ch: LocalClickHouse,
    db: String,
    portal: portal::PortalConnection,
    serve: serve::RunningServe,
    config: Arc<Config>,
    scale: f64,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Setup {
    async fn start(ch: LocalClickHouse, db: &str, cfg: PortalConfig) -> anyhow::Result<Setup> {
        ch.query(&format!("DROP DATABASE IF EXISTS `{db}` SYNC"))
            .await?;
        ch.query(&format!("CREATE DATABASE `{db}`")).await?;
        let port = free_port()?;
        let scale = cfg.time_scale;
        let mut config = from_toml_str(&format!(
            "[clickhouse]\nurl = \"{}\"\ndatabase = \"{db}\"\n\
             [proxy]\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}\"\ntoken = \"{TOKEN}\"\n\
             [entities.default]\nschedule = \"1 WEEK\"\nreconcile_schedule = \"1 WEEK\"\nreconcile_safety = \"1 SECOND\"\n",
            ch.http_url()
        ))?;
        let portal = portal::connect(&mut config, cfg).await?;
        let config = Arc::new(config);
        let serve = serve::start(config.clone(), &portal).await?;
        let conn = Connection::connect(&config.clickhouse)?.with_secret(&config.proxy.token);
        // apply: tables and views; each view refreshes once on creation (the first full load).
        serve::autopilot_once(&serve.state, &conn, Format::Parquet).await?;
        let s = Setup {
            ch,
            db: db.to_string(),
            portal,
            serve,
            config,
            scale,
        };
        Ok(s)
    }

    /// Entities with a table (what apply planned).
    fn planned(&self) -> Vec<String> {
        apply::plans(&self.config, &self.serve.state.catalog(), Format::Parquet)
            .into_iter()
            .map(|p| p.entity)
            .collect()
    }

    fn control(&self) -> anyhow::Result<&PortalControl> {
        Ok(self.portal.demo.as_ref().context("demo portal")?.control())
    }

    async fn q(&self, sql: &str) -> anyhow::Result<String> {
        Ok(self
            .ch
            .query(sql)
            .await
            .with_context(|| sql.to_string())?
            .trim()
            .to_string())
    }

    async fn wait(&self, view: &str) -> anyhow::Result<()> {
        self.q(&format!("SYSTEM WAIT VIEW `{}`.`{view}`", self.db))
            .await
            .map(|_| ())
    }

    /// Every load/reconcile view created by apply has finished its first refresh.
    async fn wait_first_loads(&self, entities: &[String]) -> anyhow::Result<()> {
        for e in entities {
            self.wait(&format!("{e}_load")).await?;
            self.wait(&format!("{e}_reconcile")).await?;
        }
        Ok(())
    }

    /// One operating window passes (fresh budgets, empty bucket), then zeroed counters.
    async fn fresh(&self) -> anyhow::Result<()> {
        tokio::time::sleep(Duration::from_secs_f64(630.0 / self.scale)).await;
        self.control()?.reset_counters();
        Ok(())
    }

    async fn truncate(&self, entity: &str) -> anyhow::Result<()> {
        self.q(&format!("TRUNCATE TABLE `{}`.`{entity}`", self.db))
            .await
            .map(|_| ())
    }

    async fn count(&self, entity: &str) -> anyhow::Result<u64> {
        Ok(self
            .q(&format!(
                "SELECT count() FROM `{}`.`{entity}_current`",
                self.db
            ))
            .await?
            .parse()?)
    }

    /// Full loads of `entities` started together; wall seconds until the last one finished.
    async fn refresh_all(&self, entities: &[&str]) -> anyhow::Result<f64> {
        for e in entities {
            self.truncate(e).await?;
        }
        self.fresh().await?;
        let t0 = Instant::now();
        for e in entities {
            self.q(&format!("SYSTEM REFRESH VIEW `{}`.`{e}_load`", self.db))
                .await?;
        }
        for e in entities {
            self.wait(&format!("{e}_load")).await?;
        }
        Ok(t0.elapsed().as_secs_f64())
    }
}

fn summary(c: &Counters) -> String {
    // Per method: Bitrix24 keeps the operating budget per method, so the busiest one bounds.
    let per_method: Vec<String> = c
        .operating_secs
        .iter()
        .map(|(m, s)| format!("{m} {s:.1}"))
        .collect();
    format!(
        "HTTP requests {}, COUNT {}, operating {:.1} s ({}), 503 {}, 429 {}",
        c.requests_total,
        c.count_queries,
        c.operating_secs.values().sum::<f64>(),
        per_method.join(", "),
        c.query_limit_exceeded,
        c.operation_time_limit
    )
}

fn tiny() -> DataSizes {
    DataSizes {
        deals: 10,
        leads: 10,
        contacts: 10,
        companies: 10,
        activities: 10,
        smart_processes: vec![],
        ..DataSizes::default()
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let phases: Vec<&str> = args.phase.split(',').map(str::trim).collect();
    if args.data_dir.exists() {
        std::fs::remove_dir_all(&args.data_dir)?;
    }
    let mut ch = Some(LocalClickHouse::start(LocalClickHouseOptions::new(&args.data_dir)).await?);
    println!(
        "local ClickHouse {}; time scale {}",
        ch.as_ref().map(|c| c.http_url()).unwrap_or_default(),
        args.time_scale
    );

    if phases.contains(&"e2e") {
        let cfg = PortalConfig {
            sizes: DataSizes {
                deals: args.deals,
                ..tiny()
            },
            time_scale: args.time_scale,
            ..PortalConfig::default()
        };
        let s = Setup::start(ch.take().context("clickhouse")?, "bench_e2e", cfg).await?;
        s.wait_first_loads(&s.planned()).await?;
        let secs = s.refresh_all(&["crm_deal"]).await?;
        let c = s.control()?.counters();
        let rows = s.count("crm_deal").await?;
        println!(
            "[e2e] crm_deal full load into ClickHouse via url(): {rows} rows in {secs:.1} s ({:.0} rows/s); {}",
            rows as f64 / secs,
            summary(&c)
        );
        if rows != args.deals {
            bail!("crm_deal_current has {rows} rows, portal {}", args.deals);
        }
        s.serve.stop();
        ch = Some(s.ch);
    }

    if phases.contains(&"concurrent") {
        let n = args.entity_rows;
        let base = DataSizes::default();
        let cfg = PortalConfig {
            sizes: DataSizes {
                deals: n,
                leads: n,
                contacts: n,
                companies: n,
                activities: n,
                smart_processes: base
                    .smart_processes
                    .into_iter()
                    .map(|sp| SmartProcessSpec { items: n, ..sp })
                    .collect(),
                ..base
            },
            time_scale: args.time_scale,
            ..PortalConfig::default()
        };
        let s = Setup::start(ch.take().context("clickhouse")?, "bench_conc", cfg).await?;
        s.wait_first_loads(&s.planned()).await?;
        let eight = [
            "crm_deal",
            "crm_lead",
            "crm_contact",
            "crm_company",
            "crm_activity",
            "crm_dynamic_128",
            "crm_dynamic_130",
            "crm_dynamic_132",
        ];
        let mut sum = 0.0;
        let mut singles = Vec::new();
        for e in eight {
            let secs = s.refresh_all(&[e]).await?;
            let c = s.control()?.counters();
            println!("[single] {e}: {secs:.1} s; {}", summary(&c));
            singles.push((e, secs, c));
            sum += secs;
        }
        let total = s.refresh_all(&eight).await?;
        let c = s.control()?.counters();
        let mut rows = 0;
        for e in eight {
            rows += s.count(e).await?;
        }
        println!(
            "[concurrent] 8 entities ({rows} rows) refreshed at once: {total:.1} s vs sum of singles {sum:.1} s (ratio {:.2}); {}",
            total / sum,
            summary(&c)
        );
        s.serve.stop();
        ch = Some(s.ch);
    }
    if let Some(ch) = ch {
        ch.stop().await?;
    }
    Ok(())
}
