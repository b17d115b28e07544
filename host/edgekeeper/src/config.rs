//! The TOML config file: parsing, defaults and validation into an [`ek_server::Config`].
//!
//! Every key is optional. A key's default comes from `ek_server::Config::default()`, except
//! the session timeout bounds, which follow `tick_ms` as ZooKeeper's do. Every error names the
//! file and the key, so an operator can fix the file without reading code.
//! `docs/configuration.md` documents each key. Without an `[ensemble]` table the node runs
//! standalone; the table itself is parsed in [`ensemble`].

mod ensemble;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use base64::Engine as _;
use serde::Deserialize;

/// How log lines are written to stderr.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LogFormat {
    /// One readable line per event.
    #[default]
    Human,
    /// One JSON object per line.
    Json,
}

/// The `[log]` table, after defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LogSettings {
    /// Line format.
    pub(crate) format: LogFormat,
    /// A tracing filter string, e.g. `info` or `info,ek_server=debug`.
    pub(crate) level: String,
}

impl Default for LogSettings {
    fn default() -> LogSettings {
        LogSettings {
            format: LogFormat::Human,
            level: DEFAULT_LOG_LEVEL.to_owned(),
        }
    }
}

const DEFAULT_LOG_LEVEL: &str = "info";

/// Most runtime worker threads accepted.
const WORKER_THREADS_MAX: u32 = 64;

/// Smallest `max_frame_bytes` accepted: a frame must hold a connect request and a path.
const FRAME_BYTES_MIN: u32 = 1024;

/// The file as written: every key optional, no key unknown.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    client_addr: Option<SocketAddr>,
    admin_addr: Option<SocketAddr>,
    tick_ms: Option<u32>,
    min_session_timeout_ms: Option<u32>,
    max_session_timeout_ms: Option<u32>,
    max_frame_bytes: Option<u32>,
    max_data_bytes: Option<u32>,
    snapshot_every_txns: Option<u64>,
    snapshots_retained: Option<u32>,
    reaper_interval_ms: Option<u32>,
    max_client_connections: Option<u32>,
    super_digest: Option<String>,
    node_id: Option<u64>,
    worker_threads: Option<u32>,
    log: Option<FileLog>,
    ensemble: Option<ensemble::FileEnsemble>,
    plugins: Option<FilePlugins>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FilePlugins {
    enabled: Option<bool>,
    cache_dir: Option<PathBuf>,
    scaling_interval_ms: Option<u64>,
    registrar_interval_ms: Option<u64>,
    max_call_timeout_ms: Option<u64>,
    #[serde(default)]
    sources: Vec<FileSource>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSource {
    name: String,
    file: PathBuf,
}

/// The `[plugins]` table: the plugin host and the controllers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PluginSettings {
    /// Run the plugin manager, the scaling and registrar loops and membership.
    pub(crate) enabled: bool,
    /// Compiled plugins; default `<data_dir>/plugin-cache`.
    pub(crate) cache_dir: Option<PathBuf>,
    pub(crate) scaling_interval_ms: u64,
    pub(crate) registrar_interval_ms: u64,
    pub(crate) max_call_timeout_ms: u64,
    /// Static service-record sources: (name, file).
    pub(crate) sources: Vec<(String, PathBuf)>,
}

impl Default for PluginSettings {
    fn default() -> PluginSettings {
        PluginSettings {
            enabled: true,
            cache_dir: None,
            scaling_interval_ms: 15_000,
            registrar_interval_ms: 10_000,
            max_call_timeout_ms: 10_000,
            sources: Vec::new(),
        }
    }
}

