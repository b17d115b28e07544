//! `edgekeeper plugin`: build a plugin, test it locally against fixtures, and install,
//! list or remove plugins on a running cluster (through the tree, with any node).

use anyhow::Context;
use ek_plugin::{Manifest, Runtime, RuntimeConfig};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;
use zookeeper_client as zk;

/// Where plugins live in the tree.
const PLUGINS: &str = "/edgekeeper/plugins";
/// Chunks of a component stored in the tree (well under the 1 MiB node limit).
const CHUNK_BYTES: usize = 512 * 1024;

/// `edgekeeper plugin`'s commands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum PluginCommand {
    /// Build a plugin crate (or workspace) for wasm32-wasip2, in release mode, with cargo.
    Build {
        /// The crate or workspace directory.
        #[arg(default_value = ".")]
        path: PathBuf,
        /// Build only this package of a workspace.
        #[arg(long, short)]
        package: Option<String>,
    },
    /// Run a plugin in the real host against a fixture (no cluster): prints one JSON line
    /// per call and checks the fixture's expectations (exit 1 on a mismatch).
    Test {
        /// The component (.wasm).
        wasm: PathBuf,
        /// The fixture (JSON, see docs/plugins.md).
        #[arg(long, value_name = "FILE")]
        input: PathBuf,
        /// The plugin's manifest; default: manifest.toml beside the fixture or one level up.
        #[arg(long, value_name = "FILE")]
        manifest: Option<PathBuf>,
    },
    /// Install (or upgrade) a plugin on a cluster: checks it locally, writes its chunks
    /// and manifest under /edgekeeper/plugins/<name>, and waits for the nodes to load it.
    Install {
        /// The component (.wasm).
        wasm: PathBuf,
        /// The plugin's manifest (TOML).
        #[arg(long, value_name = "FILE")]
        manifest: PathBuf,
        /// Any node of the cluster.
        #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:2181")]
        server: String,
        /// How long to wait for every node to report the new version; 0: do not wait.
        #[arg(long, value_name = "MS", default_value_t = 30_000)]
        wait_ms: u64,
    },
    /// List installed plugins and what each node runs.
    List {
        /// Any node of the cluster.
        #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:2181")]
        server: String,
    },
    /// Remove a plugin from the cluster: every node unloads it.
    Remove {
        /// The plugin's name.
        name: String,
        /// Any node of the cluster.
        #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:2181")]
        server: String,
    },
}

pub(crate) fn run(command: PluginCommand) -> anyhow::Result<()> {
    match command {
        PluginCommand::Build { path, package } => build(&path, package.as_deref()),
        PluginCommand::Test {
            wasm,
            input,
            manifest,
        } => test(&wasm, &input, manifest.as_deref()),
        PluginCommand::Install {
            wasm,
            manifest,
            server,
            wait_ms,
        } => crate::runtime()?.block_on(install(&wasm, &manifest, &server, wait_ms)),
        PluginCommand::List { server } => crate::runtime()?.block_on(list(&server)),
        PluginCommand::Remove { name, server } => {
            crate::runtime()?.block_on(remove(&name, &server))
        }
    }
}

fn build(path: &Path, package: Option<&str>) -> anyhow::Result<()> {
    let mut cargo = std::process::Command::new(std::env::var("CARGO").unwrap_or("cargo".into()));
    cargo
        .current_dir(path)
        .args(["build", "--release", "--target", "wasm32-wasip2"]);
    if let Some(package) = package {
        cargo.args(["--package", package]);
    }
    let status = cargo
        .status()
        .with_context(|| format!("cannot run cargo in {}", path.display()))?;
    if !status.success() {
        anyhow::bail!(
            "cargo build failed ({status}); is the target installed? `rustup target add wasm32-wasip2`"
        );
    }
    // Where cargo put it: a workspace member builds into its workspace's target dir.
    let target_dir = cargo_target_dir(path)
        .or_else(|| std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from))
        .unwrap_or_else(|| path.join("target"));
    let out = target_dir.join("wasm32-wasip2").join("release");
    let mut found = false;
    if let Ok(entries) = std::fs::read_dir(&out) {
        let mut wasm: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "wasm"))
            .filter(|path| match package {
                Some(package) => path
                    .file_stem()
                    .is_some_and(|stem| *stem == *package.replace('-', "_")),
                None => true,
            })
            .collect();
        wasm.sort();
        for path in wasm {
            found = true;
            println!("{}", path.display());
        }
    }
    if !found {
        println!("built; components are in {}", out.display());
    }
    Ok(())
}

