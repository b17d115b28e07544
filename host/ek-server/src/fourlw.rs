//! Four-letter words on the client port, in ZooKeeper's output format (zk-wire.md §13).

use crate::client::Client;
use crate::core::Core;
use ek_jute::FourLetterWord;
use std::fmt::Write as _;

/// The ZooKeeper version edgekeeper answers as: clients gate features on it (kazoo's
/// `server_version()` parses `envi`), and edgekeeper serves what 3.9 serves.
pub(crate) const ZK_COMPAT_VERSION: &str = "3.9.3";

/// The version line's value: `3.9.3-edgekeeper-<crate version>, built on <date>`.
pub(crate) fn version_string() -> String {
    format!(
        "{ZK_COMPAT_VERSION}-edgekeeper-{}, built on 1970-01-01 00:00 UTC",
        env!("CARGO_PKG_VERSION")
    )
}

/// The text a four-letter word answers with.
pub(crate) fn render(core: &mut Core, word: FourLetterWord) -> String {
    let needs_serving = matches!(
        word,
        FourLetterWord::Srvr
            | FourLetterWord::Stat
            | FourLetterWord::Cons
            | FourLetterWord::Wchs
            | FourLetterWord::Wchc
            | FourLetterWord::Wchp
            | FourLetterWord::Dump
    );
    if needs_serving && !core.serving() {
        // ZooKeeper's answer while it has no quorum (tools and tests wait on it).
        return "This ZooKeeper instance is not currently serving requests\n".to_owned();
    }
    match word {
        FourLetterWord::Ruok => "imok".to_owned(),
        FourLetterWord::Isro => "rw".to_owned(),
        FourLetterWord::Srvr => server_summary(core, false),
        FourLetterWord::Stat => server_summary(core, true),
        FourLetterWord::Mntr => monitor(core),
        FourLetterWord::Conf => conf(core),
        FourLetterWord::Cons => connections(core),
        FourLetterWord::Envi => environment(),
        FourLetterWord::Wchs => format!(
            "{} connections watching {} paths\nTotal watches:{}\n",
            core.watches.watcher_count(),
            core.watches.path_count(),
            core.watches.watch_count()
        ),
        FourLetterWord::Wchc => watches_by_session(core),
        FourLetterWord::Wchp => watches_by_path(core),
        FourLetterWord::Dump => dump(core),
        FourLetterWord::Crst => {
            for client in core.conns.values_mut() {
                client.stats = crate::client::ConnStats {
                    established_ms: client.stats.established_ms,
                    ..Default::default()
                };
            }
            "Connection stats reset.\n".to_owned()
        }
        FourLetterWord::Srst => {
            core.metrics.reset();
            "Server stats reset.\n".to_owned()
        }
        FourLetterWord::Dirs => format!(
            "datadir_size: {}\nlogdir_size: {}\n",
            dir_size(&core.config.data_dir.join("snapshot")),
            dir_size(&core.config.data_dir.join("log"))
        ),
        FourLetterWord::Hash => format!(
            "Digest in history:\n{}: {}\n",
            core.tree.last_zxid().0,
            core.tree.digest()
        ),
        other => format!(
            "{} is not executed because it is not in the whitelist.\n",
            other.as_str()
        ),
    }
}

fn server_summary(core: &Core, with_clients: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Zookeeper version: {}", version_string());
    if with_clients {
        out.push_str("Clients:\n");
        let mut clients: Vec<&Client> = core.conns.values().collect();
        clients.sort_by_key(|client| client.id);
        for client in clients {
            let _ = writeln!(
                out,
                " /{}[1](queued={},recved={},sent={})",
                client.peer,
                client.replies.len(),
                client.stats.received,
                client.stats.sent
            );
        }
        out.push('\n');
    }
    let latency = core.metrics.latency_summary();
    let _ = writeln!(
        out,
        "Latency min/avg/max: {:.0}/{:.4}/{:.0}",
        latency.min_ms.floor(),
        latency.avg_ms,
        latency.max_ms.ceil()
    );
    let _ = writeln!(out, "Received: {}", core.metrics.packets_received());
    let _ = writeln!(out, "Sent: {}", core.metrics.packets_sent());
    let _ = writeln!(out, "Connections: {}", core.conns.len());
    let _ = writeln!(out, "Outstanding: {}", core.pipeline.len());
    let _ = writeln!(out, "Zxid: 0x{:x}", core.tree.last_zxid().0);
    let _ = writeln!(out, "Mode: {}", core.metrics.server_state().as_str());
    let _ = writeln!(out, "Node count: {}", core.tree.node_count());
    out
}

