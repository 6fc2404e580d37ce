use super::*;

fn err(text: &str) -> ConfigError {
    match from_toml_str(text) {
        Ok(_) => panic!("config should have been rejected:\n{text}"),
        Err(e) => e,
    }
}

#[test]
fn empty_config_means_demo_portal_and_local_defaults() {
    let c = from_toml_str("").unwrap();
    assert!(matches!(c.portal, PortalAuth::Demo));
    assert_eq!(c.limits.plan, Plan::Standard);
    assert_eq!(c.limits.requests_per_second, Some(2.0));
    assert_eq!(c.limits.operating_seconds_per_10min, Some(480.0));
    assert_eq!(c.clickhouse.database, "b24");
    assert_eq!(c.entity("crm_deal").schedule.sql(), "5 MINUTE");
}

#[test]
fn example_config_is_valid() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config_example.toml"))
        .unwrap();
    // SAFETY of the test: the example reads these from the environment.
    unsafe {
        std::env::set_var("B24CH_EXAMPLE_CH_PASSWORD", "pw");
        std::env::set_var("B24CH_EXAMPLE_PROXY_TOKEN", "0123456789abcdef0123");
    }
    let c = from_toml_str(&text).unwrap();
    assert!(matches!(c.portal, PortalAuth::Webhook { .. }));
    assert_eq!(c.entity("crm_deal").schedule.sql(), "5 MINUTE");
    assert_eq!(c.entity("crm_timeline_comment").schedule.sql(), "1 DAY");
    assert_eq!(c.clickhouse.password.expose(), "pw");
}

#[test]
fn tables_listed_whole_per_owner_load_hourly_unless_configured() {
    let c = from_toml_str("").unwrap();
    assert_eq!(c.entity("crm_timeline_comment").schedule.sql(), "1 HOUR");
    assert_eq!(c.entity("crm_activity_binding").schedule.sql(), "1 HOUR");
    // Their other settings are the defaults.
    assert_eq!(
        c.entity("crm_timeline_comment").reconcile_schedule.sql(),
        "1 HOUR"
    );
    let c = from_toml_str(
        "[entities.crm_timeline_comment]\nschedule = \"10 MINUTE\"\n[entities.crm_activity_binding]\nenabled = false\n",
    )
    .unwrap();
    assert_eq!(c.entity("crm_timeline_comment").schedule.sql(), "10 MINUTE");
    assert_eq!(c.entity("crm_activity_binding").schedule.sql(), "1 HOUR");
    assert!(!c.entity("crm_activity_binding").enabled);
    let c = from_toml_str("[entities.default]\nschedule = \"15 MINUTE\"\n").unwrap();
    assert_eq!(c.entity("crm_timeline_comment").schedule.sql(), "15 MINUTE");
}

#[test]
fn per_entity_settings_inherit_from_default() {
    let c = from_toml_str(
        "[entities.default]\nschedule = \"1 HOUR\"\n[entities.crm_deal]\nschedule = \"5 minutes\"\n[entities.user]\nenabled = false\n",
    )
    .unwrap();
    assert_eq!(c.entity("crm_deal").schedule.sql(), "5 MINUTE");
    assert_eq!(c.entity("user").schedule.sql(), "1 HOUR");
    assert!(!c.entity("user").enabled);
    assert_eq!(c.entity("crm_lead").schedule.sql(), "1 HOUR");
}

#[test]
fn unknown_key_is_named() {
    let e = err("[clickhouse]\nurll = \"http://x\"\n");
    assert!(e.to_string().contains("urll"), "{e}");
}

#[test]
fn bad_schedule_names_the_key() {
    let e = err("[entities.crm_deal]\nschedule = \"every five minutes\"\n");
    assert_eq!(e.key, "entities.crm_deal.schedule");
    assert!(e.problem.contains("5 MINUTE"), "{e}");
    let e = err("[entities.crm_deal]\nschedule = \"5 FORTNIGHT\"\n");
    assert!(e.problem.contains("unknown unit"), "{e}");
}

#[test]
fn bad_webhook_url_is_explained() {
    let e = err("[portal]\nwebhook_url = \"https://example.bitrix24.com/\"\n");
    assert_eq!(e.key, "portal.webhook_url");
    assert!(e.problem.contains("/rest/1/"), "{e}");
}