/// The target directory cargo uses for the crate or workspace at `path`.
fn cargo_target_dir(path: &Path) -> Option<PathBuf> {
    let output = std::process::Command::new(std::env::var("CARGO").unwrap_or("cargo".into()))
        .current_dir(path)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).ok()?;
    metadata["target_directory"].as_str().map(PathBuf::from)
}

fn read_manifest(path: &Path) -> anyhow::Result<Manifest> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("manifest {}: cannot read", path.display()))?;
    let manifest = Manifest::from_toml(&text)
        .map_err(|err| anyhow::anyhow!("manifest {}: {err}", path.display()))?;
    manifest
        .validate()
        .map_err(|err| anyhow::anyhow!("manifest {}: {err}", path.display()))?;
    Ok(manifest)
}

fn find_manifest(input: &Path) -> anyhow::Result<PathBuf> {
    let dir = input.parent().unwrap_or(Path::new("."));
    for candidate in [
        dir.join("manifest.toml"),
        dir.join("..").join("manifest.toml"),
    ] {
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    anyhow::bail!(
        "no manifest.toml beside {} or one level up; pass --manifest",
        input.display()
    )
}

fn test(wasm: &Path, input: &Path, manifest: Option<&Path>) -> anyhow::Result<()> {
    let manifest_path = match manifest {
        Some(path) => path.to_owned(),
        None => find_manifest(input)?,
    };
    let mut manifest = read_manifest(&manifest_path)?;
    // The fixture tests this file, whatever the manifest says it was built from.
    manifest.sha256 = None;
    // A granted directory that does not exist here (it names a node's path) becomes a
    // temporary one, removed afterwards.
    let mut scratch = None;
    if let Some(files) = &mut manifest.files {
        if !files.host_dir.is_dir() {
            let dir = std::env::temp_dir().join(format!(
                "edgekeeper-plugin-test-{}-{}",
                std::process::id(),
                manifest.name
            ));
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot make {}", dir.display()))?;
            eprintln!(
                "note: {} does not exist here; the plugin gets {} instead",
                files.host_dir.display(),
                dir.display()
            );
            files.host_dir = dir.clone();
            scratch = Some(dir);
        }
    }
    let result = run_fixture(&manifest, wasm, input);
    if let Some(dir) = scratch {
        let _ = std::fs::remove_dir_all(dir);
    }
    result
}

fn run_fixture(manifest: &Manifest, wasm: &Path, input: &Path) -> anyhow::Result<()> {
    let bytes =
        std::fs::read(wasm).with_context(|| format!("plugin {}: cannot read", wasm.display()))?;
    let fixture_text = std::fs::read(input)
        .with_context(|| format!("fixture {}: cannot read", input.display()))?;
    let fixture: ek_plugin::fixture::Fixture = serde_json::from_slice(&fixture_text)
        .map_err(|err| anyhow::anyhow!("fixture {}: {err}", input.display()))?;
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: None,
        fuel: true,
        epoch_tick: Duration::from_millis(10),
        max_timeout: Duration::from_secs(60),
    })
    .map_err(|err| anyhow::anyhow!("cannot start the plugin runtime: {err}"))?;
    let loaded = runtime
        .load(manifest, &bytes)
        .map_err(|err| anyhow::anyhow!("plugin {}: {err}", wasm.display()))?;
    let mut stdout = std::io::stdout().lock();
    let report = ek_plugin::fixture::run(&runtime, &loaded, &fixture, &mut stdout)
        .map_err(|err| anyhow::anyhow!("fixture {}: {err}", input.display()))?;
    stdout.flush().ok();
    if !report.mismatches.is_empty() {
        anyhow::bail!(
            "{} of the fixture's expectations failed:\n  {}",
            report.mismatches.len(),
            report.mismatches.join("\n  ")
        );
    }
    Ok(())
}

async fn connect(server: &str) -> anyhow::Result<(zk::Client, zk::StateWatcher)> {
    let client = crate::ctl::connect(server, Duration::from_secs(10)).await?;
    let watcher = client.state_watcher();
    Ok((client, watcher))
}

fn persistent() -> zk::CreateOptions<'static> {
    zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all())
}

async fn ensure(client: &zk::Client, path: &str) -> anyhow::Result<()> {
    let mut at = String::new();
    for part in path.split('/').filter(|part| !part.is_empty()) {
        at.push('/');
        at.push_str(part);
        match client.create(&at, &[], &persistent()).await {
            Ok(_) | Err(zk::Error::NodeExists) => {}
            Err(err) => anyhow::bail!("cannot create {at}: {err}"),
        }
    }
    Ok(())
}

