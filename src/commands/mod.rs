//! The subcommands' jobs; `main.rs` only parses the command line and calls these.
pub mod check;
pub mod demo;
pub mod logging;
pub mod portal;
pub mod schema_cmds;
pub mod serve;
pub mod sync;

use std::path::Path;

/// Exit code for bad configuration or bad command-line input.
pub const EXIT_BAD_INPUT: i32 = 2;

/// Loads the config or explains in one line what is wrong (exit code 2).
pub fn load_config(path: Option<&Path>) -> Result<crate::config::Config, BadInput> {
    crate::config::load(path).map_err(|e| BadInput(e.to_string()))
}

/// The config of a command that works on a real portal (`sync`, `serve`, `apply`, `sql`,
/// `check`, `exec`): `--config`/`$B24CH_CONFIG`, else `./b24ch.toml`; it must configure a portal.
/// Only `demo` and `demo-portal` use the embedded demo portal, so a cron line that lost its
/// environment cannot write demo rows into a real database.
pub fn load_portal_config(
    path: Option<&Path>,
    command: &str,
) -> Result<crate::config::Config, BadInput> {
    let Some(path) = crate::exec::config_path(path) else {
        return Err(BadInput(format!(
            "b24ch {command} needs a config: pass --config FILE, set B24CH_CONFIG, or put b24ch.toml in the working directory (see config_example.toml); only `b24ch demo` and `b24ch demo-portal` run without one, on the embedded demo portal"
        )));
    };
    let config = load_config(Some(&path))?;
    if matches!(config.portal, crate::config::PortalAuth::Demo) {
        return Err(BadInput(format!(
            "{} configures no portal: set `portal.webhook_url` or a `[portal.oauth]` section (see config_example.toml); b24ch {command} does not use the embedded demo portal (only `b24ch demo` does)",
            path.display()
        )));
    }
    Ok(config)
}

/// An error caused by the user's input (config, arguments): exit code 2, not 1.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

/// Maps an error to the process exit code: 2 for bad input, 1 for everything else.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    if err.downcast_ref::<BadInput>().is_some() {
        EXIT_BAD_INPUT
    } else {
        1
    }
}
