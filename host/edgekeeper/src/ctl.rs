//! `edgekeeper ctl`: a small zkCli for any ZooKeeper-protocol server, on `zookeeper-client`.
//!
//! Each run opens one session, does one command and closes the session. Output follows
//! zkCli where zkCli has a fixed format (`stat`, error messages); errors exit with code 1.

use std::future::Future;
use std::io::Write;
use std::time::Duration;

use zookeeper_client as zk;

/// `edgekeeper ctl`'s arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct CtlArgs {
    /// The server to talk to: HOST:PORT, or a ZooKeeper connect string `h1:p1,h2:p2[/chroot]`.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:2181")]
    server: String,
    /// How long to wait for the session and for each reply, in ms; also the requested
    /// session timeout.
    #[arg(long, value_name = "N", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    timeout_ms: u64,
    #[command(subcommand)]
    command: CtlCommand,
}

#[derive(Debug, clap::Subcommand)]
enum CtlCommand {
    /// List the children of PATH, one per line, sorted.
    Ls {
        /// Znode path, e.g. `/app`.
        path: String,
    },
    /// Print the data of PATH (as UTF-8, lossily).
    Get {
        /// Also print the stat, as `stat` does.
        #[arg(short = 's', long)]
        stat: bool,
        /// Znode path.
        path: String,
    },
    /// Set the data of PATH.
    Set {
        /// Znode path.
        path: String,
        /// New data, as UTF-8.
        data: String,
        /// Only if the node's data version is V.
        #[arg(
            short = 'v',
            long = "version",
            value_name = "V",
            allow_negative_numbers = true
        )]
        version: Option<i32>,
    },
    /// Create PATH (with empty data unless DATA is given) and print the created path.
    Create {
        /// Ephemeral: the node is deleted when this command's session closes.
        #[arg(short = 'e', long)]
        ephemeral: bool,
        /// Sequential: the server appends a 10-digit sequence number to the name.
        #[arg(short = 's', long)]
        sequential: bool,
        /// Keep the session open until Ctrl-C (so an ephemeral node stays).
        #[arg(long)]
        hold: bool,
        /// Znode path; its parent must exist.
        path: String,
        /// Initial data, as UTF-8.
        data: Option<String>,
    },
    /// Delete PATH.
    Delete {
        /// Znode path; it must have no children.
        path: String,
        /// Only if the node's data version is V.
        #[arg(
            short = 'v',
            long = "version",
            value_name = "V",
            allow_negative_numbers = true
        )]
        version: Option<i32>,
    },
    /// Print the stat of PATH in zkCli's format.
    Stat {
        /// Znode path.
        path: String,
    },
    /// Watch PATH's data and children; print each event as `EVENT_TYPE PATH`.
    Watch {
        /// Znode path; it need not exist yet.
        path: String,
        /// Stop after N events (default: until Ctrl-C).
        #[arg(short = 'n', long, value_name = "N")]
        count: Option<u64>,
        /// Use one-shot watches, set again after each event, instead of a persistent watch
        /// (events between two watches are missed; used anyway before ZooKeeper 3.6).
        #[arg(long)]
        oneshot: bool,
    },
}

/// Runs one `ctl` command against `args.server`.
pub(crate) async fn run(args: CtlArgs) -> anyhow::Result<()> {
    let timeout = Duration::from_millis(args.timeout_ms);
    let client = connect(&args.server, timeout).await?;
    let mut state_watcher = client.state_watcher();
    let session = Session { client, timeout };
    let mut stdout = std::io::stdout().lock();
    let result = session.execute(args.command, &mut stdout).await;
    drop(session);
    close(&mut state_watcher).await;
    result
}

pub(crate) async fn connect(server: &str, timeout: Duration) -> anyhow::Result<zk::Client> {
    let connector = zk::Client::connector()
        .with_session_timeout(timeout)
        .with_fail_eagerly();
    match tokio::time::timeout(timeout, connector.connect(server)).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(error)) => Err(anyhow::anyhow!("cannot connect to {server}: {error}")),
        Err(_) => Err(anyhow::anyhow!(
            "cannot connect to {server}: no session within {} ms",
            timeout.as_millis()
        )),
    }
}

/// Waits briefly for the close request to reach the server, so ephemerals go at once.
pub(crate) async fn close(state_watcher: &mut zk::StateWatcher) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    while !state_watcher.peek_state().is_terminated() {
        if tokio::time::timeout_at(deadline, state_watcher.changed())
            .await
            .is_err()
        {
            return;
        }
    }
}

struct Session {
    client: zk::Client,
    timeout: Duration,
}

