//! Tracing setup for `serve`: human or JSON lines on stderr, filtered by the configured level.
//!
//! The filter comes only from the config file or `--log-level`; no environment variable
//! (in particular not `RUST_LOG`) is read, so a node logs the same way wherever it starts.

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LogSettings};

/// Installs the global subscriber; call once, before the node starts.
pub(crate) fn init(settings: &LogSettings) -> anyhow::Result<()> {
    let filter = EnvFilter::builder()
        .parse(&settings.level)
        .map_err(|error| anyhow::anyhow!("log level '{}': {error}", settings.level))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let installed = match settings.format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    installed.map_err(|error| anyhow::anyhow!("cannot install the logger: {error}"))
}