async fn put(client: &zk::Client, path: &str, data: &[u8]) -> anyhow::Result<()> {
    match client.set_data(path, data, None).await {
        Ok(_) => Ok(()),
        Err(zk::Error::NoNode) => client
            .create(path, data, &persistent())
            .await
            .map(drop)
            .with_context(|| format!("cannot create {path}")),
        Err(err) => Err(anyhow::anyhow!("cannot write {path}: {err}")),
    }
}

/// Deletes `path` and everything below it; missing nodes are fine.
async fn delete_tree(client: &zk::Client, path: &str) -> anyhow::Result<()> {
    let mut stack = vec![(path.to_owned(), false)];
    while let Some((at, expanded)) = stack.pop() {
        if !expanded {
            let children = match client.list_children(&at).await {
                Ok(children) => children,
                Err(zk::Error::NoNode) => continue,
                Err(err) => anyhow::bail!("cannot list {at}: {err}"),
            };
            stack.push((at.clone(), true));
            for child in children {
                stack.push((format!("{at}/{child}"), false));
            }
            continue;
        }
        match client.delete(&at, None).await {
            Ok(()) | Err(zk::Error::NoNode) => {}
            Err(err) => anyhow::bail!("cannot delete {at}: {err}"),
        }
    }
    Ok(())
}

async fn install(wasm: &Path, manifest: &Path, server: &str, wait_ms: u64) -> anyhow::Result<()> {
    let mut manifest = read_manifest(manifest)?;
    let bytes =
        std::fs::read(wasm).with_context(|| format!("plugin {}: cannot read", wasm.display()))?;
    let sha256 = ek_plugin::sha256_hex(&bytes);
    if let Some(expected) = &manifest.sha256 {
        if *expected != sha256 {
            anyhow::bail!(
                "the manifest says sha256 {expected} but {} has sha256 {sha256}",
                wasm.display()
            );
        }
    }
    manifest.sha256 = Some(sha256.clone());
    // Refuse here what every node would refuse: wrong world, missing export, imports
    // beyond the allow-list, a WIT version the host does not offer.
    let check = manifest.clone();
    let check_bytes = bytes.clone();
    tokio::task::spawn_blocking(move || {
        let runtime = Runtime::new(RuntimeConfig {
            cache_dir: None,
            fuel: false,
            epoch_tick: Duration::from_millis(10),
            max_timeout: Duration::from_secs(60),
        })
        .map_err(|err| anyhow::anyhow!("cannot start the plugin runtime: {err}"))?;
        runtime
            .load(&check, &check_bytes)
            .map(drop)
            .map_err(|err| anyhow::anyhow!("plugin {}: {err}", check.name))
    })
    .await
    .context("the local check failed")??;
    let (client, mut watcher) = connect(server).await?;
    let result = async {
        let name = &manifest.name;
        let base = format!("{PLUGINS}/{name}");
        let blobs = format!("{base}/blobs/{sha256}");
        ensure(&client, &blobs).await?;
        for (i, chunk) in bytes.chunks(CHUNK_BYTES).enumerate() {
            put(&client, &format!("{blobs}/{i}"), chunk).await?;
        }
        let json = manifest.to_json();
        put(&client, &format!("{base}/manifest"), &json).await?;
        // Older versions' chunks are no longer needed by anyone.
        for old in client
            .list_children(&format!("{base}/blobs"))
            .await
            .unwrap_or_default()
        {
            if old != sha256 {
                delete_tree(&client, &format!("{base}/blobs/{old}")).await?;
            }
        }
        println!(
            "installed {name} {} ({}, {} bytes, sha256 {sha256})",
            manifest.version,
            world_name(&manifest),
            bytes.len()
        );
        if wait_ms > 0 {
            wait_loaded(
                &client,
                server,
                name,
                &sha256,
                Duration::from_millis(wait_ms),
            )
            .await?;
        }
        anyhow::Ok(())
    }
    .await;
    drop(client);
    crate::ctl::close(&mut watcher).await;
    result
}