impl Session {
    async fn execute(&self, command: CtlCommand, out: &mut dyn Write) -> anyhow::Result<()> {
        match command {
            CtlCommand::Ls { path } => {
                let mut children = self.call(&path, self.client.list_children(&path)).await?;
                children.sort();
                for child in children {
                    writeln!(out, "{child}")?;
                }
            }
            CtlCommand::Get { stat, path } => {
                let (data, node_stat) = self.call(&path, self.client.get_data(&path)).await?;
                writeln!(out, "{}", String::from_utf8_lossy(&data))?;
                if stat {
                    out.write_all(format_stat(&node_stat).as_bytes())?;
                }
            }
            CtlCommand::Set {
                path,
                data,
                version,
            } => {
                let set = self.client.set_data(&path, data.as_bytes(), version);
                self.call(&path, set).await?;
            }
            CtlCommand::Create {
                ephemeral,
                sequential,
                hold,
                path,
                data,
            } => {
                let created = self
                    .create(&path, data.as_deref(), ephemeral, sequential)
                    .await?;
                writeln!(out, "{created}")?;
                out.flush()?;
                if hold {
                    tokio::signal::ctrl_c().await?;
                }
            }
            CtlCommand::Delete { path, version } => {
                self.call(&path, self.client.delete(&path, version)).await?;
            }
            CtlCommand::Stat { path } => {
                let stat = self.call(&path, self.client.check_stat(&path)).await?;
                let stat =
                    stat.ok_or_else(|| anyhow::anyhow!(describe(&zk::Error::NoNode, &path)))?;
                out.write_all(format_stat(&stat).as_bytes())?;
            }
            CtlCommand::Watch {
                path,
                count,
                oneshot,
            } => {
                self.watch(&path, count, oneshot, out).await?;
            }
        }
        out.flush()?;
        Ok(())
    }

    /// Awaits one reply within the timeout and words its error as zkCli does.
    async fn call<T>(
        &self,
        path: &str,
        reply: impl Future<Output = Result<T, zk::Error>>,
    ) -> anyhow::Result<T> {
        match tokio::time::timeout(self.timeout, reply).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(anyhow::anyhow!(describe(&error, path))),
            Err(_) => Err(anyhow::anyhow!(describe(&zk::Error::Timeout, path))),
        }
    }

    async fn create(
        &self,
        path: &str,
        data: Option<&str>,
        ephemeral: bool,
        sequential: bool,
    ) -> anyhow::Result<String> {
        let mode = match (ephemeral, sequential) {
            (false, false) => zk::CreateMode::Persistent,
            (false, true) => zk::CreateMode::PersistentSequential,
            (true, false) => zk::CreateMode::Ephemeral,
            (true, true) => zk::CreateMode::EphemeralSequential,
        };
        let options = mode.with_acls(zk::Acls::anyone_all());
        let data = data.unwrap_or_default().as_bytes();
        let (_, sequence) = self
            .call(path, self.client.create(path, data, &options))
            .await?;
        Ok(if sequential {
            format!("{path}{sequence}")
        } else {
            path.to_owned()
        })
    }

    /// Prints node events until `count` of them, Ctrl-C, or the end of the session.
    async fn watch(
        &self,
        path: &str,
        count: Option<u64>,
        oneshot: bool,
        out: &mut dyn Write,
    ) -> anyhow::Result<()> {
        let persistent = if oneshot {
            Err(zk::Error::Unimplemented)
        } else {
            let watch = self.client.watch(path, zk::AddWatchMode::Persistent);
            tokio::time::timeout(self.timeout, watch)
                .await
                .unwrap_or(Err(zk::Error::Timeout))
        };
        let mut watch = match persistent {
            Ok(watcher) => Watch::Persistent(watcher),
            // Servers before ZooKeeper 3.6 have no persistent watches.
            Err(zk::Error::Unimplemented) => Watch::Oneshot,
            Err(error) => return Err(anyhow::anyhow!(describe(&error, path))),
        };
        let ctrl_c = tokio::signal::ctrl_c();
        tokio::pin!(ctrl_c);
        let mut seen = 0;
        while count.is_none_or(|count| seen < count) {
            let event = tokio::select! {
                event = watch.next(self, path) => event?,
                _ = &mut ctrl_c => break,
            };
            if event.event_type == zk::EventType::Session {
                if event.session_state.is_terminated() {
                    anyhow::bail!("session {}", event.session_state);
                }
                eprintln!("session {}", event.session_state);
                continue;
            }
            writeln!(out, "{} {}", event_type_name(event.event_type), event.path)?;
            out.flush()?;
            seen += 1;
        }
        Ok(())
    }
}

/// A persistent watch, or one-shot watches set again after each event.
enum Watch {
    Persistent(zk::PersistentWatcher),
    Oneshot,
}

