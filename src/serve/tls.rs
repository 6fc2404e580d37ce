//! HTTPS for `serve`: rustls (TLS 1.2 and 1.3 on aws-lc-rs, the project's one crypto provider)
//! with the certificate chain and key read from PEM files, and re-read when the files change so
//! a renewed certificate is served without a restart.
use crate::config::TlsFiles;
use chrono::{DateTime, Utc};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::sync::{Arc, RwLock};

/// Why the certificate or key cannot be served; each names the config key and what to do.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TlsError {
    #[error(
        "config error in `proxy.tls_cert`: {path}: {reason}; give the server certificate as PEM (`-----BEGIN CERTIFICATE-----`, the chain may follow it)"
    )]
    Cert { path: String, reason: String },
    #[error(
        "config error in `proxy.tls_key`: {path}: {reason}; give the certificate's private key as PEM (PKCS#8, PKCS#1 or SEC1)"
    )]
    Key { path: String, reason: String },
    #[error(
        "config error in `proxy.tls_key`: {key} is not the private key of the certificate in {cert} ({reason}); give the key the certificate was issued for"
    )]
    Mismatch {
        cert: String,
        key: String,
        reason: String,
    },
}

/// What the server certificate says about itself (for logs and `b24ch check`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    pub subject: String,
    /// DNS names and IP addresses of the subjectAltName extension.
    pub names: Vec<String>,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
}

impl CertInfo {
    pub fn parse(der: &[u8]) -> Result<Self, String> {
        use x509_parser::extensions::GeneralName;
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| format!("not an X.509 certificate: {e}"))?;
        let time = |t: &x509_parser::time::ASN1Time| {
            DateTime::from_timestamp(t.timestamp(), 0)
                .ok_or_else(|| format!("validity time {t} is out of range"))
        };
        let names = match cert.subject_alternative_name() {
            Ok(Some(san)) => san
                .value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::DNSName(d) => Some((*d).to_string()),
                    GeneralName::IPAddress(ip) => ip_text(ip),
                    _ => None,
                })
                .collect(),
            Ok(None) => Vec::new(),
            Err(e) => return Err(format!("unreadable subjectAltName: {e}")),
        };
        Ok(Self {
            subject: cert.subject().to_string(),
            names,
            not_before: time(&cert.validity().not_before)?,
            not_after: time(&cert.validity().not_after)?,
        })
    }

    pub fn valid_at(&self, now: DateTime<Utc>) -> bool {
        self.not_before <= now && now <= self.not_after
    }

    /// A warning when the certificate is not valid now or expires within two weeks.
    pub fn validity_problem(&self, now: DateTime<Utc>) -> Option<String> {
        let until = self.not_after.format("%Y-%m-%d %H:%M UTC");
        if now < self.not_before {
            Some(format!(
                "the certificate is not valid before {}",
                self.not_before.format("%Y-%m-%d %H:%M UTC")
            ))
        } else if now > self.not_after {
            Some(format!(
                "the certificate expired on {until}; ClickHouse will refuse it"
            ))
        } else if self.not_after - now < chrono::Duration::days(14) {
            Some(format!(
                "the certificate expires on {until}; renew it (serve picks up the new files by itself)"
            ))
        } else {
            None
        }
    }
}

fn ip_text(raw: &[u8]) -> Option<String> {
    match raw.len() {
        4 => <[u8; 4]>::try_from(raw)
            .ok()
            .map(|b| std::net::Ipv4Addr::from(b).to_string()),
        16 => <[u8; 16]>::try_from(raw)
            .ok()
            .map(|b| std::net::Ipv6Addr::from(b).to_string()),
        _ => None,
    }
}

/// Whether the end-entity certificate is valid for `host` (a DNS name or an IP address), by
/// the same rules a TLS client applies (webpki: subjectAltName, wildcards).
pub fn covers(end_entity: &[u8], host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let Ok(name) = ServerName::try_from(host) else {
        return false;
    };
    let der = CertificateDer::from(end_entity);
    webpki::EndEntityCert::try_from(&der)
        .and_then(|c| c.verify_is_valid_for_subject_name(&name))
        .is_ok()
}

/// A certificate chain and key, parsed and checked to belong together.
#[derive(Debug)]
pub struct ServerCert {
    pub key: Arc<CertifiedKey>,
    pub info: CertInfo,
}

impl ServerCert {
    /// Reads both files (errors name the key and the path).
    pub fn read(files: &TlsFiles) -> Result<Self, TlsError> {
        let (cert_pem, key_pem) = read_pair(files)?;
        Self::from_pem(files, &cert_pem, &key_pem)
    }

