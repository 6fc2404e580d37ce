//! Connecting to the portal: the configured one, or the embedded demo portal.
use crate::bitrix::{Client, ClientConfig, Governor, GovernorConfig};
use crate::config::{Config, PortalAuth};
use std::sync::Arc;

#[cfg(feature = "demo")]
pub use bitrix24_emulator::{PortalConfig as DemoSettings, RunningPortal};

/// Settings of the embedded demo portal; this build has none (built without the `demo` feature).
#[cfg(not(feature = "demo"))]
#[derive(Debug, Clone, Default)]
pub struct DemoSettings;

#[cfg(not(feature = "demo"))]
#[derive(Debug)]
pub enum RunningPortal {}

/// A client plus, in demo mode, the emulator it talks to (kept alive with it).
pub struct PortalConnection {
    pub client: Arc<Client>,
    pub demo: Option<RunningPortal>,
}

/// Builds the client; with no portal configured, starts the demo portal in-process first
/// and points the config at its webhook.
pub async fn connect(config: &mut Config, demo: DemoSettings) -> anyhow::Result<PortalConnection> {
    let (running, time_scale) = start_demo_if_unconfigured(config, demo).await?;
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

#[cfg(feature = "demo")]
async fn start_demo_if_unconfigured(
    config: &mut Config,
    demo: DemoSettings,
) -> anyhow::Result<(Option<RunningPortal>, f64)> {
    if !matches!(config.portal, PortalAuth::Demo) {
        return Ok((None, 1.0));
    }
    let scale = demo.time_scale;
    let portal = bitrix24_emulator::start(demo, "127.0.0.1:0".parse()?).await?;
    tracing::info!(url = %portal.base_url(), "no portal configured: using the embedded demo portal");
    config.portal = PortalAuth::Webhook {
        url: crate::config::Secret::new(portal.webhook_url()),
    };
    Ok((Some(portal), scale))
}

#[cfg(not(feature = "demo"))]
async fn start_demo_if_unconfigured(
    config: &mut Config,
    _demo: DemoSettings,
) -> anyhow::Result<(Option<RunningPortal>, f64)> {
    if matches!(config.portal, PortalAuth::Demo) {
        return Err(crate::config::BadInput(
            "no portal configured: set [portal] in the config (this build has no embedded demo portal)"
                .into(),
        )
        .into());
    }
    Ok((None, 1.0))
}
