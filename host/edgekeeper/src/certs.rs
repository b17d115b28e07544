//! `edgekeeper certs`: a cluster CA and node certificates for mutual TLS between nodes.

use std::path::PathBuf;

use anyhow::Context as _;

/// `certs init` and `certs issue`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum CertsCommand {
    /// Create a new cluster CA (`ca.pem`, `ca.key`) in DIR; never overwrites one.
    Init {
        /// Directory for the CA files.
        #[arg(long, value_name = "DIR", default_value = "certs")]
        dir: PathBuf,
    },
    /// Issue a node certificate signed by the CA in CA_DIR, written to OUT as `ca.pem`,
    /// `node.pem` and `node.key`.
    Issue {
        /// Directory holding the CA made by `certs init`.
        #[arg(long, value_name = "CA_DIR", default_value = "certs")]
        ca_dir: PathBuf,
        /// The node id the certificate names (`node-<id>.edgekeeper`).
        #[arg(long, value_name = "ID")]
        node_id: u64,
        /// Directory for the node's files.
        #[arg(long, value_name = "OUT")]
        out: PathBuf,
        /// Extra DNS names or IP addresses for the certificate.
        #[arg(long = "san", value_name = "NAME")]
        sans: Vec<String>,
    },
}

pub(crate) fn run(command: CertsCommand) -> anyhow::Result<()> {
    match command {
        CertsCommand::Init { dir } => {
            ek_net::certs::init_ca(&dir)
                .with_context(|| format!("cannot create a CA in {}", dir.display()))?;
            println!("created the cluster CA in {}", dir.display());
        }
        CertsCommand::Issue {
            ca_dir,
            node_id,
            out,
            sans,
        } => {
            anyhow::ensure!(node_id > 0, "--node-id must be > 0");
            let ca = ek_net::certs::load_ca(&ca_dir)
                .with_context(|| format!("cannot load the CA from {}", ca_dir.display()))?;
            let node = ek_net::certs::issue(&ca, ek_net::PeerId(node_id), &sans)
                .with_context(|| format!("cannot issue a certificate for node {node_id}"))?;
            ek_net::certs::write_node_files(&out, &node, ca.cert_pem())
                .with_context(|| format!("cannot write the node files to {}", out.display()))?;
            println!(
                "issued {} in {}",
                ek_net::certs::node_dns_name(ek_net::PeerId(node_id)),
                out.display()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_then_issue_writes_the_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca_dir = dir.path().join("ca");
        let out = dir.path().join("node-1");
        run(CertsCommand::Init {
            dir: ca_dir.clone(),
        })
        .expect("init");
        run(CertsCommand::Issue {
            ca_dir: ca_dir.clone(),
            node_id: 1,
            out: out.clone(),
            sans: vec!["127.0.0.1".to_owned()],
        })
        .expect("issue");
        for file in ["ca.pem", "node.pem", "node.key"] {
            assert!(out.join(file).is_file(), "{file} missing");
        }
        // A second init must not overwrite the CA.
        assert!(run(CertsCommand::Init { dir: ca_dir }).is_err());
    }
}
