//! The host's own types for what crosses the plugin boundary (the WIT records, as plain
//! serde types: the controllers build them and `plugin test` fixtures hold them as JSON).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A znode's metadata (the WIT `stat`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct Stat {
    /// The zxid that created the node.
    pub czxid: u64,
    /// The zxid that last changed its data.
    pub mzxid: u64,
    /// The zxid that last changed its children.
    pub pzxid: u64,
    /// Creation time, ms since the Unix epoch.
    pub ctime_ms: i64,
    /// Last data change, ms since the Unix epoch.
    pub mtime_ms: i64,
    /// Data version.
    pub version: i32,
    /// Children version.
    pub cversion: i32,
    /// ACL version.
    pub aversion: i32,
    /// The owning session of an ephemeral node, 0 for a persistent one.
    pub ephemeral_owner: u64,
    /// Data length, bytes.
    pub data_length: u32,
    /// Number of children.
    pub num_children: u32,
}

/// Why a read or buffered write was refused (the WIT `tree-error`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "kebab-case")]
pub enum TreeError {
    /// The node does not exist.
    #[error("no node")]
    NoNode,
    /// The node exists already.
    #[error("node exists")]
    NodeExists,
    /// The node has children.
    #[error("node not empty")]
    NotEmpty,
    /// The node is not at the expected version.
    #[error("bad version")]
    BadVersion,
    /// Ephemeral nodes cannot have children.
    #[error("ephemeral nodes cannot have children")]
    NoChildrenForEphemerals,
    /// A malformed path or argument, with the reason.
    #[error("bad arguments: {0}")]
    BadArguments(String),
    /// The path lies outside the manifest's prefixes.
    #[error("out of scope: {0}")]
    OutOfScope(String),
    /// Larger than the limit, in bytes.
    #[error("too large: {0} bytes")]
    TooLarge(u32),
    /// The plugin's identity lacks the permission.
    #[error("not authorised")]
    NoAuth,
    /// The node cannot answer now, with the reason.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

/// A log level (the WIT `level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Level {
    /// Finest detail.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal operation.
    Info,
    /// Something looks wrong.
    Warn,
    /// Something failed.
    Error,
}

/// What a change did (the WIT `change-kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeKind {
    /// The node was created (or, in a start-up snapshot, exists).
    Created,
    /// The node was deleted.
    Deleted,
    /// The node's data changed.
    DataChanged,
}

/// One committed change (the WIT `change`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Change {
    /// What happened.
    pub kind: ChangeKind,
    /// The node.
    pub path: String,
    /// The zxid of the transaction that made the change.
    #[serde(default)]
    pub zxid: u64,
    /// The node's stat after the change; none for `deleted`.
    #[serde(default)]
    pub stat: Option<Stat>,
}

/// What a watcher receives in one call (the WIT `change-batch`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ChangeBatch {
    /// True for the start-up snapshot (every node under the watch prefixes, `created`).
    #[serde(default)]
    pub snapshot: bool,
    /// The zxid the batch brings the plugin's view up to.
    #[serde(default)]
    pub zxid: u64,
    /// In zxid order.
    pub changes: Vec<Change>,
}

/// How a buffered create makes its node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CreateMode {
    /// Stays until deleted.
    Persistent,
    /// Goes with the plugin's session.
    Ephemeral,
    /// Persistent, with a `%010d` counter appended to the name.
    PersistentSequential,
    /// Ephemeral, with a `%010d` counter appended to the name.
    EphemeralSequential,
}

/// One buffered write. As JSON (fixtures, `plugin test` output): `{"op":"create",
/// "path":…,"data":…,"mode":…}`, `{"op":"set","path":…,"data":…,"version":N|null}`,
/// `{"op":"delete","path":…,"version":N|null}`, `{"op":"check","path":…,"version":N}`;
/// `data` is UTF-8 text, or `data-base64` for bytes that are not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnOp {
    /// Create a node (its parent must exist).
    Create {
        /// The node (for a sequential mode, the prefix of its name).
        path: String,
        /// Its data.
        data: Vec<u8>,
        /// Persistent or ephemeral, sequential or not.
        mode: CreateMode,
    },
    /// Set a node's data.
    Set {
        /// The node.
        path: String,
        /// Its new data.
        data: Vec<u8>,
        /// Only if the node is at this version.
        version: Option<i32>,
    },
    /// Delete a node (it must have no children).
    Delete {
        /// The node.
        path: String,
        /// Only if the node is at this version.
        version: Option<i32>,
    },
    /// Fail the whole multi unless the node is at `version`.
    Check {
        /// The node.
        path: String,
        /// The version it must be at.
        version: i32,
    },
}

