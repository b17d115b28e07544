//! A [`Host`] for native tests: an in-memory tree, optional grants, and a record of the
//! buffered writes and logs. Writes are buffered as on a node; [`MockHost::commit`]
//! applies them (all or nothing, with ZooKeeper's rules), as the node does after a call
//! that returned `Ok`.

use crate::{CreateMode, Host, Level, Stat, TreeError};
use std::collections::BTreeMap;

/// A buffered write, as recorded by [`MockHost`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MockOp {
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

/// An in-memory node for tests.
#[derive(Debug, Clone)]
pub struct MockHost {
    nodes: BTreeMap<String, (Vec<u8>, Stat)>,
    zxid: u64,
    /// Writes buffered since the last [`MockHost::commit`].
    pub ops: Vec<MockOp>,
    /// Everything logged.
    pub logs: Vec<(Level, String)>,
    /// Served by `config`.
    pub config: BTreeMap<String, String>,
    /// Served by `now_ms`.
    pub now_ms: i64,
    /// When set, reads outside these prefixes are refused, as a node does.
    pub read_prefixes: Option<Vec<String>>,
    /// When set, writes outside these prefixes are refused, as a node does.
    pub write_prefixes: Option<Vec<String>>,
}

impl Default for MockHost {
    fn default() -> MockHost {
        MockHost::new()
    }
}