fn resolve_plugins(file: FilePlugins, config_dir: &Path) -> Result<PluginSettings, KeyError> {
    let defaults = PluginSettings::default();
    let settings = PluginSettings {
        enabled: file.enabled.unwrap_or(defaults.enabled),
        cache_dir: file.cache_dir.map(|dir| config_dir.join(dir)),
        scaling_interval_ms: file
            .scaling_interval_ms
            .unwrap_or(defaults.scaling_interval_ms),
        registrar_interval_ms: file
            .registrar_interval_ms
            .unwrap_or(defaults.registrar_interval_ms),
        max_call_timeout_ms: file
            .max_call_timeout_ms
            .unwrap_or(defaults.max_call_timeout_ms),
        sources: file
            .sources
            .into_iter()
            .map(|source| (source.name, config_dir.join(source.file)))
            .collect(),
    };
    for (key, value) in [
        ("plugins.scaling_interval_ms", settings.scaling_interval_ms),
        (
            "plugins.registrar_interval_ms",
            settings.registrar_interval_ms,
        ),
    ] {
        if value < 100 {
            return Err(KeyError::new(key, "must be >= 100"));
        }
    }
    if !(10..=60_000).contains(&settings.max_call_timeout_ms) {
        return Err(KeyError::new(
            "plugins.max_call_timeout_ms",
            "must be between 10 and 60000",
        ));
    }
    let mut names = std::collections::HashSet::new();
    for (i, (name, _)) in settings.sources.iter().enumerate() {
        if name.is_empty() || !names.insert(name.clone()) {
            return Err(KeyError::new(
                format!("plugins.sources[{i}].name"),
                "must be non-empty and unique",
            ));
        }
    }
    Ok(settings)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLog {
    format: Option<LogFormat>,
    level: Option<String>,
}

/// A value that is well-typed but not acceptable.
#[derive(Debug)]
struct KeyError {
    /// The full key, e.g. `ensemble.members[2].id`.
    key: String,
    reason: String,
}

impl KeyError {
    fn new(key: impl Into<String>, reason: impl fmt::Display) -> KeyError {
        KeyError {
            key: key.into(),
            reason: reason.to_string(),
        }
    }
}

/// Reads and validates the config file at `path`; with `None`, returns the defaults.
pub(crate) fn load(
    path: Option<&Path>,
) -> anyhow::Result<(ek_server::Config, LogSettings, PluginSettings)> {
    let Some(path) = path else {
        return Ok((
            ek_server::Config::default(),
            LogSettings::default(),
            PluginSettings::default(),
        ));
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("config {}: cannot read", path.display()))?;
    parse(&text, path)
}

/// Parses and validates config `text`; `origin` names the file in error messages, and
/// relative TLS paths in `[ensemble]` are relative to its directory.
pub(crate) fn parse(
    text: &str,
    origin: &Path,
) -> anyhow::Result<(ek_server::Config, LogSettings, PluginSettings)> {
    let file = deserialize(text)
        .map_err(|message| anyhow::anyhow!("config {}: {message}", origin.display()))?;
    let config_dir = origin.parent().unwrap_or(Path::new(""));
    resolve(file, config_dir).map_err(|error| {
        anyhow::anyhow!(
            "config {}: key '{}': {}",
            origin.display(),
            error.key,
            error.reason
        )
    })
}

/// Checks a `[log] level` or `--log-level` filter string.
pub(crate) fn check_log_level(level: &str) -> Result<(), String> {
    if level.trim().is_empty() {
        return Err("must not be empty (try \"info\")".to_owned());
    }
    tracing_subscriber::EnvFilter::builder()
        .parse(level)
        .map(drop)
        .map_err(|error| format!("not a tracing filter: {error}"))
}

/// TOML syntax and type errors, rendered as `key 'x': ...` when serde knows the key.
fn deserialize(text: &str) -> Result<FileConfig, String> {
    let deserializer = toml::Deserializer::new(text);
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let key = error.path().to_string();
        let inner = error.into_inner();
        let position = inner.span().map(|span| line_column(text, span.start));
        // toml puts a syntax error's detail on a second line; keep the error on one.
        let message = inner.message().trim_end().replace('\n', ": ");
        let located = match position {
            Some((line, column)) => format!("{message} (line {line}, column {column})"),
            None => message.clone(),
        };
        if let Some(unknown) = unknown_field(&message) {
            // serde_path_to_error already ends the path with the unknown key.
            let full = if key == unknown || key.ends_with(&format!(".{unknown}")) {
                key.clone()
            } else if key == "." {
                unknown.to_owned()
            } else {
                format!("{key}.{unknown}")
            };
            let position = position
                .map(|(line, _)| format!(" (line {line})"))
                .unwrap_or_default();
            return format!("key '{full}': unknown key{position}");
        }
        if key == "." || key.is_empty() {
            located
        } else {
            format!("key '{key}': {located}")
        }
    })
}

/// The field name in serde's "unknown field `x`, expected ..." message.
fn unknown_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split_once('`').map(|(name, _)| name)
}

/// 1-based line and column of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map_or(0, |tail| tail.chars().count())
        + 1;
    (line, column)
}

