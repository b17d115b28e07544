//! What a plugin's host functions see of the node: bounded reads of the local replica.

use ek_plugin::{HostEnv, Stat, TreeError};
use ek_server::{LocalError, LocalRead, LocalReadResult, NodeHandle};
use ek_types::{ErrorCode, Id};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The longest a plugin's tree read may wait for the node's core. The core answers from
/// memory, so this is only reached when the node is overloaded or stopping.
const READ_WAIT: Duration = Duration::from_millis(500);

/// The node as one plugin sees it, with that plugin's identity. Used only from blocking
/// threads (plugin calls run on them), never from the async runtime.
pub(crate) struct NodeEnv {
    node: NodeHandle,
    ids: Vec<Id>,
}

impl NodeEnv {
    pub(crate) fn new(node: NodeHandle, ids: Vec<Id>) -> NodeEnv {
        NodeEnv { node, ids }
    }

    fn read(&self, read: LocalRead) -> Result<LocalReadResult, TreeError> {
        self.node
            .read_blocking(read, self.ids.clone(), READ_WAIT)
            .map_err(tree_error)
    }
}

pub(crate) fn stat_of(stat: &ek_types::Stat) -> Stat {
    let stat = stat.for_client();
    Stat {
        czxid: stat.czxid.0 as u64,
        mzxid: stat.mzxid.0 as u64,
        pzxid: stat.pzxid.0 as u64,
        ctime_ms: stat.ctime,
        mtime_ms: stat.mtime,
        version: stat.version,
        cversion: stat.cversion,
        aversion: stat.aversion,
        ephemeral_owner: stat.ephemeral_owner as u64,
        data_length: stat.data_length.max(0) as u32,
        num_children: stat.num_children.max(0) as u32,
    }
}

fn tree_error(err: LocalError) -> TreeError {
    match err {
        LocalError::Code(ErrorCode::NoNode) => TreeError::NoNode,
        LocalError::Code(ErrorCode::NoAuth) => TreeError::NoAuth,
        LocalError::Code(ErrorCode::BadArguments) => {
            TreeError::BadArguments("invalid path".to_owned())
        }
        other => TreeError::Unavailable(other.to_string()),
    }
}

impl HostEnv for NodeEnv {
    fn get(&self, path: &str) -> Result<(Vec<u8>, Stat), TreeError> {
        match self.read(LocalRead::Get(path.to_owned()))? {
            LocalReadResult::Data(data, stat) => Ok((data, stat_of(&stat))),
            _ => Err(TreeError::Unavailable("unexpected answer".to_owned())),
        }
    }

    fn exists(&self, path: &str) -> Result<Option<Stat>, TreeError> {
        match self.read(LocalRead::Exists(path.to_owned()))? {
            LocalReadResult::Stat(stat) => Ok(stat.as_ref().map(stat_of)),
            _ => Err(TreeError::Unavailable("unexpected answer".to_owned())),
        }
    }

    fn children(&self, path: &str) -> Result<Vec<String>, TreeError> {
        match self.read(LocalRead::Children(path.to_owned()))? {
            LocalReadResult::Children(children) => Ok(children),
            _ => Err(TreeError::Unavailable("unexpected answer".to_owned())),
        }
    }

    fn now_ms(&self) -> i64 {
        now_ms()
    }
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as i64)
        .unwrap_or(0)
}
