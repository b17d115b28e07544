//! The host's own types for what crosses the plugin boundary (the WIT records, as plain
//! serde types: the controllers build them and `plugin test` fixtures hold them as JSON).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A znode's metadata (the WIT `stat`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct Stat {
    pub czxid: u64,
    pub mzxid: u64,
    pub pzxid: u64,
    pub ctime_ms: i64,
    pub mtime_ms: i64,
    pub version: i32,
    pub cversion: i32,
    pub aversion: i32,
    pub ephemeral_owner: u64,
    pub data_length: u32,
    pub num_children: u32,
}

/// Why a read or buffered write was refused (the WIT `tree-error`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "kebab-case")]
pub enum TreeError {
    #[error("no node")]
    NoNode,
    #[error("node exists")]
    NodeExists,
    #[error("node not empty")]
    NotEmpty,
    #[error("bad version")]
    BadVersion,
    #[error("ephemeral nodes cannot have children")]
    NoChildrenForEphemerals,
    #[error("bad arguments: {0}")]
    BadArguments(String),
    #[error("out of scope: {0}")]
    OutOfScope(String),
    #[error("too large: {0} bytes")]
    TooLarge(u32),
    #[error("not authorised")]
    NoAuth,
    #[error("unavailable: {0}")]
    Unavailable(String),
}

/// A log level (the WIT `level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

/// What a change did (the WIT `change-kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeKind {
    Created,
    Deleted,
    DataChanged,
}

/// One committed change (the WIT `change`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Change {
    pub kind: ChangeKind,
    pub path: String,
    #[serde(default)]
    pub zxid: u64,
    #[serde(default)]
    pub stat: Option<Stat>,
}

/// What a watcher receives in one call (the WIT `change-batch`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ChangeBatch {
    #[serde(default)]
    pub snapshot: bool,
    #[serde(default)]
    pub zxid: u64,
    pub changes: Vec<Change>,
}

/// How a buffered create makes its node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CreateMode {
    Persistent,
    Ephemeral,
    PersistentSequential,
    EphemeralSequential,
}

/// One buffered write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnOp {
    Create {
        path: String,
        data: Vec<u8>,
        mode: CreateMode,
    },
    Set {
        path: String,
        data: Vec<u8>,
        version: Option<i32>,
    },
    Delete {
        path: String,
        version: Option<i32>,
    },
    Check {
        path: String,
        version: i32,
    },
}

impl TxnOp {
    /// The node the op is about.
    pub fn path(&self) -> &str {
        match self {
            TxnOp::Create { path, .. }
            | TxnOp::Set { path, .. }
            | TxnOp::Delete { path, .. }
            | TxnOp::Check { path, .. } => path,
        }
    }

    /// The op as fixture JSON: data as text when it is UTF-8, else `data-base64`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut value = match self {
            TxnOp::Create { path, mode, .. } => serde_json::json!({
                "op": "create", "path": path, "mode": mode,
            }),
            TxnOp::Set { path, version, .. } => serde_json::json!({
                "op": "set", "path": path, "version": version,
            }),
            TxnOp::Delete { path, version } => serde_json::json!({
                "op": "delete", "path": path, "version": version,
            }),
            TxnOp::Check { path, version } => serde_json::json!({
                "op": "check", "path": path, "version": version,
            }),
        };
        if let TxnOp::Create { data, .. } | TxnOp::Set { data, .. } = self {
            match std::str::from_utf8(data) {
                Ok(text) => value["data"] = serde_json::Value::from(text),
                Err(_) => value["data-base64"] = serde_json::Value::from(base64(data)),
            }
        }
        value
    }
}

/// Standard base64 with padding (for fixture output only).
pub(crate) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard base64 (fixture input only).
pub(crate) fn unbase64(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
    {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// A pod of a workload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Pod {
    pub name: String,
    #[serde(default = "yes")]
    pub ready: bool,
}

fn yes() -> bool {
    true
}

/// One pod's sample of a metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct PodValue {
    pub pod: String,
    pub value: f64,
}

/// How a metric's target is expressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetKind {
    Utilization,
    AverageValue,
    Value,
}

/// One metric of a workload, with its samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Metric {
    pub name: String,
    pub target_kind: TargetKind,
    pub target: f64,
    #[serde(default)]
    pub per_pod: Vec<PodValue>,
    #[serde(default)]
    pub value: Option<f64>,
}

/// An earlier decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct PastDecision {
    pub at_ms: i64,
    pub recommendation: u32,
    pub desired_replicas: u32,
}

/// What a scaling policy decides about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Workload {
    #[serde(default)]
    pub namespace: String,
    pub name: String,
    pub current_replicas: u32,
    pub min_replicas: u32,
    pub max_replicas: u32,
    #[serde(default)]
    pub pods: Vec<Pod>,
    #[serde(default)]
    pub metrics: Vec<Metric>,
    #[serde(default)]
    pub recent: Vec<PastDecision>,
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
    #[serde(default)]
    pub now_ms: i64,
}

/// A scaling policy's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Decision {
    pub desired_replicas: u32,
    pub recommendation: u32,
    pub reason: String,
}

/// One endpoint of a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Endpoint {
    pub address: String,
    pub port: u16,
    #[serde(default = "yes")]
    pub ready: bool,
    #[serde(default)]
    pub node: Option<String>,
}

/// A service and its endpoints, from a source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ServiceRecord {
    #[serde(default = "default_namespace")]
    pub namespace: String,
    pub name: String,
    #[serde(default)]
    pub endpoints: Vec<Endpoint>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

fn default_namespace() -> String {
    "default".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        for data in [&b""[..], b"a", b"ab", b"abc", b"\xff\x00\x10\x80"] {
            assert_eq!(unbase64(&base64(data)).unwrap(), data);
        }
        assert_eq!(base64(b"hi!"), "aGkh");
        assert_eq!(base64(b"h"), "aA==");
    }

    #[test]
    fn ops_render_as_fixture_json() {
        let op = TxnOp::Create {
            path: "/a".into(),
            data: b"x".to_vec(),
            mode: CreateMode::PersistentSequential,
        };
        assert_eq!(
            op.to_json(),
            serde_json::json!({"op":"create","path":"/a","mode":"persistent-sequential","data":"x"})
        );
    }
}
