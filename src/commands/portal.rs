//! Connecting to the portal: the configured one, or the embedded demo portal.
use crate::bitrix::{Client, ClientConfig, Governor, GovernorConfig};
use crate::config::{Config, PortalAuth, Secret};
use crate::demo_portal::{self, PortalConfig, RunningPortal};
use std::sync::Arc;

/// A client plus, in demo mode, the emulator it talks to (kept alive with it).
pub struct PortalConnection {
    pub client: Arc<Client>,
    pub demo: Option<RunningPortal>,
}

/// Builds the client; with no portal configured, starts the demo portal in-process first
/// and points the config at its webhook.
pub async fn connect(config: &mut Config, demo: PortalConfig) -> anyhow::Result<PortalConnection> {
    let mut running = None;
    let demo_scale = demo.time_scale;
    if matches!(config.portal, PortalAuth::Demo) {
        let portal = demo_portal::start(demo, "127.0.0.1:0".parse()?).await?;
        tracing::info!(url = %portal.base_url(), "no portal configured: using the embedded demo portal");
        config.portal = PortalAuth::Webhook {
            url: Secret::new(portal.webhook_url()),
        };
        running = Some(portal);
    }
    let time_scale = if running.is_some() { demo_scale } else { 1.0 };
    let mut governor_cfg = GovernorConfig::from_limits(&config.limits);
    governor_cfg.clock_scale = time_scale;
    let governor = match (&running, shared_governor_store(config)) {
        // The in-process demo portal is private to this process: nothing to share.
        (None, Some(store)) => Governor::with_store(governor_cfg, Box::new(store)),
        _ => Governor::new(governor_cfg),
    };
    let client = Client::new(ClientConfig::from_config(config)?, governor)?;
    Ok(PortalConnection {
        client: Arc::new(client),
        demo: running,
    })
}

/// The governor state shared through the state dir with every other b24ch process of the
/// same portal (`serve`, `sync`, the processes ClickHouse starts for `exec`).
fn shared_governor_store(config: &Config) -> Option<crate::bitrix::governor_file::FileStore> {
    let url = match &config.portal {
        PortalAuth::Demo => return None,
        PortalAuth::Webhook { url } => url.expose().to_string(),
        PortalAuth::OAuth { portal_url, .. } => portal_url.clone(),
    };
    crate::bitrix::governor_file::FileStore::for_portal_url(&config.state_dir, &url)
}
