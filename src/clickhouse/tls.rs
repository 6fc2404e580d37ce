//! The HTTP(S) client under the `clickhouse` crate: b24ch's own, so connecting is bounded
//! (`clickhouse.connect_timeout_secs`) and HTTPS trusts a custom CA when one is given (managed
//! clouds ship their own root certificate).
use super::error::ClickHouseError;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use std::path::Path;
use std::time::Duration;

/// A `clickhouse` client whose connections open within `connect_timeout`; its HTTPS trusts
/// exactly the CAs in `ca_file`, or the web PKI roots without one.
pub(super) fn client(
    ca_file: Option<&Path>,
    connect_timeout: Duration,
) -> Result<clickhouse::Client, ClickHouseError> {
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let builder = match ca_file {
        Some(path) => {
            let tls = rustls::ClientConfig::builder_with_provider(provider.into())
                .with_safe_default_protocol_versions()
                .map_err(|e| ClickHouseError::Tls(e.to_string()))?
                .with_root_certificates(custom_roots(path)?)
                .with_no_client_auth();
            hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls)
        }
        None => hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(provider)
            .map_err(|e| ClickHouseError::Tls(e.to_string()))?,
    };
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_keepalive(Some(Duration::from_secs(60)));
    http.set_connect_timeout(Some(connect_timeout));
    let connector = builder.https_or_http().enable_http1().wrap_connector(http);
    // ClickHouse closes idle connections after 3 s: reuse them for less than that.
    let http = HyperClient::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(2))
        .build(connector);
    Ok(clickhouse::Client::with_http_client(http))
}

fn custom_roots(ca_file: &Path) -> Result<rustls::RootCertStore, ClickHouseError> {
    let err = |reason: String| ClickHouseError::CaCert {
        path: ca_file.display().to_string(),
        reason,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(ca_file)
        .map_err(|e| err(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| err(e.to_string()))?;
    if certs.is_empty() {
        return Err(err("no certificate in the file".into()));
    }
    let mut roots = rustls::RootCertStore::empty();
    for cert in certs {
        roots.add(cert).map_err(|e| err(e.to_string()))?;
    }
    Ok(roots)
}
