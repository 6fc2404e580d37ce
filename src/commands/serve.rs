//! `b24ch serve`: discover the catalog, serve the HTTP contract, keep the schema converged.
use crate::catalog;
use crate::clickhouse::{Connection, apply};
use crate::config::{Config, Exposure, Transport};
use crate::encode::Format;
use crate::pipeline::stats::Stats;
use crate::portal::PortalConnection;
use crate::serve::listener::{CERT_RELOAD_INTERVAL, TlsListener};
use crate::serve::tls::ReloadingCert;
use crate::serve::{AppState, router};
use std::sync::Arc;

/// A running `serve` (in-process, for `demo` and the tests).
pub struct RunningServe {
    pub addr: std::net::SocketAddr,
    pub state: Arc<AppState>,
    /// The certificate being served, with TLS.
    pub tls: Option<Arc<ReloadingCert>>,
    task: tokio::task::JoinHandle<()>,
    stopped: tokio::sync::watch::Sender<bool>,
}

impl RunningServe {
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Where people reach `serve`: `proxy.public_url` (what ClickHouse uses too).
    fn public_base(&self) -> String {
        self.state
            .config
            .proxy
            .public_url
            .trim_end_matches('/')
            .to_string()
    }

    /// The status page for people.
    pub fn page_url(&self) -> String {
        format!("{}{}", self.public_base(), crate::serve::page::PAGE)
    }

    /// A link that logs a browser into the status page once, within 15 minutes.
    pub fn one_time_login_url(&self) -> String {
        format!(
            "{}/status/login?code={}",
            self.public_base(),
            self.state
                .page_auth
                .one_time_code(std::time::Instant::now())
        )
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
    let tls = check_transport(&config)?;
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
    let app = with_events(router(state.clone()), &config, &state)?.layer(
        axum::middleware::from_fn(move |req, next| cut_on_stop(stop_rx.clone(), req, next)),
    );
    let timeouts = config.proxy.timeouts;
    let task = match &tls {
        Some(cert) => {
            let listener = TlsListener::new(listener, addr, cert.clone(), CERT_RELOAD_INTERVAL)?;
            tokio::spawn(crate::serve::conn::serve(listener, app, timeouts))
        }
        None => tokio::spawn(crate::serve::conn::serve(listener, app, timeouts)),
    };
    tracing::info!(%addr, tls = tls.is_some(), "serving");
    Ok(RunningServe {
        addr,
        state,
        tls,
        task,
        stopped,
    })
}

/// `POST /v1/events` when `events.application_token` is set: online events feed the same
/// path as offline ones, in pull mode (tombstones at once, the load view refreshed).
/// Added after the bearer-token layer (this route has its own credential) without touching
/// the fallback, which stays behind that layer.
fn with_events(
    app: axum::Router,
    config: &Arc<Config>,
    state: &Arc<AppState>,
) -> anyhow::Result<axum::Router> {
    let Some(token) = &config.events.application_token else {
        return Ok(app);
    };
    let conn = Connection::connect(&config.clickhouse)?.with_secret(&config.proxy.token);
    let st = state.clone();
    let sink = Arc::new(crate::events::sink::Sink {
        conn,
        client: state.client.clone(),
        config: config.clone(),
        catalog: Arc::new(move || st.catalog()),
        mode: crate::events::sink::Mode::Pull,
    });
    let inbox = crate::events::online::Inbox::start(token.clone(), sink);
    Ok(app.route(
        crate::events::online::PATH,
        crate::events::online::route(inbox),
    ))
}

/// Refuses plain HTTP on a network address unless the user accepted it (then warns, at every
/// start); with TLS, loads the certificate and warns if it is not valid now or expires soon.
fn check_transport(config: &Config) -> anyhow::Result<Option<Arc<ReloadingCert>>> {
    let proxy = &config.proxy;
    match proxy.exposure() {
        Exposure::PlainRefused => {
            return Err(super::BadInput(format!(
                "config error in `proxy.listen`: {}",
                proxy.plain_http_risk()
            ))
            .into());
        }
        Exposure::PlainAllowed => tracing::warn!(
            listen = %proxy.listen,
            "plain HTTP on a network address (proxy.allow_plain_http = true): the bearer token and every CRM row cross the network in clear text; set proxy.tls_cert and proxy.tls_key to serve HTTPS"
        ),
        Exposure::Loopback | Exposure::Tls => {}
    }
    let Transport::Tls(files) = &proxy.transport else {
        return Ok(None);
    };
    let cert = ReloadingCert::load(files).map_err(|e| super::BadInput(e.to_string()))?;
    let info = cert.info();
    tracing::info!(names = ?info.names, not_after = %info.not_after, "serving HTTPS");
    if let Some(p) = info.validity_problem(chrono::Utc::now()) {
        tracing::warn!("{p}");
    }
    Ok(Some(Arc::new(cert)))
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
    print_page_help(&serve);
    if autopilot {
        let conn = Connection::connect(&config.clickhouse)?.with_secret(&config.proxy.token);
        tokio::spawn(autopilot_loop(serve.state.clone(), conn, Format::Parquet));
    }
    let _feed = start_offline_feed(&config, &portal, &serve).await?;
    tokio::signal::ctrl_c().await?;
    serve.stop();
    Ok(())
}

/// With `events.offline`, binds the offline events and reads the queue every
/// `events.poll_interval` in the background (pull mode: tombstones at once, load views
/// refreshed). The feed follows the served catalog: a smart process the autopilot adds gets
/// its events bound and its changes applied.
pub async fn start_offline_feed(
    config: &Arc<Config>,
    portal: &crate::portal::PortalConnection,
    serve: &RunningServe,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    if !config.events.offline {
        return Ok(None);
    }
    let conn = Connection::connect(&config.clickhouse)?.with_secret(&config.proxy.token);
    let state = serve.state.clone();
    let feed = super::events::prepare_on(
        config.clone(),
        portal.client.clone(),
        conn,
        crate::events::sink::Mode::Pull,
        Arc::new(move || state.catalog()),
    )
    .await?;
    let pace = super::events::pace(config);
    Ok(Some(tokio::spawn(async move { feed.run(pace).await })))
}

/// Where people look: the page's address and how to log in (never the token itself). A
/// one-time login link is printed only to a terminal, where the operator who started b24ch
/// sees it (not into a service's captured output).
fn print_page_help(serve: &RunningServe) {
    use std::io::IsTerminal;
    println!(
        "status page: {}  (log in with proxy.token from the config)",
        serve.page_url()
    );
    if std::io::stdout().is_terminal() {
        println!(
            "  one-time login link (works once, for 15 minutes): {}",
            serve.one_time_login_url()
        );
    }
}
