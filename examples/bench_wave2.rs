//! Request cost of the second-wave CRM tables (issue #12): requests and operating seconds per
//! 1,000 rows, from the demo portal's own counters and its calibrated cost model.
//!
//! Three portals, cloud limits on (per-method batch billing): one with only deals (every deal
//! has three product rows, so `crm_productrow` is exactly "20,000 deals × 3 rows"), one with
//! quotes, invoices, products, requisites, addresses and activities (with their bindings), and a
//! third with leads, deals, contacts, companies and their timeline comments. Each table is listed
//! once, COUNT-free, as `sync` lists it.
//!
//! `cargo run --release --example bench_wave2 -- --deals 20000 --docs 20000 --time-scale 1000`
use anyhow::Context;
use b24ch::bitrix::governor::GovernorConfig;
use b24ch::bitrix::known_owners::{KnownOwners, OwnerSnapshot};
use b24ch::bitrix::{AuthConfig, Client, ClientConfig, Governor, ListRequest, list};
use b24ch::config::Secret;
use bitrix24_emulator::{
    BatchBilling, DataSizes, LimitsConfig, PortalConfig, ProductRowOwnerArrays, RunningPortal,
};
use clap::Parser;
use futures::StreamExt;
use std::sync::Arc;

#[derive(Parser, Debug)]
struct Args {
    /// Deals of the product-row portal (three rows each).
    #[arg(long, default_value_t = 20_000)]
    deals: u64,
    /// Quotes and invoices of the second portal (each).
    #[arg(long, default_value_t = 20_000)]
    docs: u64,
    /// Simulated portal seconds per real second (the governor runs on the same clock).
    #[arg(long, default_value_t = 1000.0)]
    time_scale: f64,
    /// Also measure product rows on a portal that refuses `=ownerId` arrays.
    #[arg(long)]
    no_arrays: bool,
}

struct Measured {
    table: &'static str,
    rows: u64,
    requests: u64,
    commands: u64,
    count_queries: u64,
    operating: f64,
    http_429: u64,
}

async fn portal(
    sizes: DataSizes,
    args: &Args,
    arrays: ProductRowOwnerArrays,
) -> anyhow::Result<RunningPortal> {
    let cfg = PortalConfig {
        sizes,
        limits: LimitsConfig {
            batch_billing: BatchBilling::PerMethod,
            ..LimitsConfig::default()
        },
        time_scale: args.time_scale,
        productrow_owner_arrays: arrays,
        ..PortalConfig::default()
    };
    bitrix24_emulator::start(cfg, "127.0.0.1:0".parse()?)
        .await
        .context("demo portal")
}

fn client(p: &RunningPortal, scale: f64) -> anyhow::Result<Arc<Client>> {
    let gov = Governor::new(GovernorConfig {
        clock_scale: scale,
        ..GovernorConfig::standard()
    });
    let cfg = ClientConfig::new(AuthConfig::Webhook {
        url: Secret::new(p.webhook_url()),
    });
    Ok(Arc::new(Client::new(cfg, gov)?))
}

async fn measure(
    p: &RunningPortal,
    c: &Arc<Client>,
    table: &'static str,
    method_key: &str,
    entity_type_id: Option<u32>,
) -> anyhow::Result<Measured> {
    measure_with(p, c, table, method_key, entity_type_id, None).await
}

async fn measure_with(
    p: &RunningPortal,
    c: &Arc<Client>,
    table: &'static str,
    method_key: &str,
    entity_type_id: Option<u32>,
    known_owners: Option<Arc<KnownOwners>>,
) -> anyhow::Result<Measured> {
    p.control().reset_counters();
    let req = ListRequest {
        method_key: method_key.into(),
        entity_type_id,
        known_owners,
        ..ListRequest::default()
    };
    let mut rows = 0u64;
    let mut pages = Box::pin(list(c.clone(), req));
    while let Some(page) = pages.next().await {
        rows += page?.rows.len() as u64;
    }
    let k = p.control().counters();
    if std::env::var_os("BENCH_VERBOSE").is_some() {
        eprintln!("{table}: {:?} errors {:?}", k.per_method, k.errors_by_code);
    }
    Ok(Measured {
        table,
        rows,
        requests: k.requests_total,
        commands: k
            .per_method
            .iter()
            .filter(|(m, _)| *m != "batch")
            .map(|(_, n)| n)
            .sum(),
        count_queries: k.count_queries,
        operating: k.operating_secs.values().sum(),
        http_429: k.operation_time_limit,
    })
}