impl Watch {
    async fn next(&mut self, session: &Session, path: &str) -> anyhow::Result<zk::WatchedEvent> {
        match self {
            Watch::Persistent(watcher) => Ok(watcher.changed().await),
            Watch::Oneshot => next_oneshot(session, path).await,
        }
    }
}

/// Sets an exists watch and, if the node is there, a child watch; returns the first event.
async fn next_oneshot(session: &Session, path: &str) -> anyhow::Result<zk::WatchedEvent> {
    let (stat, data_watcher) = session
        .call(path, session.client.check_and_watch_stat(path))
        .await?;
    let child_watcher = match stat {
        None => None,
        Some(_) => {
            let children = session.client.list_and_watch_children(path);
            match tokio::time::timeout(session.timeout, children).await {
                Ok(Ok((_, watcher))) => Some(watcher),
                // Deleted in between: the exists watch reports that.
                Ok(Err(zk::Error::NoNode)) => None,
                Ok(Err(error)) => anyhow::bail!(describe(&error, path)),
                Err(_) => anyhow::bail!(describe(&zk::Error::Timeout, path)),
            }
        }
    };
    let child_event = async move {
        match child_watcher {
            Some(watcher) => watcher.changed().await,
            None => std::future::pending().await,
        }
    };
    Ok(tokio::select! {
        event = data_watcher.changed() => event,
        event = child_event => event,
    })
}

/// ZooKeeper's name for an event type (`None` for session events, as in Java).
fn event_type_name(event_type: zk::EventType) -> &'static str {
    match event_type {
        zk::EventType::Session => "None",
        zk::EventType::NodeCreated => "NodeCreated",
        zk::EventType::NodeDeleted => "NodeDeleted",
        zk::EventType::NodeDataChanged => "NodeDataChanged",
        zk::EventType::NodeChildrenChanged => "NodeChildrenChanged",
    }
}

/// An error as zkCli's `CliWrapperException` words it, else as `KeeperException` does.
fn describe(error: &zk::Error, path: &str) -> String {
    use zk::Error;
    let code = match error {
        Error::NoNode => return format!("Node does not exist: {path}"),
        Error::NoChildrenForEphemerals => {
            return format!("Ephemerals cannot have children: {path}")
        }
        Error::NodeExists => return format!("Node already exists: {path}"),
        Error::NotEmpty => return format!("Node not empty: {path}"),
        Error::NotReadOnly => return format!("Not a read-only call: {path}"),
        Error::InvalidAcl => return format!("Acl is not valid : {path}"),
        Error::NoAuth => return format!("Insufficient permission : {path}"),
        Error::BadVersion => return format!("version No is not valid : {path}"),
        Error::BadArguments(reason) => {
            return format!("Arguments are not valid : {path}: {reason}")
        }
        Error::ConnectionLoss => "ConnectionLoss",
        Error::Timeout => "OperationTimeout",
        Error::SessionExpired => "Session expired",
        Error::AuthFailed => "AuthFailed",
        Error::SessionMoved => "Session moved",
        Error::NoWatcher => "No such watcher",
        Error::QuotaExceeded => "Quota has exceeded",
        Error::Throttled => "Op throttled due to high load",
        Error::MarshallingError => "MarshallingError",
        Error::Unimplemented => "Unimplemented",
        Error::ReconfigDisabled => "Reconfig is disabled",
        Error::NoHosts => "ConnectionLoss",
        other => return format!("{other} for {path}"),
    };
    format!("KeeperErrorCode = {code} for {path}")
}

/// A stat as zkCli's `StatPrinter` prints it (times in UTC), one `name = value` per line.
fn format_stat(stat: &zk::Stat) -> String {
    format!(
        "cZxid = 0x{:x}\nctime = {}\nmZxid = 0x{:x}\nmtime = {}\npZxid = 0x{:x}\n\
         cversion = {}\ndataVersion = {}\naclVersion = {}\nephemeralOwner = 0x{:x}\n\
         dataLength = {}\nnumChildren = {}\n",
        stat.czxid,
        java_date(stat.ctime),
        stat.mzxid,
        java_date(stat.mtime),
        stat.pzxid,
        stat.cversion,
        stat.version,
        stat.aversion,
        stat.ephemeral_owner,
        stat.data_length,
        stat.num_children,
    )
}

/// Milliseconds since the epoch as Java's `Date.toString()` in UTC: `Thu Jan 01 00:00:00 UTC 1970`.
fn java_date(epoch_ms: i64) -> String {
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let seconds = epoch_ms.div_euclid(1000);
    let days = seconds.div_euclid(86_400);
    let second_of_day = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{} {} {:02} {:02}:{:02}:{:02} UTC {}",
        WEEKDAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize],
        day,
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60,
        year,
    )
}

/// (year, month 1-12, day 1-31) of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests;
