//! The plugin manifest: what a plugin is, what it may touch and how it is limited.
//! Operators write it as TOML; the tree stores it as JSON.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// The WIT package version this host implements.
pub const WIT_VERSION: &str = "0.1.0";
/// Default memory cap per plugin instance.
pub(crate) const DEFAULT_MEMORY_MIB: u32 = 32;
/// The largest memory cap a manifest may ask for.
pub(crate) const MAX_MEMORY_MIB: u32 = 1024;

/// Which world a plugin implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum World {
    /// Receives committed changes; may write.
    Watcher,
    /// Decides replica counts; cannot write.
    ScalingPolicy,
    /// Reconciles service registrations; may write.
    Registrar,
}

impl World {
    /// The world's name in the WIT.
    pub fn as_str(self) -> &'static str {
        match self {
            World::Watcher => "watcher",
            World::ScalingPolicy => "scaling-policy",
            World::Registrar => "registrar",
        }
    }

    /// The function the world exports.
    pub fn export(self) -> &'static str {
        match self {
            World::Watcher => "on-changes",
            World::ScalingPolicy => "decide",
            World::Registrar => "reconcile",
        }
    }
}

/// Where a plugin runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Placement {
    /// Only on the current leader: exactly one active instance in the cluster.
    Leader,
    /// On every node.
    EveryNode,
}

/// Per-call limits.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Limits {
    /// Wall-clock deadline per call, in ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u32>,
    /// Linear memory cap, in MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<u32>,
}

/// A directory of the node the plugin may use (WASI preopen).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct FileGrant {
    /// The directory on the node.
    pub host_dir: PathBuf,
    /// Where the guest sees it, e.g. `/out`.
    pub guest_dir: String,
}

/// A plugin's manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Manifest {
    /// `[a-z0-9][a-z0-9-]{0,62}`.
    pub name: String,
    /// Free-form, shown in status.
    pub version: String,
    /// The world it implements.
    pub world: World,
    /// The `edgekeeper:plugin` version it was built against.
    #[serde(default = "default_wit")]
    pub wit: String,
    /// The component's sha256, hex; filled in by `install`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Where it runs; see [`Manifest::effective_placement`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<Placement>,
    /// What `tree.*` may read.
    #[serde(default)]
    pub read_prefixes: Vec<String>,
    /// What `txn.*` may write.
    #[serde(default)]
    pub write_prefixes: Vec<String>,
    /// What a watcher receives changes of.
    #[serde(default)]
    pub watch_prefixes: Vec<String>,
    /// An `every-node` watcher may write only when this is set.
    #[serde(default)]
    pub every_node_writes: bool,
    /// Per-call limits.
    #[serde(default)]
    pub limits: Limits,
    /// A directory grant (watchers only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<FileGrant>,
    /// Served by `config.get` / `config.entries`.
    #[serde(default)]
    pub config: BTreeMap<String, String>,
}

fn default_wit() -> String {
    WIT_VERSION.to_owned()
}

/// Why a manifest was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// TOML or JSON that does not parse into a manifest.
    #[error("{0}")]
    Syntax(String),
    /// A value that parses but is not acceptable.
    #[error("{key}: {reason}")]
    Invalid {
        /// The key.
        key: String,
        /// Why.
        reason: String,
    },
}

fn invalid(key: impl Into<String>, reason: impl Into<String>) -> ManifestError {
    ManifestError::Invalid {
        key: key.into(),
        reason: reason.into(),
    }
}