    /// Whether the certificate is valid for `host` (see [`covers`]).
    pub fn covers(&self, host: &str) -> bool {
        self.key
            .end_entity_cert()
            .is_ok_and(|der| covers(der, host))
    }

    /// Parses the PEM texts of `files`.
    pub fn from_pem(files: &TlsFiles, cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, TlsError> {
        let cert_path = files.cert.display().to_string();
        let key_path = files.key.display().to_string();
        let cert_err = |reason: String| TlsError::Cert {
            path: cert_path.clone(),
            reason,
        };
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<Result<_, _>>()
            .map_err(|e| cert_err(format!("unreadable PEM: {e}")))?;
        let Some(end_entity) = chain.first() else {
            return Err(cert_err("no CERTIFICATE block in the file".into()));
        };
        let info = CertInfo::parse(end_entity).map_err(cert_err)?;
        let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| TlsError::Key {
            path: key_path.clone(),
            reason: format!("no private key found ({e})"),
        })?;
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        let key =
            CertifiedKey::from_der(chain, key, &provider).map_err(|e| TlsError::Mismatch {
                cert: cert_path.clone(),
                key: key_path.clone(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            key: Arc::new(key),
            info,
        })
    }
}

/// The PEM texts of the certificate and key files.
fn read_pair(files: &TlsFiles) -> Result<(Vec<u8>, Vec<u8>), TlsError> {
    let reason = |e: std::io::Error| format!("cannot read it: {e}");
    let cert = std::fs::read(&files.cert).map_err(|e| TlsError::Cert {
        path: files.cert.display().to_string(),
        reason: reason(e),
    })?;
    let key = std::fs::read(&files.key).map_err(|e| TlsError::Key {
        path: files.key.display().to_string(),
        reason: reason(e),
    })?;
    Ok((cert, key))
}

/// The certificate `serve` presents, swapped in place when its files change.
#[derive(Debug)]
pub struct ReloadingCert {
    files: TlsFiles,
    current: RwLock<Current>,
}

#[derive(Debug)]
struct Current {
    cert: Arc<CertifiedKey>,
    info: CertInfo,
    /// The file contents it came from, to notice a change without trusting timestamps.
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
}

/// What a look at the files found.
#[derive(Debug)]
pub enum Reload {
    Unchanged,
    /// The new certificate is being served.
    Reloaded(CertInfo),
    /// The files changed but cannot be served (e.g. a renewal half written); the previous
    /// certificate stays.
    Rejected(TlsError),
}

impl ReloadingCert {
    pub fn load(files: &TlsFiles) -> Result<Self, TlsError> {
        let (cert_pem, key_pem) = read_pair(files)?;
        let parsed = ServerCert::from_pem(files, &cert_pem, &key_pem)?;
        Ok(Self {
            files: files.clone(),
            current: RwLock::new(Current {
                cert: parsed.key,
                info: parsed.info,
                cert_pem,
                key_pem,
            }),
        })
    }

    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    pub fn info(&self) -> CertInfo {
        self.read_current().info.clone()
    }

    fn read_current(&self) -> std::sync::RwLockReadGuard<'_, Current> {
        // A panic while holding the lock cannot leave `Current` half written (it is replaced
        // whole), so a poisoned lock is still a good certificate.
        self.current.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Serves the given file contents if they differ from the current ones and are valid.
    pub fn update(&self, cert_pem: Vec<u8>, key_pem: Vec<u8>) -> Reload {
        {
            let cur = self.read_current();
            if cur.cert_pem == cert_pem && cur.key_pem == key_pem {
                return Reload::Unchanged;
            }
        }
        match ServerCert::from_pem(&self.files, &cert_pem, &key_pem) {
            Ok(parsed) => {
                let info = parsed.info.clone();
                let mut cur = self.current.write().unwrap_or_else(|e| e.into_inner());
                *cur = Current {
                    cert: parsed.key,
                    info: parsed.info,
                    cert_pem,
                    key_pem,
                };
                Reload::Reloaded(info)
            }
            Err(e) => Reload::Rejected(e),
        }
    }

    /// Reads the files again and serves them if they changed (see [`Self::update`]).
    pub async fn reload_if_changed(self: &Arc<Self>) -> Reload {
        let this = self.clone();
        match tokio::task::spawn_blocking(move || read_pair(&this.files)).await {
            Ok(Ok((cert, key))) => self.update(cert, key),
            Ok(Err(e)) => Reload::Rejected(e),
            Err(e) => Reload::Rejected(TlsError::Cert {
                path: self.files.cert.display().to_string(),
                reason: format!("reading was interrupted: {e}"),
            }),
        }
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.read_current().cert.clone())
    }
}

