//! The subcommands' jobs; `main.rs` only parses the command line and calls these.
pub mod check;
#[cfg(feature = "demo")]
pub mod demo;
#[cfg(feature = "demo")]
pub mod demo_tls;
pub mod events;
pub mod import_config;
pub mod logging;
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

pub use crate::config::BadInput;
pub use crate::config::load_portal_config;

/// Maps an error to the process exit code: 2 for bad input, 1 for everything else.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    if err.downcast_ref::<BadInput>().is_some() {
        EXIT_BAD_INPUT
    } else {
        1
    }
}