#[test]
fn webhook_and_oauth_together_are_rejected() {
    let e = err(
        "[portal]\nwebhook_url = \"https://a.bitrix24.com/rest/1/x/\"\n[portal.oauth]\nclient_id = \"a\"\n",
    );
    assert_eq!(e.key, "portal");
}

#[test]
fn oauth_requires_every_part() {
    let e =
        err("[portal.oauth]\nportal_url = \"https://a.bitrix24.com\"\nclient_id = \"local.1\"\n");
    assert_eq!(e.key, "portal.oauth.client_secret");
}

#[test]
fn missing_env_secret_is_named() {
    let e = err("[clickhouse]\npassword = \"env:B24CH_TEST_SURELY_UNSET_VAR\"\n");
    assert_eq!(e.key, "clickhouse.password");
    assert!(e.problem.contains("B24CH_TEST_SURELY_UNSET_VAR"), "{e}");
}

#[test]
fn bad_limits_are_rejected() {
    assert_eq!(err("[limits]\nplan = \"gold\"\n").key, "limits.plan");
    assert_eq!(
        err("[limits]\nrequests_per_second = -1.0\n").key,
        "limits.requests_per_second"
    );
    assert_eq!(
        err("[limits]\noperating_seconds_per_10min = 900.0\n").key,
        "limits.operating_seconds_per_10min"
    );
}

#[test]
fn bad_clickhouse_settings_are_rejected() {
    assert_eq!(
        err("[clickhouse]\nurl = \"tcp://x:9000\"\n").key,
        "clickhouse.url"
    );
    assert_eq!(
        err("[clickhouse]\nurl = \"http://x:8123\"\nsecure = true\n").key,
        "clickhouse.secure"
    );
    assert_eq!(
        err("[clickhouse]\nca_cert = \"/surely/not/here.pem\"\n").key,
        "clickhouse.ca_cert"
    );
    assert_eq!(
        err("[clickhouse]\ndatabase = \"b24; DROP\"\n").key,
        "clickhouse.database"
    );
}

#[test]
fn short_proxy_token_and_bad_listen_are_rejected() {
    assert_eq!(err("[proxy]\ntoken = \"short\"\n").key, "proxy.token");
    assert_eq!(err("[proxy]\nlisten = \"localhost\"\n").key, "proxy.listen");
}

#[test]
fn field_selection_is_validated() {
    let e = err("[entities.crm_deal]\nfields = [\"TITLE\", \"x; DROP\"]\n");
    assert_eq!(e.key, "entities.crm_deal.fields");
}

#[test]
fn secrets_are_listed_for_redaction() {
    let c = from_toml_str(
        "[portal]\nwebhook_url = \"https://a.bitrix24.com/rest/1/secretcode123/\"\n[proxy]\ntoken = \"0123456789abcdef0123\"\n",
    )
    .unwrap();
    let text = format!("{c:?}");
    assert!(!text.contains("secretcode123"), "Debug leaks: {text}");
    assert!(
        !text.contains("0123456789abcdef0123"),
        "Debug leaks: {text}"
    );
    assert!(
        c.secrets()
            .iter()
            .any(|s| s.expose().contains("secretcode123"))
    );
}

#[test]
fn tls_files_make_serve_https_and_public_url_default_to_https() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
    std::fs::write(&cert, "x").unwrap();
    std::fs::write(&key, "x").unwrap();
    let tls = format!(
        "[proxy]\nlisten = \"0.0.0.0:8443\"\ntls_cert = {:?}\ntls_key = {:?}\n",
        cert.display().to_string(),
        key.display().to_string()
    );
    let c = from_toml_str(&tls).unwrap();
    assert_eq!(c.proxy.public_url, "https://0.0.0.0:8443");
    assert_eq!(
        c.proxy.transport,
        Transport::Tls(TlsFiles {
            cert: cert.clone(),
            key: key.clone()
        })
    );
    assert_eq!(c.proxy.exposure(), Exposure::Tls);
    let e = err(&format!(
        "{tls}public_url = \"http://b24ch.example.com:8443\"\n"
    ));
    assert_eq!(e.key, "proxy.public_url");
    assert!(e.problem.contains("https://"), "{e}");
    let e = err(&format!("{tls}allow_plain_http = true\n"));
    assert_eq!(e.key, "proxy.allow_plain_http");
    let only_cert = format!("[proxy]\ntls_cert = {:?}\n", cert.display().to_string());
    assert_eq!(err(&only_cert).key, "proxy.tls_key");
    let only_key = format!("[proxy]\ntls_key = {:?}\n", key.display().to_string());
    assert_eq!(err(&only_key).key, "proxy.tls_cert");
    let missing =
        "[proxy]\ntls_cert = \"/surely/not/here.pem\"\ntls_key = \"/surely/not/here.key\"\n";
    let e = err(missing);
    assert_eq!(e.key, "proxy.tls_cert");
    assert!(e.problem.contains("/surely/not/here.pem"), "{e}");
}