/// True when `path` is `prefix` or lies below it (`/a` grants `/a/b`, not `/ab`).
pub fn under_prefix(path: &str, prefix: &str) -> bool {
    if prefix == "/" {
        return path.starts_with('/');
    }
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Checks a znode path: absolute, no empty or relative segments, no trailing `/`, no
/// control characters.
pub fn check_path(path: &str) -> Result<(), String> {
    if path == "/" {
        return Ok(());
    }
    if !path.starts_with('/') {
        return Err(format!("{path:?} is not absolute"));
    }
    if path.ends_with('/') {
        return Err(format!("{path:?} ends with '/'"));
    }
    for segment in path[1..].split('/') {
        if segment.is_empty() || segment == "." || segment == ".." {
            return Err(format!("{path:?} has an empty or relative segment"));
        }
    }
    if path.chars().any(|c| c.is_control()) {
        return Err(format!("{path:?} has a control character"));
    }
    Ok(())
}

impl Manifest {
    /// Parses a TOML manifest (not yet validated).
    pub fn from_toml(text: &str) -> Result<Manifest, ManifestError> {
        toml::from_str(text).map_err(|err| ManifestError::Syntax(err.to_string().trim().to_owned()))
    }

    /// Parses a JSON manifest as stored in the tree (not yet validated).
    pub fn from_json(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        serde_json::from_slice(bytes).map_err(|err| ManifestError::Syntax(err.to_string()))
    }

    /// The manifest as stored in the tree.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Checks every rule a manifest must follow.
    pub fn validate(&self) -> Result<(), ManifestError> {
        let name_ok =
            !self.name.is_empty()
                && self.name.len() <= 63
                && self.name.bytes().enumerate().all(|(i, b)| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || (i > 0 && b == b'-')
                });
        if !name_ok {
            return Err(invalid(
                "name",
                format!("{:?} must match [a-z0-9][a-z0-9-]{{0,62}}", self.name),
            ));
        }
        if self.version.trim().is_empty() {
            return Err(invalid("version", "must not be empty"));
        }
        check_wit_version(&self.wit).map_err(|reason| invalid("wit", reason))?;
        if let Some(sha) = &self.sha256 {
            if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(invalid("sha256", "must be 64 hex digits"));
            }
        }
        for (key, prefixes) in [
            ("read-prefixes", &self.read_prefixes),
            ("write-prefixes", &self.write_prefixes),
            ("watch-prefixes", &self.watch_prefixes),
        ] {
            for prefix in prefixes {
                check_path(prefix).map_err(|reason| invalid(key, reason))?;
            }
        }
        if self.world == World::ScalingPolicy && !self.write_prefixes.is_empty() {
            return Err(invalid(
                "write-prefixes",
                "a scaling-policy cannot write: its decision is returned, not written",
            ));
        }
        if self.world != World::Watcher && !self.watch_prefixes.is_empty() {
            return Err(invalid("watch-prefixes", "only a watcher watches"));
        }
        if self.world == World::Watcher && self.watch_prefixes.is_empty() {
            return Err(invalid(
                "watch-prefixes",
                "a watcher must watch at least one prefix",
            ));
        }
        if self.files.is_some() && self.world != World::Watcher {
            return Err(invalid(
                "files",
                "only a watcher may be granted a directory",
            ));
        }
        if let Some(files) = &self.files {
            if !files.host_dir.is_absolute() {
                return Err(invalid("files.host-dir", "must be an absolute path"));
            }
            if !files.guest_dir.starts_with('/') {
                return Err(invalid("files.guest-dir", "must start with '/'"));
            }
        }
        if let Some(timeout) = self.limits.timeout_ms {
            if timeout == 0 {
                return Err(invalid("limits.timeout-ms", "must be > 0"));
            }
        }
        if let Some(memory) = self.limits.memory_mib {
            if memory == 0 || memory > MAX_MEMORY_MIB {
                return Err(invalid(
                    "limits.memory-mib",
                    format!("must be between 1 and {MAX_MEMORY_MIB}"),
                ));
            }
        }
        Ok(())
    }

    /// The placement, defaulting by world (watchers everywhere, the others on the leader).
    pub fn effective_placement(&self) -> Placement {
        self.placement.unwrap_or(match self.world {
            World::Watcher => Placement::EveryNode,
            World::ScalingPolicy | World::Registrar => Placement::Leader,
        })
    }

    /// The per-call deadline: 100 ms for watcher batches, 1 s for decisions.
    pub fn effective_timeout(&self) -> Duration {
        let default = match self.world {
            World::Watcher => 100,
            World::ScalingPolicy | World::Registrar => 1_000,
        };
        Duration::from_millis(u64::from(self.limits.timeout_ms.unwrap_or(default)))
    }

    /// The memory cap in bytes.
    pub fn effective_memory_bytes(&self) -> usize {
        let mib = self
            .limits
            .memory_mib
            .unwrap_or(DEFAULT_MEMORY_MIB)
            .min(MAX_MEMORY_MIB);
        mib as usize * 1024 * 1024
    }

    /// True when `path` may be read.
    pub fn may_read(&self, path: &str) -> bool {
        self.read_prefixes.iter().any(|p| under_prefix(path, p))
    }

    /// True when `path` may be written.
    pub fn may_write(&self, path: &str) -> bool {
        if self.world == World::ScalingPolicy {
            return false;
        }
        if self.world == World::Watcher
            && self.effective_placement() == Placement::EveryNode
            && !self.every_node_writes
        {
            return false;
        }
        self.write_prefixes.iter().any(|p| under_prefix(path, p))
    }
}

