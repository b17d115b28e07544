//! `edgekeeper local-cluster`: an ensemble of N voters and K observers on this machine, each
//! node its own `edgekeeper serve` process, for development, demos and failure drills.
//!
//! Everything lives under one directory:
//!
//! ```text
//! DIR/ca/ca.pem, ca.key              the cluster CA, made on the first run
//! DIR/node-<id>/edgekeeper.toml      the node's config; every path in it is absolute
//! DIR/node-<id>/ca.pem, node.pem, node.key
//! DIR/node-<id>/data/                its data dir
//! DIR/node-<id>/edgekeeper.log       its stdout and stderr, appended across runs
//! ```
//!
//! A re-run keeps every file that exists, so the same cluster restarts with its data; a
//! config file is kept even if the flags would now write another one (a note says so), so
//! hand edits survive. A directory whose configs describe another cluster size is refused
//! before anything is written. This module never deletes a file and never reissues a key.

mod supervise;

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use ek_net::certs::{
    CertificateAuthority, CA_CERT_FILE, CA_KEY_FILE, NODE_CERT_FILE, NODE_KEY_FILE,
};
use ek_server::MemberRole;

use crate::config;

/// The CA's directory under DIR.
const CA_DIR: &str = "ca";
/// A node's config file name in its directory.
const CONFIG_FILE: &str = "edgekeeper.toml";
/// A node's data dir name in its directory.
const DATA_DIR: &str = "data";
/// A node's log file name in its directory.
const LOG_FILE: &str = "edgekeeper.log";

/// `edgekeeper local-cluster`.
#[derive(Debug, clap::Args)]
pub(crate) struct LocalClusterArgs {
    /// Voting members (ids 1..=N).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) nodes: u32,
    /// Observers, after the voters (ids N+1..=N+K).
    #[arg(long, value_name = "K", default_value_t = 0)]
    pub(crate) observers: u32,
    /// Directory for the CA and the nodes; made if missing, reused if present.
    #[arg(long, value_name = "DIR", default_value = "local-cluster")]
    pub(crate) dir: PathBuf,
    /// Client port of node 1; node i gets BASE+i-1.
    #[arg(long, value_name = "PORT", default_value_t = 2181)]
    pub(crate) base_client_port: u16,
    /// Peer (QUIC, UDP) port of node 1; node i gets BASE+i-1.
    #[arg(long, value_name = "PORT", default_value_t = 3888)]
    pub(crate) base_peer_port: u16,
    /// Admin HTTP port of node 1; node i gets BASE+i-1.
    #[arg(long, value_name = "PORT", default_value_t = 8080)]
    pub(crate) base_admin_port: u16,
    /// IP address every listener binds; with 0.0.0.0 or ::, nodes reach each other over
    /// loopback.
    #[arg(long, value_name = "IP", default_value = "127.0.0.1")]
    pub(crate) bind: IpAddr,
    /// Only write the files (and print the nodes); start nothing.
    #[arg(long)]
    pub(crate) no_start: bool,
}

/// One node as the flags describe it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct NodePlan {
    id: u64,
    role: MemberRole,
    /// Where its client listener binds.
    client_listen: SocketAddr,
    /// Where its admin HTTP listener binds.
    admin_listen: SocketAddr,
    /// Where its peer endpoint binds.
    peer_listen: SocketAddr,
    /// The peer address the other nodes dial.
    peer_addr: SocketAddr,
    /// The client address it reports to others.
    client_addr: SocketAddr,
}

/// A node ready to run, as its config file (read back) describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Node {
    pub(crate) id: u64,
    pub(crate) role: MemberRole,
    /// Its member `client_addr`.
    pub(crate) client_addr: SocketAddr,
    /// `DIR/node-<id>`.
    pub(crate) dir: PathBuf,
    /// `DIR/node-<id>/edgekeeper.toml`.
    pub(crate) config_path: PathBuf,
}

impl Node {
    /// `DIR/node-<id>/edgekeeper.log`.
    fn log_path(&self) -> PathBuf {
        self.dir.join(LOG_FILE)
    }
}

