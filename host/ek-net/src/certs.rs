//! The cluster CA and node certificates (rcgen, ECDSA P-256).
//!
//! A cluster has one CA, made once by [`init_ca`] (`ca.pem`, `ca.key`). Each node gets a
//! certificate from [`issue`] whose DNS subject alternative name `node-<id>.edgekeeper`
//! ([`node_dns_name`]) is its identity on the peer transport; extra names (DNS names or
//! IP addresses) may be added for other uses. [`write_node_files`] lays out a node's TLS
//! dir (`ca.pem`, `node.pem`, `node.key`) and returns the matching [`TlsConfig`].
//!
//! Certificates are valid from 1975 to 4096: an edge box with a wrong clock or a
//! forgotten renewal must not drop out of its cluster. Revoke a node by re-keying the
//! cluster. Keys are written with mode 0600 and never overwritten.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SerialNumber,
};

use crate::config::TlsConfig;
use crate::error::CertError;
use crate::PeerId;

/// File name of the CA certificate.
pub const CA_CERT_FILE: &str = "ca.pem";
/// File name of the CA private key.
pub const CA_KEY_FILE: &str = "ca.key";
/// File name of a node certificate.
pub const NODE_CERT_FILE: &str = "node.pem";
/// File name of a node private key.
pub const NODE_KEY_FILE: &str = "node.key";

/// The subject common name of a cluster CA starts with this, followed by a short tag
/// derived from its public key: each cluster's CA has its own name, so a certificate
/// from another cluster is refused as "unknown issuer", and the name can be rebuilt from
/// the key alone when the CA is loaded.
const CA_COMMON_NAME: &str = "edgekeeper cluster CA";

/// The DNS name that identifies node `id` in its certificate: `node-<id>.edgekeeper`.
pub fn node_dns_name(id: PeerId) -> String {
    format!("node-{}.edgekeeper", id.0)
}

/// A cluster CA: its certificate and key, able to issue node certificates.
pub struct CertificateAuthority {
    cert_pem: String,
    key_pem: String,
    // rcgen 0.13 signs with a `Certificate`; this one has the CA's subject and key, so
    // what it signs chains to `cert_pem` (checked in `from_pem`).
    signer: rcgen::Certificate,
    key: KeyPair,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .finish_non_exhaustive()
    }
}

fn ca_params(key: &KeyPair) -> Result<CertificateParams, CertError> {
    let key_id = CertificateParams::default()
        .self_signed(key)?
        .key_identifier();
    let tag: String = key_id
        .iter()
        .take(6)
        .map(|byte| format!("{byte:02x}"))
        .collect();
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, format!("{CA_COMMON_NAME} {tag}"));
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(params)
}

fn random_serial() -> SerialNumber {
    let mut bytes = [0u8; 16];
    fastrand::fill(&mut bytes);
    bytes[0] &= 0x7f; // positive
    bytes[0] |= 0x01; // and without a leading zero octet
    SerialNumber::from_slice(&bytes)
}

impl CertificateAuthority {
    /// Makes a new CA in memory.
    pub fn generate() -> Result<CertificateAuthority, CertError> {
        let key = KeyPair::generate()?;
        let mut params = ca_params(&key)?;
        params.serial_number = Some(random_serial());
        let cert = params.self_signed(&key)?;
        let cert_pem = cert.pem();
        let key_pem = key.serialize_pem();
        CertificateAuthority::from_pem(&cert_pem, &key_pem)
    }

