//! Plain Rust types for what crosses the plugin boundary.

use std::fmt;

/// A znode's metadata.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stat {
    pub czxid: u64,
    pub mzxid: u64,
    pub pzxid: u64,
    pub ctime_ms: i64,
    pub mtime_ms: i64,
    pub version: i32,
    pub cversion: i32,
    pub aversion: i32,
    /// The owning session of an ephemeral node, 0 for a persistent one.
    pub ephemeral_owner: u64,
    pub data_length: u32,
    pub num_children: u32,
}

/// Why a read or a buffered write was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TreeError {
    NoNode,
    NodeExists,
    NotEmpty,
    BadVersion,
    NoChildrenForEphemerals,
    BadArguments(String),
    /// Outside the prefixes the manifest grants.
    OutOfScope(String),
    TooLarge(u32),
    NoAuth,
    Unavailable(String),
}

impl fmt::Display for TreeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TreeError::NoNode => write!(f, "no node"),
            TreeError::NodeExists => write!(f, "node exists"),
            TreeError::NotEmpty => write!(f, "node not empty"),
            TreeError::BadVersion => write!(f, "bad version"),
            TreeError::NoChildrenForEphemerals => write!(f, "ephemeral nodes cannot have children"),
            TreeError::BadArguments(why) => write!(f, "bad arguments: {why}"),
            TreeError::OutOfScope(path) => write!(f, "out of scope: {path}"),
            TreeError::TooLarge(limit) => write!(f, "too large (limit {limit} bytes)"),
            TreeError::NoAuth => write!(f, "not authorised"),
            TreeError::Unavailable(why) => write!(f, "unavailable: {why}"),
        }
    }
}

impl std::error::Error for TreeError {}

/// A log level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

/// How a create makes its node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateMode {
    Persistent,
    Ephemeral,
    PersistentSequential,
    EphemeralSequential,
}

/// What a change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Created,
    Deleted,
    DataChanged,
}

/// One committed change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub kind: ChangeKind,
    pub path: String,
    pub zxid: u64,
    pub stat: Option<Stat>,
}

/// What a watcher receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeBatch {
    /// True for the start-up snapshot: every node under the watch prefixes.
    pub snapshot: bool,
    pub zxid: u64,
    pub changes: Vec<Change>,
}

/// A pod of a workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pod {
    pub name: String,
    pub ready: bool,
}

/// One pod's sample.
#[derive(Debug, Clone, PartialEq)]
pub struct PodValue {
    pub pod: String,
    pub value: f64,
}

/// How a metric's target is expressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    /// Per-pod percentages of the request.
    Utilization,
    /// Per-pod values; the target is the average per pod.
    AverageValue,
    /// One value for the workload.
    Value,
}

/// One metric with its samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    pub name: String,
    pub target_kind: TargetKind,
    pub target: f64,
    pub per_pod: Vec<PodValue>,
    pub value: Option<f64>,
}

/// An earlier decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PastDecision {
    pub at_ms: i64,
    pub recommendation: u32,
    pub desired_replicas: u32,
}

/// What a policy decides about.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    pub namespace: String,
    pub name: String,
    pub current_replicas: u32,
    pub min_replicas: u32,
    pub max_replicas: u32,
    pub pods: Vec<Pod>,
    pub metrics: Vec<Metric>,
    /// Oldest first.
    pub recent: Vec<PastDecision>,
    pub settings: Vec<(String, String)>,
    pub now_ms: i64,
}

impl Workload {
    /// A setting from the workload's spec.
    pub fn setting(&self, key: &str) -> Option<&str> {
        self.settings
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A policy's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub desired_replicas: u32,
    /// The raw recommendation before stabilisation and rate limits.
    pub recommendation: u32,
    pub reason: String,
}

/// One endpoint of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub address: String,
    pub port: u16,
    pub ready: bool,
    pub node: Option<String>,
}

/// A service and its endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRecord {
    pub namespace: String,
    pub name: String,
    pub endpoints: Vec<Endpoint>,
    pub labels: Vec<(String, String)>,
}