/// The JSON shape of a [`TxnOp`], for reading.
#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct OpJson {
    op: String,
    path: String,
    #[serde(default)]
    data: Option<String>,
    #[serde(default)]
    data_base64: Option<String>,
    #[serde(default)]
    mode: Option<CreateMode>,
    #[serde(default)]
    version: Option<i32>,
}

impl Serialize for TxnOp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for TxnOp {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<TxnOp, D::Error> {
        use serde::de::Error;
        let json = OpJson::deserialize(deserializer)?;
        let data = match (json.data, json.data_base64) {
            (Some(_), Some(_)) => return Err(D::Error::custom("both data and data-base64")),
            (Some(text), None) => Some(text.into_bytes()),
            (None, Some(b64)) => {
                Some(unbase64(&b64).ok_or_else(|| D::Error::custom("bad data-base64"))?)
            }
            (None, None) => None,
        };
        let no_data = |op: &str| D::Error::custom(format!("a {op} op has no data"));
        let path = json.path;
        match json.op.as_str() {
            "create" => {
                if json.version.is_some() {
                    return Err(D::Error::custom("a create op has no version"));
                }
                Ok(TxnOp::Create {
                    path,
                    data: data.unwrap_or_default(),
                    mode: json.mode.unwrap_or(CreateMode::Persistent),
                })
            }
            "set" => Ok(TxnOp::Set {
                path,
                data: data.unwrap_or_default(),
                version: json.version,
            }),
            "delete" if data.is_some() => Err(no_data("delete")),
            "delete" => Ok(TxnOp::Delete {
                path,
                version: json.version,
            }),
            "check" if data.is_some() => Err(no_data("check")),
            "check" => Ok(TxnOp::Check {
                path,
                version: json
                    .version
                    .ok_or_else(|| D::Error::custom("a check op needs a version"))?,
            }),
            other => Err(D::Error::custom(format!(
                "unknown op {other:?} (create, set, delete or check)"
            ))),
        }
    }
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
    /// The pod's name.
    pub name: String,
    /// Ready to serve.
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
    /// The pod's name.
    pub pod: String,
    /// Its sample.
    pub value: f64,
}

/// How a metric's target is expressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetKind {
    /// Per-pod values in percent of the request; the target is a percentage.
    Utilization,
    /// Per-pod values; the target is the average per pod.
    AverageValue,
    /// One value for the whole workload.
    Value,
}

/// One metric of a workload, with its samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Metric {
    /// The metric's name.
    pub name: String,
    /// How the target is expressed.
    pub target_kind: TargetKind,
    /// The target.
    pub target: f64,
    /// Samples per pod (utilization, average-value).
    #[serde(default)]
    pub per_pod: Vec<PodValue>,
    /// The workload-wide value (target-kind value).
    #[serde(default)]
    pub value: Option<f64>,
}

/// An earlier decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct PastDecision {
    /// When, ms since the Unix epoch.
    pub at_ms: i64,
    /// The raw recommendation then.
    pub recommendation: u32,
    /// The replicas decided then.
    pub desired_replicas: u32,
}

/// What a scaling policy decides about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Workload {
    /// The workload's namespace.
    #[serde(default)]
    pub namespace: String,
    /// The workload's name.
    pub name: String,
    /// Replicas now.
    pub current_replicas: u32,
    /// Lower bound.
    pub min_replicas: u32,
    /// Upper bound.
    pub max_replicas: u32,
    /// Its pods.
    #[serde(default)]
    pub pods: Vec<Pod>,
    /// Its metrics, with samples.
    #[serde(default)]
    pub metrics: Vec<Metric>,
    /// Earlier decisions, oldest first.
    #[serde(default)]
    pub recent: Vec<PastDecision>,
    /// Free-form settings from the workload's spec (a JSON object).
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
    /// The time of this evaluation, ms since the Unix epoch.
    #[serde(default)]
    pub now_ms: i64,
}