    /// A CA from its PEM certificate and key, as made by [`CertificateAuthority::generate`].
    /// Fails unless the key belongs to the certificate and the subject is the one this
    /// module gives CAs.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<CertificateAuthority, CertError> {
        let key = KeyPair::from_pem(key_pem)?;
        let signer = ca_params(&key)?.self_signed(&key)?;
        let on_disk = rustls_pki_types::CertificateDer::from(
            pem_der(cert_pem).ok_or_else(|| CertError::InvalidCa("no certificate".into()))?,
        );
        let on_disk = webpki::EndEntityCert::try_from(&on_disk)
            .map_err(|err| CertError::InvalidCa(format!("unparsable certificate: {err}")))?;
        let rebuilt = webpki::EndEntityCert::try_from(signer.der())
            .map_err(|err| CertError::InvalidCa(err.to_string()))?;
        if on_disk.subject_public_key_info() != rebuilt.subject_public_key_info() {
            return Err(CertError::InvalidCa(
                "the key does not match the certificate".into(),
            ));
        }
        if on_disk.subject() != rebuilt.subject() {
            return Err(CertError::InvalidCa(format!(
                "the subject is not the one `certs init` gives a CA ({CA_COMMON_NAME} <key tag>)"
            )));
        }
        Ok(CertificateAuthority {
            cert_pem: cert_pem.to_string(),
            key_pem: key_pem.to_string(),
            signer,
            key,
        })
    }

    /// Loads `ca.pem` and `ca.key` from `dir`.
    pub fn load(dir: &Path) -> Result<CertificateAuthority, CertError> {
        let cert_pem = read_string(&dir.join(CA_CERT_FILE))?;
        let key_pem = read_string(&dir.join(CA_KEY_FILE))?;
        CertificateAuthority::from_pem(&cert_pem, &key_pem)
    }

    /// Writes `ca.pem` and `ca.key` (mode 0600) into `dir`, creating it; never overwrites.
    pub fn write(&self, dir: &Path) -> Result<(), CertError> {
        fs::create_dir_all(dir).map_err(|source| CertError::Io {
            path: dir.into(),
            source,
        })?;
        for name in [CA_CERT_FILE, CA_KEY_FILE] {
            let path = dir.join(name);
            if path.exists() {
                return Err(CertError::Exists(path));
            }
        }
        write_new(&dir.join(CA_KEY_FILE), &self.key_pem, true)?;
        write_new(&dir.join(CA_CERT_FILE), &self.cert_pem, false)
    }

    /// The CA certificate, PEM: the trust anchor every node is given.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA private key, PEM.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// Issues a certificate for node `node_id`; see [`issue`].
    pub fn issue(&self, node_id: PeerId, extra_sans: &[String]) -> Result<NodeCert, CertError> {
        let key = KeyPair::generate()?;
        let mut names = vec![node_dns_name(node_id)];
        names.extend(extra_sans.iter().cloned());
        let mut params = CertificateParams::new(names)?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, node_dns_name(node_id));
        params.distinguished_name = dn;
        params.serial_number = Some(random_serial());
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = params.signed_by(&key, &self.signer, &self.key)?;
        Ok(NodeCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// A node's certificate and private key, PEM.
#[derive(Clone)]
pub struct NodeCert {
    /// The certificate, naming `node-<id>.edgekeeper` and any extra names.
    pub cert_pem: String,
    /// The private key.
    pub key_pem: String,
}

impl std::fmt::Debug for NodeCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeCert").finish_non_exhaustive()
    }
}

/// Creates a new cluster CA and writes `ca.pem` and `ca.key` into `dir`; refuses to
/// overwrite an existing one.
pub fn init_ca(dir: &Path) -> Result<CertificateAuthority, CertError> {
    let ca = CertificateAuthority::generate()?;
    ca.write(dir)?;
    Ok(ca)
}

/// Loads the CA written by [`init_ca`] from `dir`.
pub fn load_ca(dir: &Path) -> Result<CertificateAuthority, CertError> {
    CertificateAuthority::load(dir)
}

/// Issues a certificate for `node_id`, valid for client and server use, naming
/// `node-<id>.edgekeeper` plus `extra_sans` (each an IP address or a DNS name).
pub fn issue(
    ca: &CertificateAuthority,
    node_id: PeerId,
    extra_sans: &[String],
) -> Result<NodeCert, CertError> {
    ca.issue(node_id, extra_sans)
}

/// Writes a node's TLS dir: `ca.pem`, `node.pem`, `node.key` (0600), creating `dir` and
/// never overwriting a key. Returns the [`TlsConfig`] that points at them.
pub fn write_node_files(
    dir: &Path,
    node: &NodeCert,
    ca_cert_pem: &str,
) -> Result<TlsConfig, CertError> {
    fs::create_dir_all(dir).map_err(|source| CertError::Io {
        path: dir.into(),
        source,
    })?;
    let files = TlsConfig::Files {
        ca_cert: dir.join(CA_CERT_FILE),
        cert: dir.join(NODE_CERT_FILE),
        key: dir.join(NODE_KEY_FILE),
    };
    write_new(&dir.join(NODE_KEY_FILE), &node.key_pem, true)?;
    write_replace(&dir.join(NODE_CERT_FILE), &node.cert_pem)?;
    write_replace(&dir.join(CA_CERT_FILE), ca_cert_pem)?;
    Ok(files)
}

fn pem_der(pem: &str) -> Option<Vec<u8>> {
    use rustls_pki_types::pem::PemObject;
    rustls_pki_types::CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()?
        .ok()
        .map(|der| der.to_vec())
}

fn read_string(path: &Path) -> Result<String, CertError> {
    fs::read_to_string(path).map_err(|source| CertError::Io {
        path: path.into(),
        source,
    })
}

fn write_new(path: &Path, contents: &str, secret: bool) -> Result<(), CertError> {
    let io_err = |source| CertError::Io {
        path: PathBuf::from(path),
        source,
    };
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut file = options.open(path).map_err(|err| {
        if err.kind() == std::io::ErrorKind::AlreadyExists {
            CertError::Exists(path.into())
        } else {
            io_err(err)
        }
    })?;
    file.write_all(contents.as_bytes()).map_err(io_err)?;
    file.sync_all().map_err(io_err)
}

fn write_replace(path: &Path, contents: &str) -> Result<(), CertError> {
    fs::write(path, contents).map_err(|source| CertError::Io {
        path: path.into(),
        source,
    })
}
