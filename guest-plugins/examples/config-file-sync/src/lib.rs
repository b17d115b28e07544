//! An every-node watcher that renders a config subtree into files: each node under
//! config `root` (e.g. `/config/web`) becomes a file under config `dir` (a directory the
//! manifest grants), nested nodes becoming subdirectories; a node with children is a
//! directory, its own data ignored. Each file is written to `<name>.tmp` and renamed, so
//! readers never see half a file. Files whose node is gone are removed, but only files this
//! plugin wrote (listed in `<dir>/.edgekeeper-sync`), never anything else in the directory.

use edgekeeper_plugin::{ChangeBatch, ChangeKind, Host, Level, TreeError, Watcher};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The watcher.
pub struct ConfigFileSync;

/// The list of files this plugin manages, relative to the directory.
const MANIFEST: &str = ".edgekeeper-sync";

fn settings(host: &mut dyn Host) -> Result<(String, PathBuf), String> {
    let root = host.config("root").ok_or("config `root` is not set")?;
    let dir = host.config("dir").ok_or("config `dir` is not set")?;
    if !root.starts_with('/') || (root.len() > 1 && root.ends_with('/')) {
        return Err(format!("config `root` {root:?} is not a znode path"));
    }
    Ok((root, PathBuf::from(dir)))
}

/// The relative file of a znode under `root`, if it is below it.
pub fn relative(root: &str, path: &str) -> Option<String> {
    let rest = path.strip_prefix(root)?.strip_prefix('/')?;
    if rest.is_empty()
        || rest
            .split('/')
            .any(|s| s == "." || s == ".." || s.starts_with('.'))
    {
        return None;
    }
    Some(rest.to_owned())
}

fn read_managed(dir: &Path) -> BTreeSet<String> {
    std::fs::read_to_string(dir.join(MANIFEST))
        .map(|text| {
            text.lines()
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, data)?;
    std::fs::rename(&tmp, path)
}

/// Every leaf node under `root`: (relative path, data).
fn leaves(host: &mut dyn Host, root: &str) -> Result<Vec<(String, Vec<u8>)>, TreeError> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(path) = stack.pop() {
        let children = match host.children(&path) {
            Ok(children) => children,
            Err(TreeError::NoNode) => continue,
            Err(err) => return Err(err),
        };
        if children.is_empty() {
            if let Some(rel) = relative(root, &path) {
                match host.get(&path) {
                    Ok((data, _)) => out.push((rel, data)),
                    Err(TreeError::NoNode) => {}
                    Err(err) => return Err(err),
                }
            }
        }
        for child in children {
            stack.push(format!("{path}/{child}"));
        }
    }
    out.sort();
    Ok(out)
}

/// Makes the directory match the subtree: writes every leaf, removes managed files that
/// are gone. Returns (written, removed).
pub fn sync(host: &mut dyn Host, root: &str, dir: &Path) -> Result<(usize, usize), String> {
    let files = leaves(host, root).map_err(|e| e.to_string())?;
    let before = read_managed(dir);
    let mut managed = BTreeSet::new();
    let mut written = 0;
    for (rel, data) in &files {
        let path = dir.join(rel);
        // A node that gained children: the file written for it while it was a leaf stands
        // where a directory must go. Only a file this plugin wrote is replaced.
        let mut at = dir.to_path_buf();
        let mut prefix = String::new();
        let parts: Vec<&str> = rel.split('/').collect();
        for part in &parts[..parts.len() - 1] {
            at.push(part);
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(part);
            if at.is_file() {
                if !before.contains(&prefix) {
                    return Err(format!(
                        "{} is a file this plugin did not write",
                        at.display()
                    ));
                }
                std::fs::remove_file(&at)
                    .map_err(|e| format!("cannot replace {} by a directory: {e}", at.display()))?;
            }
        }
        // A node that lost its children: an empty directory gives way to the file.
        if path.is_dir() {
            let _ = std::fs::remove_dir(&path);
        }
        if std::fs::read(&path).ok().as_deref() != Some(data.as_slice()) {
            write_atomic(&path, data)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            written += 1;
        }
        managed.insert(rel.clone());
    }
    let mut removed = 0;
    for old in before.difference(&managed) {
        // Outside the root, or now a directory (the node gained children): not a file to remove.
        if relative(root, &format!("{root}/{old}")).is_none() || dir.join(old).is_dir() {
            continue;
        }
        match std::fs::remove_file(dir.join(old)) {
            Ok(()) => removed += 1,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(format!("cannot remove {old}: {err}")),
        }
    }
    let list: String = managed.iter().map(|f| format!("{f}\n")).collect();
    write_atomic(&dir.join(MANIFEST), list.as_bytes())
        .map_err(|e| format!("cannot write {MANIFEST}: {e}"))?;
    Ok((written, removed))
}

