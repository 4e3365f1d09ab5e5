//! The registries' TLS: one certificate authority per harness process (a run), one server
//! certificate per environment, and the trust files each container role reads.
//!
//! Every registry serves HTTPS unless its scenario says `registry_tls: {NAME: false}`. The CA
//! is generated in memory when first needed and never written anywhere but the environments'
//! private directories (mode 0700, removed at teardown). A role's profile entry says where its
//! image looks for CAs ([`crate::profile::Trust`]); the harness mounts the files there.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};

use crate::errors::TlsSetupError;

/// The certificate authority of this harness process.
pub struct RunCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
    pem: String,
}

/// A registry server certificate and its private key, PEM.
pub struct ServerCert {
    pub cert_pem: String,
    pub key_pem: String,
}

static RUN_CA: OnceLock<Result<RunCa, String>> = OnceLock::new();

/// On a host without any CA certificate (a minimal container), gives the process the run's CA
/// as the certificates it trusts, and says so (`true`). The registry client builds a default
/// HTTP client besides the one trusting the run's CA, which loads the host's certificates and
/// panics when there are none; the harness itself trusts the run's CA only. The CA is handed
/// over through `SSL_CERT_FILE`, naming a deleted file this process keeps open
/// (`/proc/self/fd/N`), so nothing is left on disk. Must be called before any thread starts
/// (it sets an environment variable).
pub fn trust_run_ca_where_the_host_has_none() -> Result<bool, TlsSetupError> {
    if !rustls_native_certs::load_native_certs().certs.is_empty() {
        return Ok(false);
    }
    let failed = |reason: String| TlsSetupError {
        what: "a trust store for a host without CA certificates".into(),
        reason,
    };
    let pem = run_ca()?.pem().to_owned();
    let mut file = tempfile::tempfile().map_err(|e| failed(e.to_string()))?;
    std::io::Write::write_all(&mut file, pem.as_bytes()).map_err(|e| failed(e.to_string()))?;
    let fd = std::os::unix::io::IntoRawFd::into_raw_fd(file);
    std::env::set_var("SSL_CERT_FILE", format!("/proc/self/fd/{fd}"));
    Ok(true)
}

/// This process's CA, generated on first use.
pub fn run_ca() -> Result<&'static RunCa, TlsSetupError> {
    RUN_CA
        .get_or_init(|| RunCa::generate().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|reason| TlsSetupError {
            what: "the run's certificate authority".into(),
            reason: reason.clone(),
        })
}