fn under(path: &str, prefix: &str) -> bool {
    prefix == "/"
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

impl MockHost {
    /// A tree holding only `/`.
    pub fn new() -> MockHost {
        let mut nodes = BTreeMap::new();
        nodes.insert("/".to_owned(), (Vec::new(), Stat::default()));
        MockHost {
            nodes,
            zxid: 0,
            ops: Vec::new(),
            logs: Vec::new(),
            config: BTreeMap::new(),
            now_ms: 1_700_000_000_000,
            read_prefixes: None,
            write_prefixes: None,
        }
    }

    /// Sets a config value (builder style).
    pub fn with_config(mut self, key: &str, value: &str) -> MockHost {
        self.config.insert(key.to_owned(), value.to_owned());
        self
    }

    /// Puts `data` at `path`, creating parents; ephemeral when `ephemeral`.
    pub fn put(&mut self, path: &str, data: &[u8], ephemeral: bool) {
        let mut at = String::new();
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        for (i, part) in parts.iter().enumerate() {
            at.push('/');
            at.push_str(part);
            let last = i + 1 == parts.len();
            if last {
                if self.nodes.contains_key(&at) {
                    let _ = self.apply_one(&MockOp::Set {
                        path: at.clone(),
                        data: data.to_vec(),
                        version: None,
                    });
                } else {
                    let mode = if ephemeral {
                        CreateMode::Ephemeral
                    } else {
                        CreateMode::Persistent
                    };
                    let _ = self.apply_one(&MockOp::Create {
                        path: at.clone(),
                        data: data.to_vec(),
                        mode,
                    });
                }
            } else if !self.nodes.contains_key(&at) {
                let _ = self.apply_one(&MockOp::Create {
                    path: at.clone(),
                    data: Vec::new(),
                    mode: CreateMode::Persistent,
                });
            }
        }
    }

    /// The data at `path`, if any.
    pub fn data(&self, path: &str) -> Option<&[u8]> {
        self.nodes.get(path).map(|(data, _)| data.as_slice())
    }

    /// Every path, sorted.
    pub fn paths(&self) -> Vec<String> {
        self.nodes.keys().cloned().collect()
    }

    /// Applies the buffered writes as one multi and clears them.
    pub fn commit(&mut self) -> Result<(), TreeError> {
        let ops = std::mem::take(&mut self.ops);
        let before = (self.nodes.clone(), self.zxid);
        for op in &ops {
            if let Err(err) = self.apply_one(op) {
                (self.nodes, self.zxid) = before;
                return Err(err);
            }
        }
        Ok(())
    }

    fn apply_one(&mut self, op: &MockOp) -> Result<(), TreeError> {
        self.zxid += 1;
        let zxid = self.zxid;
        let version_ok = |stat: &Stat, version: Option<i32>| match version {
            Some(v) if v != -1 && v != stat.version => Err(TreeError::BadVersion),
            _ => Ok(()),
        };
        match op {
            MockOp::Create { path, data, mode } => {
                let parent_path = parent(path).to_owned();
                let (_, parent_stat) = self.nodes.get(&parent_path).ok_or(TreeError::NoNode)?;
                if parent_stat.ephemeral_owner != 0 {
                    return Err(TreeError::NoChildrenForEphemerals);
                }
                let path = match mode {
                    CreateMode::PersistentSequential | CreateMode::EphemeralSequential => {
                        format!("{path}{:010}", parent_stat.cversion)
                    }
                    _ => path.clone(),
                };
                if self.nodes.contains_key(&path) {
                    return Err(TreeError::NodeExists);
                }
                let ephemeral = matches!(
                    mode,
                    CreateMode::Ephemeral | CreateMode::EphemeralSequential
                );
                if let Some((_, stat)) = self.nodes.get_mut(&parent_path) {
                    stat.cversion += 1;
                    stat.num_children += 1;
                    stat.pzxid = zxid;
                }
                let stat = Stat {
                    czxid: zxid,
                    mzxid: zxid,
                    pzxid: zxid,
                    ctime_ms: self.now_ms,
                    mtime_ms: self.now_ms,
                    ephemeral_owner: u64::from(ephemeral),
                    data_length: data.len() as u32,
                    ..Stat::default()
                };
                self.nodes.insert(path, (data.clone(), stat));
                Ok(())
            }
            MockOp::Set {
                path,
                data,
                version,
            } => {
                let now = self.now_ms;
                let (old, stat) = self.nodes.get_mut(path).ok_or(TreeError::NoNode)?;
                version_ok(stat, *version)?;
                *old = data.clone();
                stat.version += 1;
                stat.mzxid = zxid;
                stat.mtime_ms = now;
                stat.data_length = data.len() as u32;
                Ok(())
            }
            MockOp::Delete { path, version } => {
                let (_, stat) = self.nodes.get(path).ok_or(TreeError::NoNode)?;
                version_ok(stat, *version)?;
                if stat.num_children > 0 {
                    return Err(TreeError::NotEmpty);
                }
                self.nodes.remove(path);
                if let Some((_, stat)) = self.nodes.get_mut(parent(path)) {
                    stat.num_children = stat.num_children.saturating_sub(1);
                    stat.cversion += 1;
                    stat.pzxid = zxid;
                }
                Ok(())
            }
            MockOp::Check { path, version } => {
                let (_, stat) = self.nodes.get(path).ok_or(TreeError::NoNode)?;
                version_ok(stat, Some(*version))
            }
        }
    }

    fn readable(&self, path: &str) -> Result<(), TreeError> {
        match &self.read_prefixes {
            Some(prefixes) if !prefixes.iter().any(|p| under(path, p)) => {
                Err(TreeError::OutOfScope(path.to_owned()))
            }
            _ => Ok(()),
        }
    }

    fn buffer(&mut self, op: MockOp, path: &str) -> Result<(), TreeError> {
        if !path.starts_with('/') || (path.len() > 1 && path.ends_with('/')) {
            return Err(TreeError::BadArguments(format!("bad path {path:?}")));
        }
        if let Some(prefixes) = &self.write_prefixes {
            if !prefixes.iter().any(|p| under(path, p)) {
                return Err(TreeError::OutOfScope(path.to_owned()));
            }
        }
        self.ops.push(op);
        Ok(())
    }
}

impl Host for MockHost {
    fn get(&mut self, path: &str) -> Result<(Vec<u8>, Stat), TreeError> {
        self.readable(path)?;
        self.nodes.get(path).cloned().ok_or(TreeError::NoNode)
    }

    fn exists(&mut self, path: &str) -> Result<Option<Stat>, TreeError> {
        self.readable(path)?;
        Ok(self.nodes.get(path).map(|(_, stat)| *stat))
    }

    fn children(&mut self, path: &str) -> Result<Vec<String>, TreeError> {
        self.readable(path)?;
        if !self.nodes.contains_key(path) {
            return Err(TreeError::NoNode);
        }
        let prefix = if path == "/" {
            "/".to_owned()
        } else {
            format!("{path}/")
        };
        Ok(self
            .nodes
            .keys()
            .filter(|p| {
                p.len() > prefix.len() && p.starts_with(&prefix) && !p[prefix.len()..].contains('/')
            })
            .map(|p| p[prefix.len()..].to_owned())
            .collect())
    }

    fn create(&mut self, path: &str, data: &[u8], mode: CreateMode) -> Result<(), TreeError> {
        let op = MockOp::Create {
            path: path.to_owned(),
            data: data.to_vec(),
            mode,
        };
        self.buffer(op, path)
    }

    fn set(&mut self, path: &str, data: &[u8], version: Option<i32>) -> Result<(), TreeError> {
        let op = MockOp::Set {
            path: path.to_owned(),
            data: data.to_vec(),
            version,
        };
        self.buffer(op, path)
    }

    fn delete(&mut self, path: &str, version: Option<i32>) -> Result<(), TreeError> {
        let op = MockOp::Delete {
            path: path.to_owned(),
            version,
        };
        self.buffer(op, path)
    }

    fn check(&mut self, path: &str, version: i32) -> Result<(), TreeError> {
        let op = MockOp::Check {
            path: path.to_owned(),
            version,
        };
        self.buffer(op, path)
    }

    fn log(&mut self, level: Level, msg: &str) {
        self.logs.push((level, msg.to_owned()));
    }

    fn now_ms(&mut self) -> i64 {
        self.now_ms
    }

    fn config(&mut self, key: &str) -> Option<String> {
        self.config.get(key).cloned()
    }

    fn config_entries(&mut self) -> Vec<(String, String)> {
        self.config
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_buffered_then_committed_atomically() {
        let mut host = MockHost::new();
        host.put("/a/b", b"1", false);
        host.create("/a/c", b"", CreateMode::Persistent).unwrap();
        host.create("/missing/x", b"", CreateMode::Persistent)
            .unwrap();
        assert_eq!(host.commit(), Err(TreeError::NoNode));
        assert!(host.data("/a/c").is_none(), "a failed multi leaves nothing");
        host.set("/a/b", b"2", Some(0)).unwrap();
        host.commit().unwrap();
        assert_eq!(host.data("/a/b"), Some(&b"2"[..]));
        assert_eq!(host.children("/a").unwrap(), vec!["b"]);
    }

    #[test]
    fn grants_are_enforced_when_set() {
        let mut host = MockHost::new();
        host.write_prefixes = Some(vec!["/ok".into()]);
        host.read_prefixes = Some(vec!["/ok".into()]);
        assert_eq!(
            host.create("/okay", b"", CreateMode::Persistent),
            Err(TreeError::OutOfScope("/okay".into()))
        );
        assert!(host.create("/ok/x", b"", CreateMode::Persistent).is_ok());
        assert_eq!(
            host.get("/other"),
            Err(TreeError::OutOfScope("/other".into()))
        );
    }
}