/// Writes the cluster's files, then runs it until Ctrl-C or SIGTERM (or only prints it,
/// with `--no-start`).
pub(crate) fn run(args: LocalClusterArgs) -> anyhow::Result<()> {
    let nodes = prepare(&args)?;
    if args.no_start {
        for node in &nodes {
            println!("{}", node_line(node, None));
        }
        return Ok(());
    }
    supervise::run(&nodes)
}

/// The line printed for each node: `node <id> [pid <pid>] client <addr> role <role> config
/// <path>`.
fn node_line(node: &Node, pid: Option<u32>) -> String {
    let pid = pid.map(|pid| format!(" pid {pid}")).unwrap_or_default();
    format!(
        "node {}{pid} client {} role {} config {}",
        node.id,
        node.client_addr,
        role_name(node.role),
        node.config_path.display()
    )
}

fn role_name(role: MemberRole) -> &'static str {
    match role {
        MemberRole::Voter => "voter",
        MemberRole::Observer => "observer",
    }
}

/// Checks the flags and DIR, writes what is missing, and reads every node's config back.
fn prepare(args: &LocalClusterArgs) -> anyhow::Result<Vec<Node>> {
    let plans = plan(args)?;
    let dir = std::path::absolute(&args.dir)
        .with_context(|| format!("--dir {}: cannot make it absolute", args.dir.display()))?;
    check_existing(&dir, args.nodes, args.observers)?;
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let ca = cluster_ca(&dir.join(CA_DIR))?;
    for plan in &plans {
        write_node(&node_dir(&dir, plan.id), &ca, &plans, plan)?;
    }
    plans.iter().map(|plan| read_node(&dir, plan)).collect()
}

fn node_dir(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("node-{id}"))
}

/// The nodes the flags describe: voters 1..=N, then observers; ports counted up from each
/// base.
fn plan(args: &LocalClusterArgs) -> anyhow::Result<Vec<NodePlan>> {
    anyhow::ensure!(
        args.nodes >= 1,
        "--nodes must be >= 1: an ensemble needs a voter"
    );
    let total = args
        .nodes
        .checked_add(args.observers)
        .context("--nodes plus --observers is too large")?;
    let client = first_port("--base-client-port", args.base_client_port, total)?;
    let peer = first_port("--base-peer-port", args.base_peer_port, total)?;
    let admin = first_port("--base-admin-port", args.base_admin_port, total)?;
    // Client and admin listeners are both TCP on one IP, so their ranges must not meet;
    // the peer endpoint is UDP and may share numbers with either.
    let (low, high) = (client.min(admin), client.max(admin));
    anyhow::ensure!(
        u32::from(low) + total <= u32::from(high),
        "--base-client-port {client} and --base-admin-port {admin} give {total} nodes \
         overlapping TCP ports"
    );
    let advertised = advertised_ip(args.bind);
    let nodes = (0..total)
        .map(|index| {
            // `first_port` checked that base + total - 1 fits in a port.
            let offset = u16::try_from(index).unwrap_or(u16::MAX);
            NodePlan {
                id: u64::from(index) + 1,
                role: if index < args.nodes {
                    MemberRole::Voter
                } else {
                    MemberRole::Observer
                },
                client_listen: SocketAddr::new(args.bind, client + offset),
                admin_listen: SocketAddr::new(args.bind, admin + offset),
                peer_listen: SocketAddr::new(args.bind, peer + offset),
                peer_addr: SocketAddr::new(advertised, peer + offset),
                client_addr: SocketAddr::new(advertised, client + offset),
            }
        })
        .collect();
    Ok(nodes)
}

/// Checks that ports `base..base+total` are all real, fixed ports.
fn first_port(flag: &str, base: u16, total: u32) -> anyhow::Result<u16> {
    anyhow::ensure!(
        base > 0,
        "{flag} must be > 0: every node needs a fixed port"
    );
    let last = u32::from(base) + total - 1;
    anyhow::ensure!(
        last <= u32::from(u16::MAX),
        "{flag} {base}: {total} nodes would need ports up to {last}, past 65535"
    );
    Ok(base)
}