impl RunCa {
    fn generate() -> Result<RunCa, rcgen::Error> {
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::OrganizationName, "conformance harness");
        name.push(
            DnType::CommonName,
            format!("conformance harness run CA (pid {})", std::process::id()),
        );
        params.distinguished_name = name;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate()?)?;
        let pem = issuer.pem();
        Ok(RunCa { issuer, pem })
    }

    /// The CA certificate, PEM: what clients trust.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// A server certificate for the given host names (network aliases), `localhost` and
    /// `127.0.0.1` (how the harness reaches published ports).
    pub fn server_cert(&self, names: &[String]) -> Result<ServerCert, TlsSetupError> {
        let failed = |e: rcgen::Error| TlsSetupError {
            what: format!("a certificate for {}", names.join(", ")),
            reason: e.to_string(),
        };
        let mut sans: Vec<String> = names.to_vec();
        sans.extend(["localhost".to_owned(), "127.0.0.1".to_owned()]);
        let mut params = CertificateParams::new(sans).map_err(failed)?;
        let mut name = DistinguishedName::new();
        name.push(
            DnType::CommonName,
            names.first().cloned().unwrap_or_else(|| "registry".into()),
        );
        params.distinguished_name = name;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().map_err(failed)?;
        let cert = params.signed_by(&key, &self.issuer).map_err(failed)?;
        Ok(ServerCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// The TLS files of one environment, laid out in its private directory:
/// `server/{tls.crt,tls.key}` for the registries, `ca.crt`, and `certs.d/<host:port>/ca.crt`
/// (the layout Docker's `/etc/docker/certs.d` and containers' `/etc/containers/certs.d` share).
#[derive(Debug, Clone)]
pub struct TrustFiles {
    /// Mounted read-only at [`REGISTRY_CERT_DIR`] in each TLS registry.
    pub server_dir: PathBuf,
    pub ca_file: PathBuf,
    pub certs_d: PathBuf,
}

/// Where a TLS registry container finds its certificate and key.
pub const REGISTRY_CERT_DIR: &str = "/conformance/tls";

impl TrustFiles {
    /// Writes the CA, a server certificate for `tls_hosts` (network aliases) and the certs.d
    /// tree naming each `alias:port` into `dir` (created 0700; files 0600, the CA 0644, the
    /// certs.d tree 0755: it is mounted as it is, for containers of any user).
    pub fn write(
        dir: &Path,
        ca: &RunCa,
        tls_hosts: &[String],
        port: u16,
    ) -> Result<TrustFiles, TlsSetupError> {
        let io = |what: &Path| {
            let what = what.display().to_string();
            move |e: std::io::Error| TlsSetupError {
                what: what.clone(),
                reason: e.to_string(),
            }
        };
        let server = ca.server_cert(tls_hosts)?;
        let server_dir = dir.join("server");
        crate::write_new_file(&server_dir, "tls.crt", server.cert_pem.as_bytes(), 0o644)
            .map_err(io(&server_dir))?;
        crate::write_new_file(&server_dir, "tls.key", server.key_pem.as_bytes(), 0o600)
            .map_err(io(&server_dir))?;
        crate::write_new_file(dir, "ca.crt", ca.pem().as_bytes(), 0o644).map_err(io(dir))?;
        let certs_d = dir.join("certs.d");
        for host in tls_hosts {
            let host_dir = certs_d.join(format!("{host}:{port}"));
            crate::write_new_file(&host_dir, "ca.crt", ca.pem().as_bytes(), 0o644)
                .map_err(io(&host_dir))?;
        }
        // An empty certs.d still mounts (a scenario whose registries are all plain HTTP).
        std::fs::create_dir_all(&certs_d).map_err(io(&certs_d))?;
        // The certs.d tree is mounted as it is: a step of any user (Run as User) reads the CA.
        {
            use std::os::unix::fs::PermissionsExt;
            let readable = || std::fs::Permissions::from_mode(0o755);
            std::fs::set_permissions(&certs_d, readable()).map_err(io(&certs_d))?;
            for host in tls_hosts {
                let host_dir = certs_d.join(format!("{host}:{port}"));
                std::fs::set_permissions(&host_dir, readable()).map_err(io(&host_dir))?;
            }
        }
        Ok(TrustFiles {
            server_dir,
            ca_file: dir.join("ca.crt"),
            certs_d,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_ca_per_process_signs_server_certificates_for_every_name() {
        let ca = run_ca().unwrap();
        assert!(std::ptr::eq(ca, run_ca().unwrap()), "generated once");
        assert!(ca.pem().starts_with("-----BEGIN CERTIFICATE-----"));
        let server = ca
            .server_cert(&["registry".into(), "secured".into()])
            .unwrap();
        assert!(server.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(server.key_pem.contains("PRIVATE KEY"));
        assert_ne!(server.cert_pem, ca.pem());
    }

    #[test]
    fn trust_files_use_the_certs_d_layout_and_keep_the_key_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let files = TrustFiles::write(
            dir.path(),
            run_ca().unwrap(),
            &["registry".into(), "second".into()],
            5000,
        )
        .unwrap();
        for host in ["registry:5000", "second:5000"] {
            let ca = std::fs::read_to_string(files.certs_d.join(host).join("ca.crt")).unwrap();
            assert_eq!(ca, run_ca().unwrap().pem());
        }
        let key = std::fs::metadata(files.server_dir.join("tls.key")).unwrap();
        assert_eq!(key.permissions().mode() & 0o777, 0o600);
        // A step running as any user reads the CA through the mounted certs.d tree.
        for dir in [files.certs_d.clone(), files.certs_d.join("registry:5000")] {
            let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o755, "{}", dir.display());
        }
        let ca = std::fs::metadata(files.certs_d.join("registry:5000/ca.crt")).unwrap();
        assert_eq!(ca.permissions().mode() & 0o777, 0o644);
        assert!(files.ca_file.is_file());
    }
}
