//! The pull pipeline wired as `b24ch demo` wires it — demo portal, `serve`, `apply` — against
//! the test ClickHouse, with helpers to drive the refreshable views by hand.
//!
//! Every view is scheduled `EVERY 1 WEEK`, so after the refresh each view runs when it is
//! created, nothing refreshes unless a test asks (`SYSTEM REFRESH VIEW` + `SYSTEM WAIT VIEW`).
use std::sync::Arc;
use std::time::{Duration, Instant};

use b24ch::catalog::Catalog;
use b24ch::clickhouse::Connection;
use b24ch::clickhouse::apply::{self, ApplyReport};
use b24ch::commands::serve::{self, RunningServe};
use b24ch::config::{Config, TlsFiles, from_toml_str};
use b24ch::encode::Format;
use b24ch::portal::{self, PortalConnection};
use bitrix24_emulator::{DataSizes, PortalConfig, PortalControl};
use local_clickhouse::LocalClickHouse;

pub(crate) const TOKEN: &str = "pull-test-token-0123456789abcdef";

/// Sizes scaled from the deal count as `b24ch demo` does (3 smart processes).
pub(crate) fn sizes(deals: u64) -> DataSizes {
    let base = DataSizes::default();
    DataSizes {
        deals,
        leads: deals / 2,
        contacts: deals * 3 / 4,
        companies: deals / 4,
        activities: deals / 2,
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

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub(crate) struct Pull {
    pub ch: &'static LocalClickHouse,
    pub db: String,
    pub config: Arc<Config>,
    pub portal: PortalConnection,
    pub serve: Option<RunningServe>,
    pub conn: Connection,
    pub format: Format,
}

impl Pull {
    /// A fresh database, a demo portal, `serve` on a free port and a first `apply` (which
    /// starts the first load of every entity). `extra` is appended to the config TOML.
    pub(crate) async fn start(
        prefix: &str,
        portal_cfg: PortalConfig,
        format: Format,
        extra: &str,
    ) -> Pull {
        let ch = super::clickhouse().await;
        Pull::start_on(ch, None, prefix, portal_cfg, format, extra).await
    }

    /// [`Pull::start`] against `ch`; with `tls`, `serve` listens with HTTPS on 127.0.0.1.
    pub(crate) async fn start_on(
        ch: &'static LocalClickHouse,
        tls: Option<&TlsFiles>,
        prefix: &str,
        portal_cfg: PortalConfig,
        format: Format,
        extra: &str,
    ) -> Pull {
        let db = super::fresh_database_on(ch, prefix).await;
        let port = free_port();
        let transport = match tls {
            Some(f) => format!(
                "public_url = \"https://127.0.0.1:{port}\"\ntls_cert = {:?}\ntls_key = {:?}\n",
                f.cert.display().to_string(),
                f.key.display().to_string()
            ),
            None => format!("public_url = \"http://127.0.0.1:{port}\"\n"),
        };
        let mut config = from_toml_str(&format!(
            "[clickhouse]\nurl = \"{}\"\ndatabase = \"{db}\"\n\
             [proxy]\nlisten = \"127.0.0.1:{port}\"\n{transport}token = \"{TOKEN}\"\n\
             [entities.default]\nschedule = \"1 WEEK\"\nreconcile_schedule = \"1 WEEK\"\nreconcile_safety = \"1 SECOND\"\n{extra}",
            ch.http_url()
        ))
        .unwrap();
        let portal = portal::connect(&mut config, portal_cfg).await.unwrap();
        let config = Arc::new(config);
        let serve = serve::start(config.clone(), &portal).await.unwrap();
        let conn = Connection::connect(&config.clickhouse)
            .unwrap()
            .with_secret(&config.proxy.token);
        Pull {
            ch,
            db,
            config,
            portal,
            serve: Some(serve),
            conn,
            format,
        }
    }

    pub(crate) fn control(&self) -> &PortalControl {
        self.portal.demo.as_ref().unwrap().control()
    }

    pub(crate) fn serve(&self) -> &RunningServe {
        self.serve.as_ref().expect("serve is running")
    }

    /// Stops `serve` as a crash would (responses in flight are cut).
    pub(crate) fn stop_serve(&mut self) {
        if let Some(s) = self.serve.take() {
            s.stop();
        }
    }

    /// Starts `serve` again on the same address (the named collection points there).
    pub(crate) async fn restart_serve(&mut self) {
        assert!(self.serve.is_none());
        let started = Instant::now();
        loop {
            match serve::start(self.config.clone(), &self.portal).await {
                Ok(s) => {
                    self.serve = Some(s);
                    return;
                }
                // The aborted accept loop may hold the port for a moment.
                Err(_) if started.elapsed() < Duration::from_secs(10) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("serve does not restart: {e}"),
            }
        }
    }

    /// One autopilot pass (rediscover + apply), as `serve` runs it on its interval.
    pub(crate) async fn autopilot(&self) -> ApplyReport {
        serve::autopilot_once(&self.serve().state, &self.conn, self.format)
            .await
            .unwrap()
    }

    pub(crate) fn catalog(&self) -> Arc<Catalog> {
        self.serve().state.catalog()
    }

    /// Entities with a table in ClickHouse (enabled ones of the current catalog).
    pub(crate) fn entities(&self) -> Vec<String> {
        apply::plans(&self.config, &self.catalog(), self.format)
            .into_iter()
            .map(|p| p.entity)
            .collect()
    }

    pub(crate) async fn q(&self, sql: &str) -> String {
        match self.ch.query(sql).await {
            Ok(s) => s.trim().to_string(),
            Err(e) => panic!("{e}\n{sql}"),
        }
    }

    /// Waits for the view's current refresh (if any); `Err` with ClickHouse's text if it failed.
    pub(crate) async fn wait_view(&self, view: &str) -> Result<(), String> {
        self.ch
            .query(&format!("SYSTEM WAIT VIEW `{}`.`{view}`", self.db))
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// `SYSTEM REFRESH VIEW` then `SYSTEM WAIT VIEW`.
    pub(crate) async fn refresh(&self, view: &str) -> Result<(), String> {
        self.q(&format!("SYSTEM REFRESH VIEW `{}`.`{view}`", self.db))
            .await;
        self.wait_view(view).await
    }

    /// Waits for every load and reconcile view of the current entities; panics on a failure.
    pub(crate) async fn wait_all(&self) {
        for e in self.entities() {
            for v in [format!("{e}_load"), format!("{e}_reconcile")] {
                if let Err(err) = self.wait_view(&v).await {
                    panic!("{v} failed: {err}");
                }
            }
        }
    }

    /// One cycle: every load view, then every reconcile view, refreshed and waited for.
    pub(crate) async fn cycle(&self) {
        self.wait_all().await;
        for suffix in ["_load", "_reconcile"] {
            // Every entity's view at once, as ClickHouse's own schedules would run them.
            let views: Vec<String> = self
                .entities()
                .iter()
                .map(|e| format!("{e}{suffix}"))
                .collect();
            for v in &views {
                self.q(&format!("SYSTEM REFRESH VIEW `{}`.`{v}`", self.db))
                    .await;
            }
            for v in &views {
                if let Err(err) = self.wait_view(v).await {
                    panic!("{v} failed: {err}");
                }
            }
        }
    }

    /// Watermark rows of an entity (every complete load appends one).
    pub(crate) async fn watermarks(&self, entity: &str) -> u64 {
        self.q(&format!(
            "SELECT count() FROM `{}`.`{entity}` WHERE ID = 0",
            self.db
        ))
        .await
        .parse()
        .unwrap()
    }

    /// The cursor the next load starts from (unix seconds), if any complete load landed.
    pub(crate) async fn cursor(&self, entity: &str, cursor_column: &str) -> Option<i64> {
        let s = self
            .q(&format!(
                "SELECT toUnixTimestamp(max(`{cursor_column}`)) FROM `{}`.`{entity}` WHERE ID = 0 HAVING count() > 0",
                self.db
            ))
            .await;
        s.parse().ok()
    }

    /// Cell-by-cell comparison of every entity with the portal.
    pub(crate) async fn mismatches(&self) -> Vec<super::truth::Mismatch> {
        super::truth::compare_all(
            self.ch,
            &self.db,
            self.control(),
            &self.catalog(),
            &self.entities(),
        )
        .await
    }

    /// Waits until the view's current refresh attempt has failed; returns ClickHouse's exception.
    pub(crate) async fn wait_failed(&self, view: &str) -> String {
        let q = format!(
            "SELECT exception FROM system.view_refreshes WHERE database = '{}' AND view = '{view}'",
            self.db
        );
        let started = Instant::now();
        loop {
            let exception = self.ch.query(&q).await.unwrap_or_default();
            if !exception.trim().is_empty() {
                return exception.trim().to_string();
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "timed out waiting for {view} to fail"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// A view's last refresh state from `system.view_refreshes`.
    pub(crate) async fn refresh_state(&self, view: &str) -> String {
        self.q(&format!(
            "SELECT status, exception, retry FROM system.view_refreshes WHERE database = '{}' AND view = '{view}' FORMAT TSV",
            self.db
        ))
        .await
    }
}

/// Polls `cond` every 10 ms until it holds; panics after `timeout` naming `what`.
pub(crate) async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !cond().await {
        assert!(started.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