fn monitor(core: &Core) -> String {
    let latency = core.metrics.latency_summary();
    let rows: Vec<(&str, String)> = vec![
        ("zk_version", version_string()),
        (
            "zk_server_state",
            core.metrics.server_state().as_str().to_owned(),
        ),
        ("zk_avg_latency", format!("{:.4}", latency.avg_ms)),
        ("zk_max_latency", format!("{:.0}", latency.max_ms.ceil())),
        ("zk_min_latency", format!("{:.0}", latency.min_ms.floor())),
        (
            "zk_packets_received",
            core.metrics.packets_received().to_string(),
        ),
        ("zk_packets_sent", core.metrics.packets_sent().to_string()),
        ("zk_num_alive_connections", core.conns.len().to_string()),
        ("zk_outstanding_requests", core.pipeline.len().to_string()),
        ("zk_znode_count", core.tree.node_count().to_string()),
        ("zk_watch_count", core.watches.watch_count().to_string()),
        (
            "zk_ephemerals_count",
            core.tree.ephemeral_count().to_string(),
        ),
        (
            "zk_approximate_data_size",
            core.tree.approximate_data_size().to_string(),
        ),
        ("zk_global_sessions", core.tracker.len().to_string()),
        (
            "zk_last_proposal_zxid",
            core.pipeline.last_proposed().0.to_string(),
        ),
        (
            "zk_last_processed_zxid",
            core.tree.last_zxid().0.to_string(),
        ),
        ("zk_uptime", core.uptime().as_millis().to_string()),
    ];
    let mut rows = rows;
    let zab = core.metrics.zab();
    rows.extend([
        ("zk_peer_state", zab_state(core)),
        ("zk_epoch", zab.epoch.to_string()),
        ("zk_quorum_size", zab.quorum_size.to_string()),
        (
            "zk_synced_followers",
            zab.synced_learners.saturating_sub(1).to_string(),
        ),
        ("zk_leader_id", zab.leader_id.to_string()),
    ]);
    let mut out = String::new();
    for (key, value) in rows {
        let _ = writeln!(out, "{key}\t{value}");
    }
    out
}

/// ZooKeeper's `zk_peer_state`: the role and whether it is broadcasting.
fn zab_state(core: &Core) -> String {
    let state = core.metrics.server_state().as_str();
    if core.serving() {
        format!("{state} - broadcast")
    } else {
        format!("{state} - looking")
    }
}

fn conf(core: &Core) -> String {
    let config = &core.config;
    let data_dir = config.data_dir.display();
    let mut out = format!(
        "clientPort={}\nsecureClientPort=-1\ndataDir={data_dir}/snapshot\ndataLogDir={data_dir}/log\n\
         tickTime={}\nmaxClientCnxns={}\nminSessionTimeout={}\nmaxSessionTimeout={}\n\
         clientPortListenBacklog=-1\nserverId={}\n",
        config.client_addr.port(),
        config.tick_ms,
        config.max_client_connections,
        config.min_session_timeout_ms,
        config.max_session_timeout_ms,
        config.node_id,
    );
    if let Some(ensemble) = &config.ensemble {
        // ZooKeeper's `server.N=host:quorumPort:electionPort:role;clientAddr` lines; the
        // one QUIC peer address serves both purposes here.
        for member in &ensemble.members {
            let role = match member.role {
                crate::MemberRole::Voter => "participant",
                crate::MemberRole::Observer => "observer",
            };
            let _ = writeln!(
                out,
                "server.{}={}:{}:{role};{}",
                member.id,
                member.peer_addr.ip(),
                member.peer_addr.port(),
                member.client_addr
            );
        }
        let _ = writeln!(
            out,
            "initLimit={}\nsyncLimit={}\nzabTickTime={}",
            ensemble.init_limit_ticks, ensemble.sync_limit_ticks, ensemble.zab_tick_ms
        );
    }
    out
}

