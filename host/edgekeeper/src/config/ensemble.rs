//! The `[ensemble]` table: the members, this node's TLS files and the replication timing,
//! into an [`ek_server::Ensemble`].
//!
//! Members are counted from 0 in error keys (`ensemble.members[0].id`), as serde counts
//! them in type errors, so both kinds of error point at the same entry.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ek_server::{Ensemble, Member, MemberRole};
use serde::Deserialize;

use super::KeyError;

/// `[ensemble]` as written. The TLS paths and `members` are required, but `Option` here so
/// that a missing one is reported as `key 'ensemble.cert': missing` rather than by serde.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileEnsemble {
    ca_cert: Option<PathBuf>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    peer_listen: Option<SocketAddr>,
    zab_tick_ms: Option<u32>,
    init_limit_ticks: Option<u32>,
    sync_limit_ticks: Option<u32>,
    peer_keepalive_ms: Option<u32>,
    peer_idle_timeout_ms: Option<u32>,
    members: Option<Vec<FileMember>>,
}

/// One `[[ensemble.members]]` entry as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileMember {
    id: Option<u64>,
    peer_addr: Option<SocketAddr>,
    client_addr: Option<SocketAddr>,
    role: Option<FileRole>,
}

/// `role = "voter" | "observer"`.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
enum FileRole {
    /// [`MemberRole::Voter`].
    Voter,
    /// [`MemberRole::Observer`].
    Observer,
}

impl From<FileRole> for MemberRole {
    fn from(role: FileRole) -> MemberRole {
        match role {
            FileRole::Voter => MemberRole::Voter,
            FileRole::Observer => MemberRole::Observer,
        }
    }
}

/// Checks `[ensemble]` and fills in its defaults. `node_id` is the top-level key as
/// written: with an ensemble it is required, since a default of 1 copied to every box
/// would make every node claim to be member 1. Relative TLS paths are joined to
/// `config_dir`, the directory of the config file.
pub(super) fn resolve(
    file: FileEnsemble,
    node_id: Option<u64>,
    config_dir: &Path,
) -> Result<Ensemble, KeyError> {
    let members = resolve_members(file.members.unwrap_or_default())?;
    let Some(node_id) = node_id else {
        return Err(KeyError::new(
            "node_id",
            "missing: with [ensemble], node_id must name this node among ensemble.members",
        ));
    };
    if !members.iter().any(|member| member.id == node_id) {
        let ids: Vec<String> = members.iter().map(|member| member.id.to_string()).collect();
        return Err(KeyError::new(
            "node_id",
            format!(
                "{node_id} is not among ensemble.members (ids {})",
                ids.join(", ")
            ),
        ));
    }
    let ca_cert = tls_path("ensemble.ca_cert", file.ca_cert, config_dir)?;
    let cert = tls_path("ensemble.cert", file.cert, config_dir)?;
    let key = tls_path("ensemble.key", file.key, config_dir)?;
    // Start from the runtime's defaults so a timing field added there keeps its default.
    let mut ensemble = Ensemble::new(members, ca_cert, cert, key);
    ensemble.peer_listen = file.peer_listen;
    let timings = [
        (&mut ensemble.zab_tick_ms, file.zab_tick_ms),
        (&mut ensemble.init_limit_ticks, file.init_limit_ticks),
        (&mut ensemble.sync_limit_ticks, file.sync_limit_ticks),
        (&mut ensemble.peer_keepalive_ms, file.peer_keepalive_ms),
        (
            &mut ensemble.peer_idle_timeout_ms,
            file.peer_idle_timeout_ms,
        ),
    ];
    for (field, written) in timings {
        if let Some(value) = written {
            *field = value;
        }
    }
    check_timing(&ensemble)?;
    Ok(ensemble)
}

/// A required TLS file; relative to the config file's directory unless absolute.
fn tls_path(
    key: &'static str,
    written: Option<PathBuf>,
    config_dir: &Path,
) -> Result<PathBuf, KeyError> {
    let path = written.ok_or_else(|| KeyError::new(key, "missing (required in [ensemble])"))?;
    if path.as_os_str().is_empty() {
        return Err(KeyError::new(key, "must not be empty"));
    }
    Ok(config_dir.join(path))
}