/// What `crm_deal` holds after its load, as `sync::with_known_owners` reads it from
/// ClickHouse: every deal's id and modification time, complete up to the portal's clock now
/// (minus the 120 s lookback). Read here with the deal listing itself (not counted: those are
/// `crm_deal`'s own requests).
async fn deals_as_loaded(p: &RunningPortal, c: &Arc<Client>) -> anyhow::Result<KnownOwners> {
    let req = ListRequest {
        method_key: "crm.item".into(),
        entity_type_id: Some(2),
        select: vec!["id".into(), "updatedTime".into()],
        ..ListRequest::default()
    };
    let mut owners = Vec::new();
    let mut pages = Box::pin(list(c.clone(), req));
    while let Some(page) = pages.next().await {
        for row in page?.rows {
            let id = row.get("id").and_then(|v| v.as_i64()).context("deal id")?;
            owners.push((id, row.get("updatedTime").unwrap_or_default()));
        }
    }
    let now = chrono::DateTime::from_timestamp(p.control().now() as i64 - 120, 0)
        .context("portal clock")?;
    let mut known = KnownOwners::default();
    known.0.insert(
        2,
        OwnerSnapshot {
            owners,
            changed_since: now.fixed_offset(),
        },
    );
    Ok(known)
}

fn print(m: &Measured) {
    let per_k = |x: f64| 1000.0 * x / m.rows.max(1) as f64;
    println!(
        "| `{}` | {} | {} | {} | {:.2} | {:.1} | {:.2} | {} | {} |",
        m.table,
        m.rows,
        m.requests,
        m.commands,
        per_k(m.requests as f64),
        m.rows as f64 / m.requests.max(1) as f64,
        per_k(m.operating),
        m.count_queries,
        m.http_429,
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    println!(
        "| table | rows | HTTP requests | list commands | requests / 1,000 rows | rows / request | operating s / 1,000 rows | COUNT | 429 |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let only_deals = DataSizes {
        deals: args.deals,
        leads: 0,
        contacts: 100,
        companies: 100,
        activities: 0,
        smart_processes: vec![],
        quotes: 0,
        smart_invoices: 0,
        ..DataSizes::default()
    };
    let mut variants = vec![ProductRowOwnerArrays::Accepted];
    if args.no_arrays {
        variants.push(ProductRowOwnerArrays::Rejected);
    }
    for v in variants {
        let p = portal(only_deals.clone(), &args, v).await?;
        let c = client(&p, args.time_scale)?;
        let mut m = measure(&p, &c, "crm_productrow", "crm.item.productrow", None).await?;
        if v == ProductRowOwnerArrays::Rejected {
            m.table = "crm_productrow (one owner per command)";
        }
        print(&m);
        if v == ProductRowOwnerArrays::Accepted {
            let known = deals_as_loaded(&p, &c).await?;
            let m = measure_with(
                &p,
                &c,
                "crm_productrow (owners from crm_deal's table)",
                "crm.item.productrow",
                None,
                Some(Arc::new(known)),
            )
            .await?;
            print(&m);
        }
    }
    let docs = DataSizes {
        deals: 100,
        leads: 0,
        contacts: 100,
        companies: 100,
        smart_processes: vec![],
        quotes: args.docs,
        smart_invoices: args.docs,
        products: args.docs,
        product_sections: 50,
        requisites: args.docs,
        requisite_banks: args.docs,
        addresses: args.docs,
        activities: args.docs,
        timeline_comments: 0,
        ..DataSizes::default()
    };
    let p = portal(docs, &args, ProductRowOwnerArrays::Accepted).await?;
    let c = client(&p, args.time_scale)?;
    for (table, key, eid) in [
        ("crm_quote", "crm.item", Some(7)),
        ("crm_smart_invoice", "crm.item", Some(31)),
        (
            "crm_stagehistory_smart_invoice",
            "crm.stagehistory",
            Some(31),
        ),
        ("crm_product", "crm.product", None),
        ("crm_product_section", "crm.productsection", None),
        ("crm_requisite", "crm.requisite", None),
        ("crm_requisite_bank", "crm.requisite.bankdetail", None),
        ("crm_address", "crm.address", None),
        ("crm_activity_binding", "crm.activity.binding", None),
    ] {
        print(&measure(&p, &c, table, key, eid).await?);
    }
    // Comments: one command per owner (leads, deals, contacts, companies), so the cost follows
    // the owners, not the comments; a smaller portal (the demo portal scans its comments for
    // every owner's call).
    let owners = args.docs / 10;
    let comments = DataSizes {
        deals: owners / 2,
        leads: owners / 8,
        contacts: owners / 4,
        companies: owners / 8,
        activities: 0,
        smart_processes: vec![],
        quotes: 0,
        smart_invoices: 0,
        timeline_comments: owners * 5 / 4,
        ..DataSizes::default()
    };
    let p = portal(comments, &args, ProductRowOwnerArrays::Accepted).await?;
    let c = client(&p, args.time_scale)?;
    print(&measure(&p, &c, "crm_timeline_comment", "crm.timeline.comment", None).await?);
    Ok(())
}