fn world_name(manifest: &Manifest) -> String {
    serde_json::to_value(manifest.world)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Statuses of `name`: (node, JSON).
async fn statuses(
    client: &zk::Client,
    name: &str,
) -> anyhow::Result<Vec<(String, serde_json::Value)>> {
    let dir = format!("{PLUGINS}/{name}/status");
    let mut nodes = match client.list_children(&dir).await {
        Ok(nodes) => nodes,
        Err(zk::Error::NoNode) => Vec::new(),
        Err(err) => anyhow::bail!("cannot list {dir}: {err}"),
    };
    nodes.sort();
    let mut out = Vec::new();
    for node in nodes {
        if let Ok((data, _)) = client.get_data(&format!("{dir}/{node}")).await {
            let value = serde_json::from_slice(&data).unwrap_or(serde_json::Value::Null);
            out.push((node, value));
        }
    }
    Ok(out)
}

/// How many nodes the cluster has, from the server's `conf` (its `server.N=` lines); 1 for
/// a standalone node or when it cannot tell.
async fn ensemble_size(server: &str) -> usize {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Some(first) = server.split(',').next() else {
        return 1;
    };
    let first = first.split('/').next().unwrap_or(first);
    let query = async {
        let mut stream = tokio::net::TcpStream::connect(first).await.ok()?;
        stream.write_all(b"conf").await.ok()?;
        let mut text = String::new();
        stream.read_to_string(&mut text).await.ok()?;
        Some(
            text.lines()
                .filter(|line| line.starts_with("server."))
                .count(),
        )
    };
    match tokio::time::timeout(Duration::from_secs(5), query).await {
        Ok(Some(n)) if n > 0 => n,
        _ => 1,
    }
}

async fn wait_loaded(
    client: &zk::Client,
    server: &str,
    name: &str,
    sha256: &str,
    wait: Duration,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + wait;
    let members = ensemble_size(server).await;
    loop {
        let statuses = statuses(client, name).await?;
        let loaded = statuses
            .iter()
            .filter(|(_, status)| status["sha256"] == sha256 && status["state"] != "failed")
            .count();
        let failed: Vec<String> = statuses
            .iter()
            .filter(|(_, status)| status["sha256"] == sha256 && status["state"] == "failed")
            .map(|(node, status)| format!("node {node}: {}", status["error"]))
            .collect();
        if !failed.is_empty() {
            anyhow::bail!("{name} failed to load on {}", failed.join("; "));
        }
        if loaded >= members {
            println!("loaded on {loaded} of {members} nodes");
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            anyhow::bail!(
                "{name} loaded on {loaded} of {members} nodes after {} ms; see `edgekeeper plugin list`",
                wait.as_millis()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn list(server: &str) -> anyhow::Result<()> {
    let (client, mut watcher) = connect(server).await?;
    let result = async {
        let mut names = match client.list_children(PLUGINS).await {
            Ok(names) => names,
            Err(zk::Error::NoNode) => Vec::new(),
            Err(err) => anyhow::bail!("cannot list {PLUGINS}: {err}"),
        };
        names.sort();
        if names.is_empty() {
            println!("no plugins installed");
        }
        for name in names {
            let manifest = client
                .get_data(&format!("{PLUGINS}/{name}/manifest"))
                .await
                .ok()
                .and_then(|(data, _)| Manifest::from_json(&data).ok());
            match &manifest {
                Some(manifest) => println!(
                    "{name} {} {} placement={} sha256={}",
                    manifest.version,
                    world_name(manifest),
                    serde_json::to_value(manifest.effective_placement())
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default(),
                    manifest.sha256.as_deref().unwrap_or("?"),
                ),
                None => println!("{name} (no readable manifest)"),
            }
            for (node, status) in statuses(&client, &name).await? {
                let error = status["error"]
                    .as_str()
                    .map(|error| format!(" error: {error}"))
                    .unwrap_or_default();
                println!(
                    "  node {node}: {} active={}{error}",
                    status["state"].as_str().unwrap_or("?"),
                    status["active"]
                );
            }
        }
        anyhow::Ok(())
    }
    .await;
    drop(client);
    crate::ctl::close(&mut watcher).await;
    result
}

async fn remove(name: &str, server: &str) -> anyhow::Result<()> {
    let (client, mut watcher) = connect(server).await?;
    let result = async {
        let base = format!("{PLUGINS}/{name}");
        match client.delete(&format!("{base}/manifest"), None).await {
            Ok(()) => {}
            Err(zk::Error::NoNode) => anyhow::bail!("plugin {name} is not installed"),
            Err(err) => anyhow::bail!("cannot remove {name}: {err}"),
        }
        // Nodes unload it and drop their status nodes; give them a moment, then clear up.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while tokio::time::Instant::now() < deadline && !statuses(&client, name).await?.is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        delete_tree(&client, &base).await?;
        println!("removed {name}");
        anyhow::Ok(())
    }
    .await;
    drop(client);
    crate::ctl::close(&mut watcher).await;
    result
}
