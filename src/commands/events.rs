//! `b24ch events`: keep ClickHouse fresh from the portal's offline event queue (push).
use crate::catalog;
use crate::clickhouse::Connection;
use crate::clickhouse::apply::{self, Mode};
use crate::config::Config;
use crate::encode::Format;
use crate::events::feed::Feed;
use crate::events::sink::{self, CatalogSource, Sink};
use crate::portal::{self, DemoSettings};
use std::sync::Arc;

#[derive(Debug, Clone, clap::Args)]
pub struct EventsArgs {
    /// Read and apply one lease, then exit (otherwise run until stopped).
    #[arg(long)]
    pub once: bool,
}

/// Converges the tables (push), binds the events and builds the feed, on a catalog
/// discovered now.
pub async fn prepare(
    config: Arc<Config>,
    client: Arc<crate::bitrix::Client>,
    conn: Connection,
    mode: sink::Mode,
) -> anyhow::Result<Feed> {
    let catalog = Arc::new(catalog::discover(&client).await?);
    if mode == sink::Mode::Push {
        apply::apply_mode(&conn, &config, &catalog, Format::Parquet, Mode::Push).await?;
    }
    prepare_on(
        config,
        client,
        conn,
        mode,
        Arc::new(move || catalog.clone()),
    )
    .await
}

/// Binds the events of `catalog`'s entities and builds the feed; the feed follows the
/// catalog as it changes (`serve`'s autopilot), binding the events of entities it gains.
pub async fn prepare_on(
    config: Arc<Config>,
    client: Arc<crate::bitrix::Client>,
    conn: Connection,
    mode: sink::Mode,
    catalog: CatalogSource,
) -> anyhow::Result<Feed> {
    let sink = Arc::new(Sink {
        conn,
        client,
        config: config.clone(),
        catalog,
        mode,
    });
    let feed = Feed::new(sink, &config.state_dir);
    let report = feed.bind_new().await?;
    tracing::info!(
        bound = report.bound.len(),
        already = report.already.len(),
        unknown = report.unknown.len(),
        "offline events bound"
    );
    Ok(feed)
}

pub async fn run(mut config: Config, args: EventsArgs) -> anyhow::Result<()> {
    if !config.events.offline {
        return Err(super::BadInput(
            "config error in `events.offline`: b24ch events reads the portal's offline event queue; set events.offline = true (needs an OAuth app, [portal.oauth])".into(),
        )
        .into());
    }
    let portal = portal::connect(&mut config, DemoSettings::default()).await?;
    let config = Arc::new(config);
    let conn = Connection::connect(&config.clickhouse)?;
    let feed = prepare(
        config.clone(),
        portal.client.clone(),
        conn,
        sink::Mode::Push,
    )
    .await?;
    if args.once {
        let r = feed.cycle().await?;
        feed.settle().await?;
        println!(
            "events: {} read{}, {} rows written, {} tombstones, {} loads, {} reconciles",
            r.events,
            if r.resumed { " (resumed lease)" } else { "" },
            r.applied.rows,
            r.applied.tombstones,
            r.applied.loads,
            r.applied.reconciles
        );
        return Ok(());
    }
    println!(
        "b24ch events: reading the offline event queue every {} to {} (more often while more changes arrive)",
        config.events.poll_interval.sql(),
        config.events.max_delay.sql()
    );
    tokio::select! {
        () = feed.run(pace(&config)) => Ok(()),
        r = tokio::signal::ctrl_c() => r.map_err(Into::into),
    }
}

/// The feed's pace from `[events]`.
pub fn pace(config: &Config) -> crate::events::feed::Pace {
    crate::events::feed::Pace {
        min: config.events.poll_interval.as_duration(),
        max: config.events.max_delay.as_duration(),
    }
}
