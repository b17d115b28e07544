//! The certificate helpers.

use super::*;
use crate::certs::{self, CA_CERT_FILE, CA_KEY_FILE};
use crate::CertError;

#[test]
fn init_load_issue_and_write_node_files() {
    let dir = tempfile::tempdir().unwrap();
    let ca_dir = dir.path().join("ca");
    let ca = certs::init_ca(&ca_dir).unwrap();
    assert!(ca_dir.join(CA_CERT_FILE).exists() && ca_dir.join(CA_KEY_FILE).exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(ca_dir.join(CA_KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert!(matches!(certs::init_ca(&ca_dir), Err(CertError::Exists(_))));

    let loaded = certs::load_ca(&ca_dir).unwrap();
    assert_eq!(loaded.cert_pem(), ca.cert_pem());
    let node = certs::issue(&loaded, PeerId(7), &["10.1.2.3".into(), "box7.lan".into()]).unwrap();
    let tls = certs::write_node_files(&dir.path().join("node7"), &node, loaded.cert_pem()).unwrap();
    let material = crate::tls::TlsMaterial::load(&tls).unwrap();
    drop(material);
    assert!(matches!(
        certs::write_node_files(&dir.path().join("node7"), &node, loaded.cert_pem()),
        Err(CertError::Exists(_))
    ));
}

#[test]
fn a_key_that_is_not_the_cas_is_rejected() {
    let one = ca();
    let other = ca();
    let mixed = certs::CertificateAuthority::from_pem(one.cert_pem(), other.key_pem());
    assert!(matches!(mixed, Err(CertError::InvalidCa(_))), "{mixed:?}");
}

#[tokio::test]
async fn nodes_connect_with_files_from_a_loaded_ca() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    certs::init_ca(dir.path()).unwrap();
    let ca = certs::load_ca(dir.path()).unwrap();
    let tls = |id: u64| {
        let node = ca.issue(PeerId(id), &[]).unwrap();
        certs::write_node_files(&dir.path().join(format!("node{id}")), &node, ca.cert_pem())
            .unwrap()
    };
    let mut nodes = start_all(configs(&[1, 2], tls));
    all_up(&mut nodes).await;
}

#[test]
fn start_rejects_bad_config_and_tls() {
    let ca = ca();
    let good = tls_for(&ca, &ca, 1);
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let mut config = NetConfig::new(PeerId(1), addr, vec![], good);
    config.keep_alive = config.idle_timeout;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = runtime.enter();
    assert!(matches!(
        Transport::start(config.clone()),
        Err(crate::NetError::Config(_))
    ));
    config.keep_alive = Duration::from_millis(100);
    config.tls = TlsConfig::Pem {
        ca_cert_pem: "nonsense".into(),
        cert_pem: "nonsense".into(),
        key_pem: "nonsense".into(),
    };
    assert!(matches!(
        Transport::start(config),
        Err(crate::NetError::Tls(_))
    ));
}

#[test]
fn backoff_grows_to_its_cap_with_jitter() {
    let (min, max) = (Duration::from_millis(10), Duration::from_millis(100));
    let mut backoff = crate::config::Backoff::new(min, max);
    let mut ceiling = min;
    for _ in 0..10 {
        let delay = backoff.next_delay();
        assert!(
            delay >= ceiling / 2 && delay <= ceiling,
            "{delay:?} vs {ceiling:?}"
        );
        ceiling = (ceiling * 2).min(max);
    }
    backoff.reset();
    assert!(backoff.next_delay() <= min);
}

#[test]
fn hello_keeps_the_version_first_on_the_wire() {
    let hello = crate::wire::Hello {
        version: 0x1234,
        node_id: PeerId(3),
    };
    let bytes = postcard::to_stdvec(&hello).unwrap();
    // postcard varint of 0x1234, then the id.
    assert_eq!(bytes, [0xb4, 0x24, 3]);
    let back: crate::wire::Hello = postcard::from_bytes(&bytes).unwrap();
    assert_eq!(back, hello);
}