#[test]
fn plain_http_is_refused_on_a_network_address_unless_allowed() {
    let exposure = |text: &str| from_toml_str(text).unwrap().proxy.exposure();
    assert_eq!(exposure(""), Exposure::Loopback);
    assert_eq!(
        exposure("[proxy]\nlisten = \"[::1]:8480\"\n"),
        Exposure::Loopback
    );
    assert_eq!(
        exposure("[proxy]\nlisten = \"0.0.0.0:8480\"\n"),
        Exposure::PlainRefused
    );
    assert_eq!(
        exposure("[proxy]\nlisten = \"10.1.2.3:8480\"\nallow_plain_http = true\n"),
        Exposure::PlainAllowed
    );
    let c = from_toml_str("[proxy]\nlisten = \"0.0.0.0:8480\"\n").unwrap();
    assert_eq!(c.proxy.public_url, "http://0.0.0.0:8480");
    let risk = c.proxy.plain_http_risk();
    assert!(
        risk.contains("proxy.tls_cert") && risk.contains("proxy.allow_plain_http"),
        "{risk}"
    );
}

#[test]
fn plain_http_portal_urls_only_to_loopback() {
    for url in [
        "http://example.bitrix24.com/rest/1/abc/",
        "http://10.0.0.5:8080/rest/1/abc/",
        "http://127.0.0.1.evil.com/rest/1/abc/",
        "http://user@portal.example/rest/1/abc/",
    ] {
        let e = err(&format!("[portal]\nwebhook_url = \"{url}\"\n"));
        assert_eq!(e.key, "portal.webhook_url", "{url}");
        assert!(e.problem.contains("https://"), "{}", e.problem);
        assert!(!e.to_string().contains("abc"), "secret echoed: {e}");
    }
    for url in [
        "http://127.0.0.1:8123/rest/1/abc/",
        "http://localhost/rest/1/abc/",
        "http://[::1]:9/rest/1/abc/",
        "https://example.bitrix24.com/rest/1/abc/",
    ] {
        assert!(
            super::from_toml_str(&format!("[portal]\nwebhook_url = \"{url}\"\n")).is_ok(),
            "{url}"
        );
    }
    let e = err(
        "[portal.oauth]\nportal_url = \"http://a.bitrix24.com\"\nclient_id = \"a\"\nclient_secret = \"b\"\naccess_token = \"c\"\nrefresh_token = \"d\"\n",
    );
    assert_eq!(e.key, "portal.oauth.portal_url");
}

#[test]
fn mass_delete_guard_settings() {
    use super::DeleteGuard;
    let c = super::from_toml_str(
        "[entities.default]\nmax_delete_percent = 20\n[entities.crm_deal]\nallow_mass_delete = true\n[entities.crm_lead]\nmax_delete_rows = 5\n",
    )
    .unwrap();
    assert_eq!(c.entity("crm_deal").delete_guard, DeleteGuard::Off);
    assert_eq!(
        c.entity("crm_lead").delete_guard,
        DeleteGuard::Limit {
            percent: 20.0,
            rows: 5
        }
    );
    assert_eq!(
        c.entity("crm_contact").delete_guard,
        DeleteGuard::Limit {
            percent: 20.0,
            rows: 100
        }
    );
    let g = DeleteGuard::DEFAULT;
    assert!(!g.refuses(0, 0));
    assert!(g.refuses(1, 1), "every row");
    assert!(!g.refuses(100, 200), "not more than 100 rows");
    assert!(
        g.refuses(101, 1000),
        "more than 10 % and more than 100 rows"
    );
    assert!(!g.refuses(101, 1010), "exactly 10 %");
    assert!(!DeleteGuard::Off.refuses(5, 5));
    let e = err("[entities.crm_deal]\nmax_delete_percent = 0\n");
    assert_eq!(e.key, "entities.crm_deal.max_delete_percent");
}