/// rustls server settings: TLS 1.3 and 1.2 only, HTTP/1.1, the reloading certificate.
pub fn server_config(cert: Arc<ReloadingCert>) -> Result<rustls::ServerConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(cert);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, KeyPair};

    fn cert(names: &[&str], days: (i64, i64)) -> (String, String) {
        let mut params =
            CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now + time::Duration::days(days.0);
        params.not_after = now + time::Duration::days(days.1);
        let key = KeyPair::generate().unwrap();
        let c = params.self_signed(&key).unwrap();
        (c.pem(), key.serialize_pem())
    }

    fn files() -> TlsFiles {
        TlsFiles {
            cert: "cert.pem".into(),
            key: "key.pem".into(),
        }
    }

    #[test]
    fn reads_names_and_dates_and_checks_coverage() {
        let (c, k) = cert(
            &["b24ch.example.com", "*.example.org", "10.0.0.7"],
            (-1, 30),
        );
        let parsed = ServerCert::from_pem(&files(), c.as_bytes(), k.as_bytes()).unwrap();
        assert_eq!(
            parsed.info.names,
            ["b24ch.example.com", "*.example.org", "10.0.0.7"]
        );
        assert!(parsed.info.validity_problem(Utc::now()).is_none());
        let der = parsed.key.end_entity_cert().unwrap().to_vec();
        assert!(covers(&der, "b24ch.example.com"));
        assert!(covers(&der, "x.example.org"));
        assert!(covers(&der, "10.0.0.7"));
        assert!(!covers(&der, "example.org"), "a wildcard covers one label");
        assert!(!covers(&der, "other.example.com"));
        assert!(!covers(&der, "10.0.0.8"));
    }

    #[test]
    fn expired_and_expiring_certificates_are_named() {
        let (c, k) = cert(&["a.example"], (-30, -1));
        let info = ServerCert::from_pem(&files(), c.as_bytes(), k.as_bytes())
            .unwrap()
            .info;
        let p = info.validity_problem(Utc::now()).unwrap();
        assert!(p.contains("expired on"), "{p}");
        let (c, k) = cert(&["a.example"], (-30, 3));
        let info = ServerCert::from_pem(&files(), c.as_bytes(), k.as_bytes())
            .unwrap()
            .info;
        let p = info.validity_problem(Utc::now()).unwrap();
        assert!(p.contains("renew"), "{p}");
    }

    #[test]
    fn a_key_of_another_certificate_is_refused() {
        let (c, _) = cert(&["a.example"], (-1, 30));
        let (_, other_key) = cert(&["a.example"], (-1, 30));
        let e = ServerCert::from_pem(&files(), c.as_bytes(), other_key.as_bytes()).unwrap_err();
        assert!(matches!(e, TlsError::Mismatch { .. }), "{e}");
        assert!(e.to_string().contains("proxy.tls_key"), "{e}");
        let e = ServerCert::from_pem(&files(), b"junk", other_key.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("no CERTIFICATE block"), "{e}");
        let e = ServerCert::from_pem(&files(), c.as_bytes(), b"").unwrap_err();
        assert!(e.to_string().contains("no private key"), "{e}");
    }

    #[test]
    fn update_swaps_only_valid_new_contents() {
        let dir = tempfile::tempdir().unwrap();
        let f = TlsFiles {
            cert: dir.path().join("c.pem"),
            key: dir.path().join("k.pem"),
        };
        let (c1, k1) = cert(&["one.example"], (-1, 30));
        std::fs::write(&f.cert, &c1).unwrap();
        std::fs::write(&f.key, &k1).unwrap();
        let r = ReloadingCert::load(&f).unwrap();
        assert!(matches!(
            r.update(c1.clone().into(), k1.clone().into()),
            Reload::Unchanged
        ));
        let (c2, k2) = cert(&["two.example"], (-1, 30));
        // A renewal half written: the new certificate with the old key.
        assert!(matches!(
            r.update(c2.clone().into(), k1.into()),
            Reload::Rejected(TlsError::Mismatch { .. })
        ));
        assert_eq!(r.info().names, ["one.example"]);
        assert!(matches!(
            r.update(c2.into(), k2.into()),
            Reload::Reloaded(ref i) if i.names == ["two.example"]
        ));
        assert_eq!(r.info().names, ["two.example"]);
    }
}