/// The address other nodes use to reach a listener bound to `bind`: loopback when `bind`
/// is the wildcard, which cannot be dialled portably.
fn advertised_ip(bind: IpAddr) -> IpAddr {
    match bind {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    }
}

/// Refuses a DIR that already holds a node config of another cluster shape.
fn check_existing(dir: &Path, voters: u32, observers: u32) -> anyhow::Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(error).with_context(|| format!("cannot read {}", dir.display())),
    };
    let afresh = format!(
        "pass the --nodes and --observers it was made with, another --dir, or delete {} to \
         start afresh",
        dir.display()
    );
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot read {}", dir.display()))?;
        let name = entry.file_name();
        let Some(id) = name
            .to_str()
            .and_then(|name| name.strip_prefix("node-"))
            .and_then(|id| id.parse::<u64>().ok())
        else {
            continue;
        };
        let path = entry.path().join(CONFIG_FILE);
        if !path.is_file() {
            continue;
        }
        let (config, _, _) = config::load(Some(&path))
            .with_context(|| format!("{} holds a node config that does not load", dir.display()))?;
        let (found_voters, found_observers) = config.ensemble.as_ref().map_or((0, 0), |ensemble| {
            let voters = ensemble
                .members
                .iter()
                .filter(|member| member.role == MemberRole::Voter)
                .count();
            (voters, ensemble.members.len() - voters)
        });
        let asked = (voters as usize, observers as usize);
        anyhow::ensure!(
            (found_voters, found_observers) == asked,
            "{} describes a cluster of {}, not the {} asked for: {afresh}",
            path.display(),
            shape(found_voters, found_observers),
            shape(asked.0, asked.1)
        );
        anyhow::ensure!(
            config.node_id == id && id <= u64::from(voters) + u64::from(observers),
            "{} is for node {} and does not belong in {}: {afresh}",
            path.display(),
            config.node_id,
            entry.path().display()
        );
    }
    Ok(())
}

/// `3 voters and 1 observer`.
fn shape(voters: usize, observers: usize) -> String {
    let plural = |count: usize, noun: &str| {
        if count == 1 {
            format!("{count} {noun}")
        } else {
            format!("{count} {noun}s")
        }
    };
    format!(
        "{} and {}",
        plural(voters, "voter"),
        plural(observers, "observer")
    )
}

/// Loads the CA in `ca_dir`, or makes one if it holds neither CA file.
fn cluster_ca(ca_dir: &Path) -> anyhow::Result<CertificateAuthority> {
    if ca_dir.join(CA_CERT_FILE).exists() || ca_dir.join(CA_KEY_FILE).exists() {
        ek_net::certs::load_ca(ca_dir)
            .with_context(|| format!("cannot load the cluster CA in {}", ca_dir.display()))
    } else {
        ek_net::certs::init_ca(ca_dir)
            .with_context(|| format!("cannot create a cluster CA in {}", ca_dir.display()))
    }
}