fn resolve_members(file: Vec<FileMember>) -> Result<Vec<Member>, KeyError> {
    if file.is_empty() {
        return Err(KeyError::new(
            "ensemble.members",
            "missing: list every member, this node included, as [[ensemble.members]] \
             with id, peer_addr and client_addr",
        ));
    }
    let mut members: Vec<Member> = Vec::with_capacity(file.len());
    for (index, written) in file.into_iter().enumerate() {
        let member = resolve_member(index, written, &members)?;
        members.push(member);
    }
    if !members
        .iter()
        .any(|member| member.role == MemberRole::Voter)
    {
        return Err(KeyError::new(
            "ensemble.members",
            "needs at least one voter (role = \"voter\", the default)",
        ));
    }
    Ok(members)
}

/// Entry `index`, checked against the entries before it.
fn resolve_member(index: usize, file: FileMember, earlier: &[Member]) -> Result<Member, KeyError> {
    let key = |field: &str| format!("ensemble.members[{index}].{field}");
    let missing = |field: &str| KeyError::new(key(field), "missing (required in every member)");
    let id = file.id.ok_or_else(|| missing("id"))?;
    let peer_addr = file.peer_addr.ok_or_else(|| missing("peer_addr"))?;
    let client_addr = file.client_addr.ok_or_else(|| missing("client_addr"))?;
    if id == 0 {
        return Err(KeyError::new(key("id"), "must be > 0"));
    }
    for (field, addr) in [("peer_addr", peer_addr), ("client_addr", client_addr)] {
        if addr.port() == 0 {
            return Err(KeyError::new(
                key(field),
                "port must not be 0: other nodes and clients dial this address",
            ));
        }
    }
    let clash = |same: &dyn Fn(&Member) -> bool| earlier.iter().position(same);
    if let Some(other) = clash(&|member| member.id == id) {
        return Err(KeyError::new(
            key("id"),
            format!("duplicate id {id} (also ensemble.members[{other}])"),
        ));
    }
    if let Some(other) = clash(&|member| member.peer_addr == peer_addr) {
        return Err(KeyError::new(
            key("peer_addr"),
            format!("duplicate peer_addr {peer_addr} (also ensemble.members[{other}])"),
        ));
    }
    if let Some(other) = clash(&|member| member.client_addr == client_addr) {
        return Err(KeyError::new(
            key("client_addr"),
            format!("duplicate client_addr {client_addr} (also ensemble.members[{other}])"),
        ));
    }
    Ok(Member {
        id,
        peer_addr,
        client_addr,
        role: file.role.map_or(MemberRole::Voter, MemberRole::from),
    })
}

fn check_timing(ensemble: &Ensemble) -> Result<(), KeyError> {
    let nonzero = [
        ("ensemble.zab_tick_ms", ensemble.zab_tick_ms),
        ("ensemble.init_limit_ticks", ensemble.init_limit_ticks),
        ("ensemble.sync_limit_ticks", ensemble.sync_limit_ticks),
        ("ensemble.peer_keepalive_ms", ensemble.peer_keepalive_ms),
        (
            "ensemble.peer_idle_timeout_ms",
            ensemble.peer_idle_timeout_ms,
        ),
    ];
    if let Some((key, _)) = nonzero.into_iter().find(|(_, value)| *value == 0) {
        return Err(KeyError::new(key, "must be > 0"));
    }
    if ensemble.peer_keepalive_ms >= ensemble.peer_idle_timeout_ms {
        return Err(KeyError::new(
            "ensemble.peer_keepalive_ms",
            format!(
                "must be < peer_idle_timeout_ms ({}), or an idle link is closed between \
                 keep-alives",
                ensemble.peer_idle_timeout_ms
            ),
        ));
    }
    if ensemble.init_limit_ticks < ensemble.sync_limit_ticks {
        return Err(KeyError::new(
            "ensemble.init_limit_ticks",
            format!(
                "must be >= sync_limit_ticks ({})",
                ensemble.sync_limit_ticks
            ),
        ));
    }
    Ok(())
}