/// Checks that a plugin built against WIT `version` runs on this host: below 1.0 the same
/// `0.minor` and a patch no newer than the host's (a guest built against 0.1.0 runs on a
/// 0.1.x host); from 1.0 on the same major and a minor.patch no newer than the host's.
pub fn check_wit_version(version: &str) -> Result<(), String> {
    let parse = |v: &str| -> Option<(u64, u64, u64)> {
        let mut parts = v.split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        let patch = parts.next().map_or(Some(0), |patch| patch.parse().ok())?;
        parts.next().is_none().then_some((major, minor, patch))
    };
    if version.is_empty() {
        return Err(format!(
            "no version given; this host offers edgekeeper:plugin@{WIT_VERSION}"
        ));
    }
    let guest =
        parse(version).ok_or_else(|| format!("{version:?} is not a version like {WIT_VERSION}"))?;
    let host = parse(WIT_VERSION).unwrap_or((0, 1, 0));
    let compatible = if guest.0 == 0 {
        host.0 == 0 && guest.1 == host.1 && guest.2 <= host.2
    } else {
        guest.0 == host.0 && (guest.1, guest.2) <= (host.1, host.2)
    };
    if compatible {
        return Ok(());
    }
    let runs = if host.0 == 0 {
        format!("0.{}.0 to {WIT_VERSION}", host.1)
    } else {
        format!("{}.0.0 to {WIT_VERSION}", host.0)
    };
    Err(format!(
        "the plugin was built against edgekeeper:plugin@{version} but this host offers \
         edgekeeper:plugin@{WIT_VERSION} (it runs plugins built against {runs}); rebuild the \
         plugin against {WIT_VERSION} or upgrade edgekeeper"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Manifest {
        Manifest::from_toml(
            "name = \"hpa\"\nversion = \"1\"\nworld = \"scaling-policy\"\nread-prefixes = [\"/scaling\"]\n",
        )
        .unwrap()
    }

    #[test]
    fn prefixes_grant_the_node_and_below_only() {
        assert!(under_prefix("/a", "/a"));
        assert!(under_prefix("/a/b/c", "/a"));
        assert!(!under_prefix("/ab", "/a"));
        assert!(!under_prefix("/", "/a"));
        assert!(!under_prefix("/b/a", "/a"));
        assert!(under_prefix("/a/b", "/a/b"));
        assert!(!under_prefix("/a", "/a/b"));
        assert!(under_prefix("/x", "/"));
        assert!(under_prefix("/", "/"));
    }

    #[test]
    fn paths_must_be_absolute_and_clean() {
        for good in ["/", "/a", "/a/b-c/d.e", "/zookeeper/quota"] {
            assert_eq!(check_path(good), Ok(()), "{good}");
        }
        for bad in [
            "", "a", "a/b", "/a/", "//a", "/a//b", "/a/./b", "/a/..", "/a\u{0}b", "/a\nb",
        ] {
            assert!(check_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn wit_versions_follow_semver_below_1_0() {
        assert_eq!(check_wit_version("0.1.0"), Ok(()));
        assert_eq!(check_wit_version("0.1"), Ok(()));
        for wrong in ["0.2.0", "1.0.0", "0.0.1", "0.1.1"] {
            let err = check_wit_version(wrong).unwrap_err();
            assert!(err.contains(&format!("@{wrong}")), "{err}");
            assert!(err.contains("offers edgekeeper:plugin@0.1.0"), "{err}");
        }
        assert!(check_wit_version("").unwrap_err().contains("no version"));
        assert!(check_wit_version("one").is_err());
        assert!(check_wit_version("0.1.0.0").is_err());
    }

    #[test]
    fn the_documented_example_parses() {
        let manifest = Manifest::from_toml(
            r#"
name = "hpa"
version = "0.1.0"
world = "scaling-policy"
wit = "0.1.0"
placement = "leader"
read-prefixes = ["/scaling"]
write-prefixes = []
watch-prefixes = []

[limits]
timeout-ms = 1000
memory-mib = 32

[config]
key = "value"
"#,
        )
        .unwrap();
        manifest.validate().unwrap();
        assert_eq!(
            manifest.config.get("key").map(String::as_str),
            Some("value")
        );
        assert_eq!(manifest.limits.memory_mib, Some(32));
        let watcher = Manifest::from_toml(
            r#"
name = "sync"
version = "1"
world = "watcher"
read-prefixes = ["/config"]
watch-prefixes = ["/config"]
[files]
host-dir = "/var/lib/app/config"
guest-dir = "/out"
"#,
        )
        .unwrap();
        watcher.validate().unwrap();
        assert_eq!(watcher.effective_placement(), Placement::EveryNode);
        assert_eq!(watcher.effective_timeout(), Duration::from_millis(100));
        let files = watcher.files.as_ref().unwrap();
        assert_eq!(files.guest_dir, "/out");
    }

    #[test]
    fn world_rules_are_enforced() {
        let base = "version = \"1\"\nread-prefixes = [\"/a\"]\n";
        let cases = [
            ("name = \"r\"\nworld = \"registrar\"\nwatch-prefixes = [\"/a\"]\n", "watch-prefixes"),
            ("name = \"w\"\nworld = \"watcher\"\n", "watch-prefixes"),
            ("name = \"p\"\nworld = \"scaling-policy\"\n[files]\nhost-dir = \"/x\"\nguest-dir = \"/y\"\n", "files"),
            ("name = \"w\"\nworld = \"watcher\"\nwatch-prefixes = [\"/a\"]\n[files]\nhost-dir = \"x\"\nguest-dir = \"/y\"\n", "files.host-dir"),
            ("name = \"p\"\nworld = \"scaling-policy\"\n[limits]\nmemory-mib = 2048\n", "limits.memory-mib"),
            ("name = \"p\"\nworld = \"scaling-policy\"\n[limits]\ntimeout-ms = 0\n", "limits.timeout-ms"),
            ("name = \"-p\"\nworld = \"scaling-policy\"\n", "name"),
            ("name = \"p\"\nworld = \"scaling-policy\"\nsha256 = \"abc\"\n", "sha256"),
        ];
        for (text, key) in cases {
            let manifest = Manifest::from_toml(&format!("{base}{text}")).unwrap();
            let err = manifest.validate().unwrap_err().to_string();
            assert!(err.starts_with(key), "{text}: {err}");
        }
        let long = format!(
            "name = \"{}\"\nworld = \"registrar\"\n{base}",
            "a".repeat(64)
        );
        assert!(Manifest::from_toml(&long).unwrap().validate().is_err());
        assert!(Manifest::from_toml("name = \"x\"\nversion = \"1\"\nworld = \"other\"\n").is_err());
    }

    #[test]
    fn limits_have_defaults_and_caps() {
        let mut manifest = policy();
        manifest.limits.memory_mib = Some(1024);
        manifest.validate().unwrap();
        assert_eq!(manifest.effective_memory_bytes(), 1 << 30);
        manifest.limits.timeout_ms = Some(250);
        assert_eq!(manifest.effective_timeout(), Duration::from_millis(250));
    }

    #[test]
    fn defaults_follow_the_world() {
        let manifest = policy();
        manifest.validate().unwrap();
        assert_eq!(manifest.effective_placement(), Placement::Leader);
        assert_eq!(manifest.effective_timeout(), Duration::from_secs(1));
        assert_eq!(manifest.effective_memory_bytes(), 32 << 20);
        assert!(manifest.may_read("/scaling/web/spec"));
        assert!(!manifest.may_read("/services"));
        assert!(!manifest.may_write("/scaling/web"));
    }

    #[test]
    fn bad_manifests_name_the_key() {
        let mut manifest = policy();
        manifest.write_prefixes = vec!["/x".into()];
        assert!(manifest
            .validate()
            .unwrap_err()
            .to_string()
            .starts_with("write-prefixes"));
        let mut manifest = policy();
        manifest.name = "Bad_Name".into();
        assert!(manifest
            .validate()
            .unwrap_err()
            .to_string()
            .starts_with("name"));
        let mut manifest = policy();
        manifest.wit = "0.2.0".into();
        let err = manifest.validate().unwrap_err().to_string();
        assert!(err.contains("@0.2.0") && err.contains("@0.1.0"), "{err}");
        let mut manifest = policy();
        manifest.read_prefixes = vec!["relative".into()];
        assert!(manifest.validate().is_err());
        assert!(Manifest::from_toml("name = \"x\"\nbogus = 1\n").is_err());
    }

    #[test]
    fn json_round_trips() {
        let mut manifest = policy();
        manifest.sha256 = Some("ab".repeat(32));
        let back = Manifest::from_json(&manifest.to_json()).unwrap();
        assert_eq!(back, manifest);
    }

    #[test]
    fn every_node_watchers_write_only_when_allowed() {
        let mut manifest = Manifest::from_toml(
            "name = \"w\"\nversion = \"1\"\nworld = \"watcher\"\nwatch-prefixes = [\"/a\"]\nwrite-prefixes = [\"/b\"]\n",
        )
        .unwrap();
        assert!(!manifest.may_write("/b/x"));
        manifest.every_node_writes = true;
        assert!(manifest.may_write("/b/x"));
        manifest.placement = Some(Placement::Leader);
        manifest.every_node_writes = false;
        assert!(manifest.may_write("/b/x"));
    }
}
