//! A running emulator: the HTTP server and the task that delivers online events.

use std::net::SocketAddr;

use super::config::PortalConfig;
use super::control::PortalControl;
use super::error::DemoPortalError;
use super::events::Delivery;
use super::server;

/// A running emulator.
pub struct RunningPortal {
    addr: SocketAddr,
    control: PortalControl,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    delivery: tokio::task::JoinHandle<()>,
}

impl RunningPortal {
    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT/rest/{user}/{code}/`
    pub fn webhook_url(&self) -> String {
        let cfg = self.control.config();
        format!(
            "{}/rest/{}/{}/",
            self.base_url(),
            cfg.webhook_user_id,
            cfg.webhook_code
        )
    }

    pub fn control(&self) -> &PortalControl {
        &self.control
    }

    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.delivery.abort();
        let _ = (&mut self.task).await;
    }
}

/// Start the emulator on `addr` (port 0 picks a free port).
pub async fn start(cfg: PortalConfig, addr: SocketAddr) -> Result<RunningPortal, DemoPortalError> {
    cfg.validate()?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| DemoPortalError::Bind { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| DemoPortalError::Bind { addr, source })?;
    let control = PortalControl::new(cfg, format!("http://{local}"));
    let app = server::router(control.clone());
    let delivery = tokio::spawn(deliver_online_events(control.clone()));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = rx.await;
        });
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "demo portal server stopped with an error");
        }
    });
    tracing::info!(addr = %local, "demo portal started");
    Ok(RunningPortal {
        addr: local,
        control,
        shutdown: Some(tx),
        task,
        delivery,
    })
}

/// POSTs online events to their handlers as changes produce them.
async fn deliver_online_events(control: PortalControl) {
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap_or_default();
    loop {
        control.shared.events_wake.notified().await;
        deliver(&control, &client).await;
    }
}

/// POSTs waiting online events; a failure is counted, never retried.
async fn deliver(control: &PortalControl, client: &reqwest::Client) {
    let batch: Vec<Delivery> = std::mem::take(&mut control.lock().events.outbox);
    for d in batch {
        let sent = client
            .post(&d.url)
            .header(reqwest::header::CONTENT_TYPE, d.content_type)
            .body(d.body)
            .send()
            .await;
        let ok = matches!(&sent, Ok(r) if r.status().is_success());
        if !ok {
            tracing::debug!(url = %d.url, "demo portal: online event not delivered (not retried)");
        }
        let mut st = control.lock();
        if ok {
            st.events.counters.online_delivered += 1;
        } else {
            st.events.counters.online_failed += 1;
        }
    }
}