/// Makes what `node_dir` lacks: TLS files, data dir, config.
fn write_node(
    node_dir: &Path,
    ca: &CertificateAuthority,
    plans: &[NodePlan],
    plan: &NodePlan,
) -> anyhow::Result<()> {
    node_tls(node_dir, ca, plan)?;
    let data_dir = node_dir.join(DATA_DIR);
    fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let text = render_config(node_dir, plans, plan)?;
    let path = node_dir.join(CONFIG_FILE);
    match fs::read_to_string(&path) {
        Ok(existing) if existing == text => Ok(()),
        Ok(_) => {
            eprintln!(
                "note: keeping {}, which differs from what these flags would write (delete it \
                 to have it rewritten)",
                path.display()
            );
            Ok(())
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
        }
        Err(error) => Err(error).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Issues the node's certificate unless its key exists; an existing key must come with its
/// certificate and this cluster's CA.
fn node_tls(node_dir: &Path, ca: &CertificateAuthority, plan: &NodePlan) -> anyhow::Result<()> {
    if !node_dir.join(NODE_KEY_FILE).exists() {
        let sans = [plan.peer_addr.ip().to_string()];
        let cert = ek_net::certs::issue(ca, ek_net::PeerId(plan.id), &sans)
            .with_context(|| format!("cannot issue a certificate for node {}", plan.id))?;
        ek_net::certs::write_node_files(node_dir, &cert, ca.cert_pem())
            .with_context(|| format!("cannot write the TLS files in {}", node_dir.display()))?;
        return Ok(());
    }
    let reissue = format!(
        "delete {} and {} there to have them issued again",
        NODE_KEY_FILE, NODE_CERT_FILE
    );
    anyhow::ensure!(
        node_dir.join(NODE_CERT_FILE).is_file(),
        "{} has {NODE_KEY_FILE} but no {NODE_CERT_FILE}: {reissue}",
        node_dir.display()
    );
    let node_ca_path = node_dir.join(CA_CERT_FILE);
    let node_ca = fs::read_to_string(&node_ca_path)
        .with_context(|| format!("cannot read {}", node_ca_path.display()))?;
    anyhow::ensure!(
        node_ca == ca.cert_pem(),
        "{} is not the cluster CA of this directory (was {CA_DIR}/ replaced?): {reissue}",
        node_ca_path.display()
    );
    Ok(())
}

/// The config file of node `plan`, listing every member; paths absolute.
fn render_config(node_dir: &Path, plans: &[NodePlan], plan: &NodePlan) -> anyhow::Result<String> {
    let quoted = |path: PathBuf| -> anyhow::Result<String> {
        let text = path
            .to_str()
            .with_context(|| format!("{} is not UTF-8, which TOML needs", path.display()))?;
        Ok(toml::Value::String(text.to_owned()).to_string())
    };
    let config_path = node_dir.join(CONFIG_FILE);
    let mut text = format!(
        "# Written by `edgekeeper local-cluster`, which keeps this file on later runs.\n\
         # Run this node alone: edgekeeper serve --config {config_path}\n\
         node_id = {id}\n\
         data_dir = {data_dir}\n\
         client_addr = \"{client}\"\n\
         admin_addr = \"{admin}\"\n\
         \n\
         [ensemble]\n\
         ca_cert = {ca_cert}\n\
         cert = {cert}\n\
         key = {key}\n",
        config_path = config_path.display(),
        id = plan.id,
        data_dir = quoted(node_dir.join(DATA_DIR))?,
        client = plan.client_listen,
        admin = plan.admin_listen,
        ca_cert = quoted(node_dir.join(CA_CERT_FILE))?,
        cert = quoted(node_dir.join(NODE_CERT_FILE))?,
        key = quoted(node_dir.join(NODE_KEY_FILE))?,
    );
    if plan.peer_listen != plan.peer_addr {
        // Infallible: writing to a String.
        let _ = writeln!(text, "peer_listen = \"{}\"", plan.peer_listen);
    }
    for member in plans {
        let _ = write!(
            text,
            "\n[[ensemble.members]]\nid = {}\npeer_addr = \"{}\"\nclient_addr = \"{}\"\n\
             role = \"{}\"\n",
            member.id,
            member.peer_addr,
            member.client_addr,
            role_name(member.role)
        );
    }
    Ok(text)
}

/// Loads node `plan`'s config as `serve` will, and describes the node from it.
fn read_node(dir: &Path, plan: &NodePlan) -> anyhow::Result<Node> {
    let node_dir = node_dir(dir, plan.id);
    let config_path = node_dir.join(CONFIG_FILE);
    let (config, _, _) = config::load(Some(&config_path))?;
    let member = config
        .ensemble
        .as_ref()
        .and_then(|ensemble| ensemble.members.iter().find(|m| m.id == config.node_id))
        .with_context(|| format!("{} has no [ensemble]", config_path.display()))?;
    Ok(Node {
        id: config.node_id,
        role: member.role,
        client_addr: member.client_addr,
        dir: node_dir,
        config_path,
    })
}

#[cfg(test)]
mod tests;