fn connections(core: &Core) -> String {
    let mut out = String::new();
    let mut clients: Vec<&Client> = core.conns.values().collect();
    clients.sort_by_key(|client| client.id);
    for client in clients {
        let stats = &client.stats;
        let avg = if stats.replies == 0 {
            0.0
        } else {
            stats.total_latency_ms as f64 / stats.replies as f64
        };
        let _ = writeln!(
            out,
            " /{}[1](queued={},recved={},sent={},sid=0x{:x},lop={},est={},to={},lcxid=0x{:x},\
             lzxid=0x{:x},lresp={},llat={},minlat={},avglat={avg:.4},maxlat={})",
            client.peer,
            client.replies.len(),
            stats.received,
            stats.sent,
            client.session.map(|s| s.0).unwrap_or(0),
            if stats.last_op.is_empty() {
                "NA"
            } else {
                stats.last_op
            },
            stats.established_ms,
            client.timeout_ms,
            stats.last_cxid,
            stats.last_zxid,
            stats.last_response_ms,
            stats.last_latency_ms,
            stats.min_latency_ms,
            stats.max_latency_ms,
        );
    }
    out.push('\n');
    out
}

fn environment() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|name| name.trim().to_owned())
        .unwrap_or_else(|_| "localhost".to_owned());
    let cwd = std::env::current_dir()
        .map(|dir| dir.display().to_string())
        .unwrap_or_default();
    let mut out = String::from("Environment:\n");
    let _ = writeln!(out, "zookeeper.version={}", version_string());
    let _ = writeln!(out, "host.name={host}");
    let _ = writeln!(out, "edgekeeper.version={}", env!("CARGO_PKG_VERSION"));
    let _ = writeln!(out, "os.name={}", std::env::consts::OS);
    let _ = writeln!(out, "os.arch={}", std::env::consts::ARCH);
    let _ = writeln!(out, "user.dir={cwd}");
    out
}

/// The session id of a watcher's connection, 0 if it has none.
fn session_of(core: &Core, watcher: ek_watch::WatcherId) -> i64 {
    core.conns
        .get(&crate::client::ConnId(watcher.0))
        .and_then(|client| client.session)
        .map_or(0, |session| session.0)
}

fn watches_by_session(core: &Core) -> String {
    let mut out = String::new();
    for (watcher, paths) in core.watches.watches_by_watcher() {
        let _ = writeln!(out, "0x{:x}", session_of(core, watcher));
        for path in paths {
            let _ = writeln!(out, "\t{path}");
        }
    }
    out
}

fn watches_by_path(core: &Core) -> String {
    let mut out = String::new();
    for (path, watchers) in core.watches.watches_by_path() {
        let _ = writeln!(out, "{path}");
        for watcher in watchers {
            let _ = writeln!(out, "\t0x{:x}", session_of(core, watcher));
        }
    }
    out
}

fn dump(core: &Core) -> String {
    let mut out = String::from("SessionTracker dump:\n");
    let mut sessions: Vec<_> = core.tree.sessions().collect();
    sessions.sort();
    let _ = writeln!(out, "Session count: {}", sessions.len());
    out.push_str("ephemeral nodes dump:\n");
    let _ = writeln!(out, "Sessions with Ephemerals ({}):", sessions.len());
    for (session, _timeout) in sessions {
        let _ = writeln!(out, "0x{:x}:", session.0);
        for path in core.tree.ephemerals_of(session) {
            let _ = writeln!(out, "\t{path}");
        }
    }
    out
}

fn dir_size(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|entry| entry.metadata().ok())
                .map(|meta| meta.len())
                .sum()
        })
        .unwrap_or(0)
}
