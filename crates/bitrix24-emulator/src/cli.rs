//! `b24ch demo-portal`: run the emulator until Ctrl-C.

use std::net::SocketAddr;

use super::config::{
    BatchBilling, NestedFigures, PortalConfig, SmartProcessSpec, SmartStageHistory,
};
use super::error::DemoPortalError;
use super::running::start;

/// Command-line options of `b24ch demo-portal`.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoPortalArgs {
    /// Address to listen on (port 0 = any free port).
    #[arg(long, default_value = "127.0.0.1:8024")]
    pub listen: SocketAddr,
    /// Seed of the generated data.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    #[arg(long)]
    pub deals: Option<u64>,
    #[arg(long)]
    pub leads: Option<u64>,
    #[arg(long)]
    pub contacts: Option<u64>,
    #[arg(long)]
    pub companies: Option<u64>,
    #[arg(long)]
    pub users: Option<u64>,
    #[arg(long)]
    pub activities: Option<u64>,
    /// Number of smart processes (each with --smart-process-items items).
    #[arg(long)]
    pub smart_processes: Option<u32>,
    #[arg(long, default_value_t = 60)]
    pub smart_process_items: u64,
    /// Simulated seconds per real second.
    #[arg(long, default_value_t = 1.0)]
    pub time_scale: f64,
    /// Disable the request-rate and operating-time limits.
    #[arg(long)]
    pub no_limits: bool,
    /// How a `batch` is billed against the operating-time limit.
    #[arg(long, value_enum, default_value_t = BatchBilling::PerMethod)]
    pub batch_billing: BatchBilling,
    /// What `operating` the nested `result_time` entries of a batch report.
    #[arg(long, value_enum, default_value_t = NestedFigures::Own)]
    pub nested_figures: NestedFigures,
    /// Factor on every operating-cost coefficient (0.5–2).
    #[arg(long, default_value_t = 1.0)]
    pub cost_scale: f64,
    /// Webhook secret code (URL = /rest/1/<code>/).
    #[arg(long)]
    pub webhook_code: Option<String>,
    /// Portal UTC offset in seconds.
    #[arg(long, default_value_t = 10_800, allow_hyphen_values = true)]
    pub utc_offset_secs: i32,
    /// A method this portal lacks (answers ERROR_METHOD_NOT_FOUND), e.g. crm.currency.list;
    /// repeatable.
    #[arg(long = "missing-method", value_name = "METHOD")]
    pub missing_methods: Vec<String>,
    /// How crm.stagehistory.list answers for smart processes: supported,
    /// entity_type_not_supported, legacy_zero or not_found.
    #[arg(long, default_value = "supported", value_parser = parse_stage_history)]
    pub smart_stage_history: SmartStageHistory,
    /// A scope the webhook lacks (its methods answer insufficient_scope): crm, user,
    /// department, task, telephony, sonet_group; repeatable.
    #[arg(long = "deny-scope", value_name = "SCOPE")]
    pub denied_scopes: Vec<String>,
}

fn parse_stage_history(s: &str) -> Result<SmartStageHistory, String> {
    SmartStageHistory::parse(s).ok_or_else(|| {
        format!("`{s}`: use supported, entity_type_not_supported, legacy_zero or not_found")
    })
}

impl DemoPortalArgs {
    pub fn to_config(&self) -> PortalConfig {
        let mut cfg = PortalConfig {
            seed: self.seed,
            time_scale: self.time_scale,
            utc_offset_secs: self.utc_offset_secs,
            ..PortalConfig::default()
        };
        let s = &mut cfg.sizes;
        for (dst, src) in [
            (&mut s.deals, self.deals),
            (&mut s.leads, self.leads),
            (&mut s.contacts, self.contacts),
            (&mut s.companies, self.companies),
            (&mut s.users, self.users),
            (&mut s.activities, self.activities),
        ] {
            if let Some(v) = src {
                *dst = v;
            }
        }
        if let Some(n) = self.smart_processes {
            s.smart_processes = (0..n)
                .map(|i| SmartProcessSpec {
                    entity_type_id: 128 + 2 * i,
                    title: format!("Смарт-процесс {}", i + 1),
                    items: self.smart_process_items,
                })
                .collect();
        } else {
            for sp in s.smart_processes.iter_mut() {
                sp.items = self.smart_process_items;
            }
        }
        cfg.limits.enabled = !self.no_limits;
        cfg.missing_methods = self.missing_methods.clone();
        cfg.smart_stage_history = self.smart_stage_history;
        cfg.denied_scopes = self.denied_scopes.clone();
        cfg.limits.batch_billing = self.batch_billing;
        cfg.limits.nested_figures = self.nested_figures;
        cfg.cost.scale = self.cost_scale;
        if let Some(code) = &self.webhook_code {
            cfg.webhook_code = code.clone();
        }
        cfg
    }
}

/// Start the demo portal, print its webhook URL and block until Ctrl-C.
pub async fn run_cli(args: DemoPortalArgs) -> Result<(), DemoPortalError> {
    let portal = start(args.to_config(), args.listen).await?;
    println!("Demo Bitrix24 portal is running.");
    println!("Webhook URL: {}", portal.webhook_url());
    println!(
        "Control API: {}/_control/ (counters, ground_truth, catalog, faults, ...)",
        portal.base_url()
    );
    println!("Press Ctrl-C to stop.");
    if let Err(e) = tokio::signal::ctrl_c().await {
        tracing::warn!(error = %e, "cannot listen for Ctrl-C; stopping");
    }
    portal.shutdown().await;
    Ok(())
}