/// A scaling policy's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Decision {
    /// The replicas to run.
    pub desired_replicas: u32,
    /// The raw recommendation before stabilisation and rate policies.
    pub recommendation: u32,
    /// Why, for people.
    pub reason: String,
}

/// One endpoint of a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Endpoint {
    /// IP address or host name.
    pub address: String,
    /// Port.
    pub port: u16,
    /// Ready to serve.
    #[serde(default = "yes")]
    pub ready: bool,
    /// The machine it runs on, when known.
    #[serde(default)]
    pub node: Option<String>,
}

/// A service and its endpoints, from a source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ServiceRecord {
    /// The service's namespace (default `default`).
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// The service's name.
    pub name: String,
    /// Its endpoints.
    #[serde(default)]
    pub endpoints: Vec<Endpoint>,
    /// Its labels (a JSON object).
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
    fn ops_round_trip_through_their_json() {
        let ops = vec![
            TxnOp::Create {
                path: "/a".into(),
                data: b"x".to_vec(),
                mode: CreateMode::Ephemeral,
            },
            TxnOp::Set {
                path: "/a".into(),
                data: vec![0xff, 0],
                version: Some(3),
            },
            TxnOp::Set {
                path: "/a".into(),
                data: Vec::new(),
                version: None,
            },
            TxnOp::Delete {
                path: "/a".into(),
                version: None,
            },
            TxnOp::Check {
                path: "/a".into(),
                version: 2,
            },
        ];
        let text = serde_json::to_string(&ops).unwrap();
        assert!(text.contains(r#""data-base64":"/wA=""#), "{text}");
        assert!(text.contains(r#""version":null"#), "{text}");
        let back: Vec<TxnOp> = serde_json::from_str(&text).unwrap();
        assert_eq!(back, ops);
        // What the docs show, with the optional parts left out.
        let short: TxnOp = serde_json::from_str(r#"{"op":"set","path":"/a","data":"x"}"#).unwrap();
        assert_eq!(
            short,
            TxnOp::Set {
                path: "/a".into(),
                data: b"x".to_vec(),
                version: None
            }
        );
        for bad in [
            r#"{"op":"check","path":"/a"}"#,
            r#"{"op":"move","path":"/a"}"#,
            r#"{"op":"delete","path":"/a","data":"x"}"#,
            r#"{"op":"create","path":"/a","version":1}"#,
            r#"{"op":"set","path":"/a","data":"x","data-base64":"eA=="}"#,
            r#"{"op":"set","path":"/a","extra":1}"#,
        ] {
            assert!(serde_json::from_str::<TxnOp>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn records_read_the_fixture_shapes() {
        let record: ServiceRecord = serde_json::from_str(
            r#"{ "name": "web", "labels": { "app": "web" },
                 "endpoints": [ { "address": "10.0.0.5", "port": 8080, "node": "edge-1" } ] }"#,
        )
        .unwrap();
        assert_eq!(record.namespace, "default");
        assert!(record.endpoints[0].ready);
        assert_eq!(record.labels.get("app").map(String::as_str), Some("web"));
        let workload: Workload = serde_json::from_str(
            r#"{ "name": "web", "current-replicas": 2, "min-replicas": 1, "max-replicas": 5,
                 "metrics": [ { "name": "q", "target-kind": "value", "target": 10, "value": 30 } ],
                 "settings": { "tolerance": "0.1" } }"#,
        )
        .unwrap();
        assert_eq!(workload.metrics[0].target_kind, TargetKind::Value);
        assert_eq!(workload.metrics[0].value, Some(30.0));
        assert_eq!(
            workload.settings.get("tolerance").map(String::as_str),
            Some("0.1")
        );
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
