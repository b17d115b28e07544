//! rustls and quinn configuration: TLS 1.3, ring, the cluster CA as the only root, client
//! certificates required, and the check that a certificate names the expected node.

use std::sync::Arc;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use crate::certs::node_dns_name;
use crate::config::TlsConfig;
use crate::error::NetError;
use crate::wire::ALPN;
use crate::PeerId;

/// Parsed TLS material.
pub(crate) struct TlsMaterial {
    roots: Arc<RootCertStore>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

fn read(path: &std::path::Path) -> Result<Vec<u8>, NetError> {
    std::fs::read(path).map_err(|source| NetError::ReadFile {
        path: path.to_path_buf(),
        source,
    })
}

fn tls_err(what: &str) -> impl Fn(rustls_pki_types::pem::Error) -> NetError + '_ {
    move |err| NetError::Tls(format!("{what}: {err}"))
}

impl TlsMaterial {
    pub(crate) fn load(config: &TlsConfig) -> Result<TlsMaterial, NetError> {
        let (ca, cert, key) = match config {
            TlsConfig::Files { ca_cert, cert, key } => (read(ca_cert)?, read(cert)?, read(key)?),
            TlsConfig::Pem {
                ca_cert_pem,
                cert_pem,
                key_pem,
            } => (
                ca_cert_pem.clone().into_bytes(),
                cert_pem.clone().into_bytes(),
                key_pem.clone().into_bytes(),
            ),
        };
        let mut roots = RootCertStore::empty();
        for ca_cert in CertificateDer::pem_slice_iter(&ca) {
            let ca_cert = ca_cert.map_err(tls_err("CA certificate"))?;
            roots
                .add(ca_cert)
                .map_err(|err| NetError::Tls(format!("CA certificate: {err}")))?;
        }
        if roots.is_empty() {
            return Err(NetError::Tls("no CA certificate found".to_string()));
        }
        let chain = CertificateDer::pem_slice_iter(&cert)
            .collect::<Result<Vec<_>, _>>()
            .map_err(tls_err("node certificate"))?;
        if chain.is_empty() {
            return Err(NetError::Tls("no node certificate found".to_string()));
        }
        let key = PrivateKeyDer::from_pem_slice(&key).map_err(tls_err("node key"))?;
        Ok(TlsMaterial {
            roots: Arc::new(roots),
            chain,
            key,
        })
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn rustls_err(err: rustls::Error) -> NetError {
    NetError::Tls(err.to_string())
}

pub(crate) fn server_config(
    tls: &TlsMaterial,
    transport: Arc<quinn::TransportConfig>,
) -> Result<quinn::ServerConfig, NetError> {
    let verifier = WebPkiClientVerifier::builder_with_provider(tls.roots.clone(), provider())
        .build()
        .map_err(|err| NetError::Tls(err.to_string()))?;
    let mut crypto = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(rustls_err)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(tls.chain.clone(), tls.key.clone_key())
        .map_err(rustls_err)?;
    crypto.alpn_protocols = vec![ALPN.to_vec()];
    let crypto =
        QuicServerConfig::try_from(crypto).map_err(|err| NetError::Tls(err.to_string()))?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    config.transport_config(transport);
    Ok(config)
}

pub(crate) fn client_config(
    tls: &TlsMaterial,
    transport: Arc<quinn::TransportConfig>,
) -> Result<quinn::ClientConfig, NetError> {
    let mut crypto = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(rustls_err)?
        .with_root_certificates(tls.roots.clone())
        .with_client_auth_cert(tls.chain.clone(), tls.key.clone_key())
        .map_err(rustls_err)?;
    crypto.alpn_protocols = vec![ALPN.to_vec()];
    let crypto =
        QuicClientConfig::try_from(crypto).map_err(|err| NetError::Tls(err.to_string()))?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    config.transport_config(transport);
    Ok(config)
}

/// Checks that the (already CA-verified) certificate the peer presented names `node`.
pub(crate) fn check_peer_identity(conn: &quinn::Connection, node: PeerId) -> Result<(), String> {
    let identity = conn
        .peer_identity()
        .ok_or("the peer presented no certificate")?;
    let chain = identity
        .downcast::<Vec<CertificateDer<'static>>>()
        .map_err(|_| "unexpected peer identity type")?;
    let leaf = chain.first().ok_or("the peer presented an empty chain")?;
    let leaf = webpki::EndEntityCert::try_from(leaf)
        .map_err(|err| format!("unparsable peer certificate: {err}"))?;
    let name = ServerName::try_from(node_dns_name(node)).map_err(|err| err.to_string())?;
    leaf.verify_is_valid_for_subject_name(&name).map_err(|err| {
        format!(
            "certificate is not valid for {}: {err}",
            node_dns_name(node)
        )
    })
}
