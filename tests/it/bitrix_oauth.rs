//! OAuth against the demo portal: access tokens expire mid-listing, are refreshed once for all
//! concurrent callers (the portal rotates the refresh token, so a second refresh with the old
//! one would fail), and the rotated pair is persisted for the next process.
//!
//! The tests age the tokens by moving the portal's clock between pages: expiry happens at
//! known points whatever the machine's speed (a token that lives shorter than one request on
//! a busy machine would expire forever), and a token's lifetime is long in real time.
use b24ch::bitrix::governor::GovernorConfig;
use b24ch::bitrix::{AuthConfig, Client, ClientConfig, Governor, ListRequest, OAuthConfig, list};
use b24ch::config::Secret;
use bitrix24_emulator::{DataSizes, PortalConfig, RunningPortal};
use futures::StreamExt;
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;

const SCALE: f64 = 100.0;
/// The access token's lifetime in portal seconds (36 s real at [`SCALE`]).
const TTL: f64 = 3_600.0;

async fn portal(deals: u64) -> RunningPortal {
    let mut cfg = PortalConfig {
        sizes: DataSizes {
            deals,
            leads: deals,
            ..DataSizes::default()
        },
        time_scale: SCALE,
        ..Default::default()
    };
    cfg.oauth.access_token_ttl_secs = TTL;
    bitrix24_emulator::start(cfg, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

fn oauth_client(p: &RunningPortal, state_dir: Option<&Path>) -> Arc<Client> {
    let o = p.control().config().oauth;
    let cfg = ClientConfig::new(AuthConfig::OAuth(OAuthConfig {
        portal_url: p.base_url(),
        client_id: o.client_id,
        client_secret: Secret::new(o.client_secret),
        access_token: Secret::new(o.access_token),
        refresh_token: Secret::new(o.refresh_token),
        oauth_server: p.base_url(),
        state_dir: state_dir.map(Path::to_path_buf),
    }));
    let gov = Governor::new(GovernorConfig {
        clock_scale: SCALE,
        ..GovernorConfig::standard()
    });
    Arc::new(Client::new(cfg, gov).unwrap())
}

fn id_of(row: &serde_json::Map<String, Value>) -> u64 {
    match row.get("id").or_else(|| row.get("ID")).unwrap() {
        Value::Number(n) => n.as_u64().unwrap(),
        Value::String(s) => s.parse().unwrap(),
        other => panic!("{other}"),
    }
}

/// Lists everything. With `age`, after every 25 pages (half a batch chain) the portal's clock
/// moves past the token's lifetime, so the next request of every listing meets an expired
/// token. One listing ages the clock: a token never expires twice between a caller's
/// refresh and its retry, as with real lifetimes.
/// How many `expired_token` errors the portal answered, with its counters for messages.
fn expired_tokens(p: &RunningPortal) -> (u64, bitrix24_emulator::Counters) {
    let counters = p.control().counters();
    let expired = counters
        .errors_by_code
        .get("expired_token")
        .copied()
        .unwrap_or(0);
    (expired, counters)
}

async fn ids(p: &RunningPortal, client: Arc<Client>, req: ListRequest, age: bool) -> Vec<u64> {
    let mut out = Vec::new();
    let mut s = Box::pin(list(client, req));
    let mut pages = 0;
    while let Some(page) = s.next().await {
        out.extend(page.unwrap().rows.iter().map(|r| id_of(&r.to_map())));
        pages += 1;
        if age && pages % 25 == 0 {
            p.control().advance_clock(TTL + 1.0);
        }
    }
    out
}

fn truth(p: &RunningPortal, table: &str) -> Vec<u64> {
    p.control()
        .ground_truth(table)
        .unwrap()
        .iter()
        .map(id_of)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_expiring_mid_listing_is_refreshed_once_and_persisted() {
    // Two chains per listing, the token aged between them: it expires several times.
    let p = portal(5_000).await;
    let dir = tempfile::tempdir().unwrap();
    let c = oauth_client(&p, Some(dir.path()));
    let deals = ListRequest {
        method_key: "crm.item".into(),
        entity_type_id: Some(2),
        ..Default::default()
    };
    let leads = ListRequest {
        method_key: "crm.lead".into(),
        ..Default::default()
    };
    // Two concurrent listings hit the expiry together: a second refresh with the rotated-away
    // refresh token would fail with invalid_grant and break a listing.
    let (d, l) = tokio::join!(
        ids(&p, c.clone(), deals, true),
        ids(&p, c.clone(), leads, false)
    );
    assert_eq!(d, truth(&p, "deal"));
    assert_eq!(l, truth(&p, "lead"));
    let (expired, counters) = expired_tokens(&p);
    assert!(expired >= 1, "the token never expired: {counters:?}");

    // The rotated pair is on disk, owner-only, and a new process starting from the original
    // config uses it.
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .filter(|f| !f.file_name().to_string_lossy().ends_with(".lock"))
        .collect();
    assert_eq!(
        files.len(),
        1,
        "exactly the token file (and its lock), no temp left"
    );
    let stored: Value = serde_json::from_slice(&std::fs::read(files[0].path()).unwrap()).unwrap();
    let original = p.control().config().oauth.refresh_token;
    assert_ne!(stored["refresh_token"], Value::String(original));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = files[0].metadata().unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    p.control().advance_clock(TTL + 100.0);
    let next = oauth_client(&p, Some(dir.path()));
    let r = next
        .call(
            "crm.lead.list",
            &serde_json::json!({"select": ["ID"], "start": -1}),
        )
        .await
        .unwrap();
    assert!(r.result.as_array().is_some_and(|a| !a.is_empty()));

    // Without the persisted pair the original refresh token is dead: rotation really happened.
    let stale = oauth_client(&p, None);
    let err = stale
        .call("crm.lead.list", &serde_json::json!({"start": -1}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("invalid_grant"), "{err}");
    let text = format!("{err} {err:?}");
    assert!(!text.contains("demo-client-secret") && !text.contains("demorefreshtoken"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_sharing_one_app_never_lose_access() {
    // Tokens aged mid-listing; three "processes" (separate clients, each with its own tokens
    // in memory) share one token file. The portal rotates the refresh token on every refresh,
    // so whoever refreshes second with the pair it started with would get invalid_grant.
    let p = portal(5_000).await;
    let dir = tempfile::tempdir().unwrap();
    let clients: Vec<Arc<Client>> = (0..3).map(|_| oauth_client(&p, Some(dir.path()))).collect();
    let req = |key: &str| ListRequest {
        method_key: key.into(),
        entity_type_id: Some(2),
        ..Default::default()
    };
    let (a, b, c) = tokio::join!(
        ids(&p, clients[0].clone(), req("crm.item"), true),
        ids(&p, clients[1].clone(), req("crm.lead"), false),
        ids(&p, clients[2].clone(), req("crm.item"), false),
    );
    assert_eq!(a, truth(&p, "deal"));
    assert_eq!(b, truth(&p, "lead"));
    assert_eq!(c, truth(&p, "deal"));
    // Every process still works after the others rotated the pair again.
    p.control().advance_clock(TTL + 1.0);
    for c in &clients {
        c.call(
            "crm.lead.list",
            &serde_json::json!({"select": ["ID"], "start": -1}),
        )
        .await
        .unwrap();
    }
    // Each process met an expired token at least once (the last round makes sure of it).
    let (expired, counters) = expired_tokens(&p);
    assert!(
        expired >= 3,
        "tokens did not expire often enough: {counters:?}"
    );
}