impl Watcher for ConfigFileSync {
    fn on_changes(host: &mut dyn Host, batch: ChangeBatch) -> Result<(), String> {
        let (root, dir) = settings(host)?;
        // Any change under the root re-renders the subtree: small config trees, and a
        // deleted directory node or a node that gained children needs the full picture.
        let relevant = batch.snapshot
            || batch.changes.iter().any(|c| {
                c.path == root
                    || relative(&root, &c.path).is_some()
                    || matches!(c.kind, ChangeKind::Deleted) && root.starts_with(&c.path)
            });
        if !relevant {
            return Ok(());
        }
        let (written, removed) = sync(host, &root, &dir)?;
        if written + removed > 0 {
            host.log(
                Level::Info,
                &format!(
                    "zxid {}: {written} files written, {removed} removed under {}",
                    batch.zxid,
                    dir.display()
                ),
            );
        }
        Ok(())
    }
}

edgekeeper_plugin::export_watcher!(ConfigFileSync);

#[cfg(test)]
mod tests {
    use super::*;
    use edgekeeper_plugin::MockHost;

    #[test]
    fn renders_updates_and_removes_only_managed_files() {
        let dir = std::env::temp_dir().join(format!("ek-config-sync-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("keep.txt"), b"not mine").unwrap();
        let mut host = MockHost::new()
            .with_config("root", "/config/web")
            .with_config("dir", dir.to_str().unwrap());
        host.put("/config/web/port", b"8080", false);
        host.put("/config/web/tls/cert.pem", b"CERT", false);
        let batch = ChangeBatch {
            snapshot: true,
            zxid: 5,
            changes: Vec::new(),
        };
        ConfigFileSync::on_changes(&mut host, batch.clone()).unwrap();
        assert_eq!(std::fs::read(dir.join("port")).unwrap(), b"8080");
        assert_eq!(std::fs::read(dir.join("tls/cert.pem")).unwrap(), b"CERT");
        host.put("/config/web/port", b"9090", false);
        host.ops.clear();
        host.put("/config/web/gone", b"x", false);
        ConfigFileSync::on_changes(&mut host, batch.clone()).unwrap();
        assert_eq!(std::fs::read(dir.join("port")).unwrap(), b"9090");
        // Remove a node: its file goes, the file the plugin never wrote stays.
        host.delete("/config/web/gone", None).unwrap();
        host.commit().unwrap();
        ConfigFileSync::on_changes(&mut host, batch).unwrap();
        assert!(!dir.join("gone").exists());
        assert_eq!(std::fs::read(dir.join("keep.txt")).unwrap(), b"not mine");
        assert!(
            host.ops.is_empty(),
            "a config sync never writes to the tree"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_leaf_that_gains_children_becomes_a_directory() {
        let dir = std::env::temp_dir().join(format!("ek-config-sync-dir-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut host = MockHost::new()
            .with_config("root", "/config/web")
            .with_config("dir", dir.to_str().unwrap());
        let batch = ChangeBatch {
            snapshot: false,
            zxid: 1,
            changes: Vec::new(),
        };
        let snapshot = ChangeBatch {
            snapshot: true,
            ..batch
        };
        host.put("/config/web/tls", b"", false);
        ConfigFileSync::on_changes(&mut host, snapshot.clone()).unwrap();
        assert!(dir.join("tls").is_file());
        host.put("/config/web/tls/cert.pem", b"CERT", false);
        ConfigFileSync::on_changes(&mut host, snapshot.clone()).unwrap();
        assert_eq!(std::fs::read(dir.join("tls/cert.pem")).unwrap(), b"CERT");
        // A file the plugin did not write is never replaced.
        std::fs::write(dir.join("other"), b"mine").unwrap();
        host.put("/config/web/other/x", b"1", false);
        let err = ConfigFileSync::on_changes(&mut host, snapshot).unwrap_err();
        assert!(err.contains("did not write"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn relative_paths_stay_inside_the_root() {
        assert_eq!(
            relative("/config/web", "/config/web/a/b").as_deref(),
            Some("a/b")
        );
        assert_eq!(relative("/config/web", "/config/webx/a"), None);
        assert_eq!(relative("/config/web", "/config/web/.hidden"), None);
        assert_eq!(relative("/config/web", "/config/web"), None);
    }

    #[test]
    fn missing_config_is_an_error() {
        let mut host = MockHost::new();
        let batch = ChangeBatch {
            snapshot: true,
            zxid: 1,
            changes: Vec::new(),
        };
        assert!(ConfigFileSync::on_changes(&mut host, batch)
            .unwrap_err()
            .contains("root"));
    }
}
