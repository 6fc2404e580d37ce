//! Certificates for `b24ch demo --tls`: a throwaway CA (which the demo's local ClickHouse is
//! told to trust) and a server certificate for `serve` on 127.0.0.1 / localhost.
use crate::config::TlsFiles;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// A certificate authority made on this machine.
pub struct DemoCa {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

/// A certificate (PEM) and its private key (PEM).
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

impl DemoCa {
    pub fn new(name: &str) -> Result<Self, rcgen::Error> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let now = SystemTime::now();
        params.not_before = (now - Duration::from_secs(3600)).into();
        params.not_after = (now + Duration::from_secs(365 * 86_400)).into();
        let pem = params.self_signed(&key)?.pem();
        Ok(Self {
            issuer: Issuer::new(params, key),
            pem,
        })
    }

    /// The CA certificate (PEM), what a client must trust.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// A server certificate for `names` (DNS names or IP addresses), valid in the given window.
    pub fn issue(
        &self,
        names: &[&str],
        not_before: SystemTime,
        not_after: SystemTime,
    ) -> Result<Issued, rcgen::Error> {
        let key = KeyPair::generate()?;
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())?;
        if let Some(first) = names.first() {
            params.distinguished_name.push(DnType::CommonName, *first);
        }
        params.not_before = not_before.into();
        params.not_after = not_after.into();
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// What `demo --tls` wrote.
pub struct DemoTls {
    /// The CA certificate the local ClickHouse trusts.
    pub ca: PathBuf,
    pub files: TlsFiles,
}

/// A fresh CA and a 30-day certificate for 127.0.0.1 and localhost, written into `dir`
/// (`ca.pem`, `serve.pem`, `serve.key`; the key readable by this user only).
pub fn generate(dir: &Path) -> anyhow::Result<DemoTls> {
    std::fs::create_dir_all(dir)?;
    let ca = DemoCa::new("b24ch demo CA")?;
    let now = SystemTime::now();
    let issued = ca.issue(
        &["127.0.0.1", "localhost"],
        now - Duration::from_secs(3600),
        now + Duration::from_secs(30 * 86_400),
    )?;
    let out = DemoTls {
        ca: dir.join("ca.pem"),
        files: TlsFiles {
            cert: dir.join("serve.pem"),
            key: dir.join("serve.key"),
        },
    };
    std::fs::write(&out.ca, ca.pem())?;
    std::fs::write(&out.files.cert, issued.cert_pem)?;
    write_private(&out.files.key, issued.key_pem.as_bytes())?;
    Ok(out)
}

/// Writes a file only its owner can read (a private key).
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    // `mode` applies to a new file only; an older one may be readable by others.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(bytes)
}