/// Fills in defaults and checks every value; `config_dir` anchors relative TLS paths.
fn resolve(
    file: FileConfig,
    config_dir: &Path,
) -> Result<(ek_server::Config, LogSettings, PluginSettings), KeyError> {
    let defaults = ek_server::Config::default();
    let tick_ms = file.tick_ms.unwrap_or(defaults.tick_ms);
    if tick_ms == 0 {
        return Err(KeyError::new("tick_ms", "must be > 0"));
    }
    let mut config = ek_server::Config {
        data_dir: file.data_dir.unwrap_or(defaults.data_dir),
        client_addr: file.client_addr.unwrap_or(defaults.client_addr),
        admin_addr: file.admin_addr.unwrap_or(defaults.admin_addr),
        tick_ms,
        min_session_timeout_ms: file
            .min_session_timeout_ms
            .unwrap_or(tick_ms.saturating_mul(2)),
        max_session_timeout_ms: file
            .max_session_timeout_ms
            .unwrap_or(tick_ms.saturating_mul(20)),
        max_frame_bytes: file.max_frame_bytes.unwrap_or(defaults.max_frame_bytes),
        max_data_bytes: file.max_data_bytes.unwrap_or(defaults.max_data_bytes),
        snapshot_every_txns: file
            .snapshot_every_txns
            .unwrap_or(defaults.snapshot_every_txns),
        snapshots_retained: file
            .snapshots_retained
            .unwrap_or(defaults.snapshots_retained),
        reaper_interval_ms: file
            .reaper_interval_ms
            .unwrap_or(defaults.reaper_interval_ms),
        max_client_connections: file
            .max_client_connections
            .unwrap_or(defaults.max_client_connections),
        super_digest: file.super_digest.or(defaults.super_digest),
        node_id: file.node_id.unwrap_or(defaults.node_id),
        worker_threads: file.worker_threads.unwrap_or(defaults.worker_threads),
        ensemble: None,
    };
    validate(&config)?;
    config.ensemble = file
        .ensemble
        .map(|table| ensemble::resolve(table, file.node_id, config_dir))
        .transpose()?;
    let log = resolve_log(file.log.unwrap_or_default())?;
    let plugins = resolve_plugins(file.plugins.unwrap_or_default(), config_dir)?;
    Ok((config, log, plugins))
}

fn resolve_log(file: FileLog) -> Result<LogSettings, KeyError> {
    let level = file.level.unwrap_or_else(|| DEFAULT_LOG_LEVEL.to_owned());
    check_log_level(&level).map_err(|reason| KeyError::new("log.level", reason))?;
    Ok(LogSettings {
        format: file.format.unwrap_or_default(),
        level,
    })
}

/// The checks that need more than one key or more than the type.
fn validate(config: &ek_server::Config) -> Result<(), KeyError> {
    if !(1..=WORKER_THREADS_MAX).contains(&config.worker_threads) {
        return Err(KeyError::new(
            "worker_threads",
            format!("must be between 1 and {WORKER_THREADS_MAX}"),
        ));
    }
    if config.data_dir.as_os_str().is_empty() {
        return Err(KeyError::new("data_dir", "must not be empty"));
    }
    if config.admin_addr == config.client_addr && config.admin_addr.port() != 0 {
        return Err(KeyError::new(
            "admin_addr",
            format!("must differ from client_addr ({})", config.client_addr),
        ));
    }
    if config.min_session_timeout_ms == 0 {
        return Err(KeyError::new("min_session_timeout_ms", "must be > 0"));
    }
    if config.min_session_timeout_ms > config.max_session_timeout_ms {
        return Err(KeyError::new(
            "min_session_timeout_ms",
            format!(
                "must be <= max_session_timeout_ms ({})",
                config.max_session_timeout_ms
            ),
        ));
    }
    if config.max_frame_bytes < FRAME_BYTES_MIN {
        return Err(KeyError::new(
            "max_frame_bytes",
            format!("must be >= {FRAME_BYTES_MIN}"),
        ));
    }
    if config.max_data_bytes == 0 {
        return Err(KeyError::new("max_data_bytes", "must be > 0"));
    }
    let nonzero = [
        ("snapshot_every_txns", config.snapshot_every_txns),
        ("snapshots_retained", u64::from(config.snapshots_retained)),
        ("reaper_interval_ms", u64::from(config.reaper_interval_ms)),
        ("node_id", config.node_id),
    ];
    if let Some((key, _)) = nonzero.into_iter().find(|(_, value)| *value == 0) {
        return Err(KeyError::new(key, "must be > 0"));
    }
    if let Some(digest) = &config.super_digest {
        check_super_digest(digest).map_err(|reason| KeyError::new("super_digest", reason))?;
    }
    Ok(())
}

/// `user:base64(sha1(user:password))`, as ZooKeeper's `DigestAuthenticationProvider` makes.
fn check_super_digest(digest: &str) -> Result<(), String> {
    const FORM: &str = "must be user:base64(sha1(user:password))";
    let Some((user, hash)) = digest.split_once(':') else {
        return Err(format!("{FORM}, found no ':'"));
    };
    if user.is_empty() {
        return Err(format!("{FORM}, found an empty user"));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(hash)
        .map_err(|error| format!("{FORM}, found bad base64 ({error})"))?;
    if bytes.len() != 20 {
        return Err(format!(
            "{FORM}, found {} bytes instead of a 20-byte SHA-1",
            bytes.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
