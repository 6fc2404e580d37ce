//! `b24ch serve`: discover the catalog, serve the HTTP contract, keep the schema converged.
use crate::catalog;
use crate::clickhouse::{Connection, apply};
use crate::config::Config;
use crate::encode::Format;
use crate::pipeline::stats::Stats;
use crate::portal::PortalConnection;
use crate::serve::{AppState, router};
use std::sync::Arc;

/// A running `serve` (in-process, for `demo` and the tests).
pub struct RunningServe {
    pub addr: std::net::SocketAddr,
    pub state: Arc<AppState>,
    task: tokio::task::JoinHandle<()>,
    stopped: tokio::sync::watch::Sender<bool>,
}

impl RunningServe {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops like a crash would: no new connection, and every response still streaming is
    /// cut (its body ends with an error, so the pulling INSERT fails rather than completing).
    /// Aborting the accept loop alone would leave axum's connection tasks streaming.
    pub fn stop(self) {
        self.stopped.send_replace(true);
        self.task.abort();
    }
}

/// Response bodies end with an error once `stopped` turns true.
async fn cut_on_stop(
    stopped: tokio::sync::watch::Receiver<bool>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use futures::StreamExt;
    let (parts, body) = next.run(req).await.into_parts();
    let mut stopped = stopped;
    let mut data = body.into_data_stream();
    let body = async_stream::stream! {
        loop {
            tokio::select! {
                biased;
                _ = async { drop(stopped.wait_for(|s| *s).await) } => {
                    yield Err(std::io::Error::other("b24ch serve stopped"));
                    return;
                }
                chunk = data.next() => match chunk {
                    Some(c) => yield c.map_err(std::io::Error::other),
                    None => return,
                },
            }
        }
    };
    axum::response::Response::from_parts(parts, axum::body::Body::from_stream(body))
}

/// Discovers the catalog and starts serving on `config.proxy.listen`.
pub async fn start(config: Arc<Config>, portal: &PortalConnection) -> anyhow::Result<RunningServe> {
    if config.proxy.token.is_empty() {
        return Err(super::BadInput(
            "config error in `proxy.token`: serve needs a bearer token (at least 16 characters) so only your ClickHouse can pull; set it, e.g. token = \"env:B24CH_PROXY_TOKEN\"".into(),
        )
        .into());
    }
    let catalog = catalog::discover(&portal.client).await?;
    tracing::info!(entities = catalog.entities.len(), "catalog discovered");
    for u in &catalog.unavailable {
        tracing::warn!(entity = %u.entity, "not served: {}", u.explain());
    }
    let state = Arc::new(AppState::new(
        config.clone(),
        portal.client.clone(),
        catalog,
        Arc::new(Stats::default()),
    ));
    let listener = tokio::net::TcpListener::bind(config.proxy.listen)
        .await
        .map_err(|e| {
            super::BadInput(format!(
                "config error in `proxy.listen`: cannot listen on {}: {e}; choose a free address",
                config.proxy.listen
            ))
        })?;
    let addr = listener.local_addr()?;
    let (stopped, stop_rx) = tokio::sync::watch::channel(false);
    let app = router(state.clone()).layer(axum::middleware::from_fn(move |req, next| {
        cut_on_stop(stop_rx.clone(), req, next)
    }));
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "serve stopped");
        }
    });
    tracing::info!(%addr, "serving");
    Ok(RunningServe {
        addr,
        state,
        task,
        stopped,
    })
}

/// One autopilot pass: rediscover, record what changed, converge ClickHouse.
pub async fn autopilot_once(
    state: &AppState,
    conn: &Connection,
    format: Format,
) -> anyhow::Result<apply::ApplyReport> {
    let old = state.catalog();
    let new = catalog::discover(&state.client).await?;
    let diff = catalog::diff(&old, &new);
    if !diff.is_empty() {
        tracing::info!(?diff, "portal catalog changed");
    }
    for u in &new.unavailable {
        if old.unavailable(&u.entity).is_none() {
            tracing::warn!(entity = %u.entity, "no longer served: {}", u.explain());
        }
    }
    for u in &old.unavailable {
        if new.entity(&u.entity).is_some() {
            tracing::info!(entity = %u.entity, "served again by the portal: table and views follow");
        }
    }
    // Serve the new catalog before converging: a view `apply` creates refreshes at once,
    // and its first pull of a new entity (or column) must not meet the old catalog.
    state.set_catalog(new.clone());
    let report = apply::apply(conn, &state.config, &new, format).await?;
    for (entity, change) in report.changes() {
        state.stats.schema_changed(&entity, &change);
    }
    Ok(report)
}

/// Runs the autopilot forever on the configured interval.
pub async fn autopilot_loop(state: Arc<AppState>, conn: Connection, format: Format) {
    let every = state.config.proxy.autopilot_interval.as_duration();
    loop {
        tokio::time::sleep(every).await;
        match autopilot_once(&state, &conn, format).await {
            Ok(r) if !r.changes().is_empty() => {
                tracing::info!(
                    changes = r.changes().len(),
                    "autopilot applied schema changes"
                )
            }
            Ok(_) => tracing::debug!("autopilot: no schema change"),
            Err(e) => tracing::error!(error = %e, "autopilot pass failed; retrying next interval"),
        }
    }
}

/// `b24ch serve`: runs until Ctrl-C.
pub async fn run(mut config: Config, autopilot: bool) -> anyhow::Result<()> {
    let portal =
        crate::portal::connect(&mut config, crate::portal::DemoSettings::default()).await?;
    let config = Arc::new(config);
    let serve = start(config.clone(), &portal).await?;
    println!("b24ch serve: listening on {}", serve.url());
    if autopilot {
        let conn = Connection::connect(&config.clickhouse)?.with_secret(&config.proxy.token);
        tokio::spawn(autopilot_loop(serve.state.clone(), conn, Format::Parquet));
    }
    tokio::signal::ctrl_c().await?;
    serve.stop();
    Ok(())
}
