//! `b24ch import-config config.cfg`: writes the original connector's config as `b24ch.toml`
//! (and, with `--secrets env`, the env file holding the secrets), both mode 0600, never over
//! an existing file; prints what has no equivalent.
use super::BadInput;
use crate::config::import::{Imported, PortalChoice, SecretsMode, import};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SecretsArg {
    /// `"env:B24CH_…"` references in the TOML; the values in a separate 0600 env file.
    Env,
    /// The values in the TOML itself (written 0600).
    Inline,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PortalArg {
    /// The inbound webhook of `[Bitrix]`.
    Webhook,
    /// The OAuth application of `[BitrixApp]`.
    App,
}

#[derive(Debug, clap::Args)]
pub struct ImportConfigArgs {
    /// The original connector's config.cfg.
    pub input: PathBuf,
    /// Where to write the b24ch config.
    #[arg(long, default_value = "b24ch.toml")]
    pub out: PathBuf,
    /// Where the secrets go.
    #[arg(long, value_enum, default_value = "env")]
    pub secrets: SecretsArg,
    /// The env file of `--secrets env` (load it with `set -a; . FILE` or systemd EnvironmentFile=).
    #[arg(long, default_value = "b24ch.env")]
    pub env_file: PathBuf,
    /// Which credentials to use when the file has both a webhook and an application.
    #[arg(long, value_enum, default_value = "webhook")]
    pub portal: PortalArg,
}

pub fn run(args: &ImportConfigArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.input).map_err(|e| {
        BadInput(format!(
            "cannot read {}: {e}; pass the original connector's config.cfg",
            args.input.display()
        ))
    })?;
    let mode = match args.secrets {
        SecretsArg::Env => SecretsMode::Env,
        SecretsArg::Inline => SecretsMode::Inline,
    };
    let portal = match args.portal {
        PortalArg::Webhook => PortalChoice::Webhook,
        PortalArg::App => PortalChoice::App,
    };
    let imported = import(&text, mode, portal).map_err(|e| BadInput(e.to_string()))?;
    write(args, &imported)?;
    report(args, &imported);
    Ok(())
}

fn write(args: &ImportConfigArgs, imported: &Imported) -> anyhow::Result<()> {
    let mut files = vec![(args.out.as_path(), imported.toml.clone())];
    if !imported.env.is_empty() {
        let env: String = imported
            .env
            .iter()
            .map(|(k, v)| format!("{k}={}\n", shell_quoted(v)))
            .collect();
        files.push((args.env_file.as_path(), env));
    }
    // Refuse before writing anything, so a refusal leaves no half-written pair.
    for (path, _) in &files {
        if path.exists() {
            return Err(BadInput(format!(
                "{} exists; move it away or pass another path (--out / --env-file)",
                path.display()
            ))
            .into());
        }
    }
    for (path, text) in files {
        write_private(path, &text)?;
    }
    Ok(())
}

/// Creates the file with mode 0600 from the start (never readable by others, even briefly).
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", path.display()))?;
    f.write_all(text.as_bytes())
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    Ok(())
}

/// A value for a POSIX shell / systemd env file: single-quoted.
fn shell_quoted(v: &str) -> String {
    format!("'{}'", v.replace('\'', r"'\''"))
}

fn report(args: &ImportConfigArgs, imported: &Imported) {
    println!("wrote {} (mode 600)", args.out.display());
    if !imported.env.is_empty() {
        println!(
            "wrote {} (mode 600) with {}; load it before running b24ch: set -a; . {}; set +a",
            args.env_file.display(),
            imported
                .env
                .iter()
                .map(|(k, _)| k.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            args.env_file.display()
        );
    }
    println!("no equivalent or changed:");
    for n in &imported.notes {
        println!("  - {n}");
    }
    println!("next: b24ch --config {} check", args.out.display());
}
