//! Probes of a running cluster: four-letter words (`srvr`, `hash`, `cons`), the admin
//! endpoint (`/metrics`, `/healthz`), and the waits built on them (a leader, serving,
//! converged digests, sync counters).

use std::future::Future;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{Cluster, Mode, CLUSTER_WAIT, SYNCS_FAMILIES};
use crate::proxy::NodeId;

impl Cluster {
    /// Sends a four-letter word to node `id`'s client port; `None` if it does not answer.
    pub(crate) async fn four_letter_word(&self, id: NodeId, word: &str) -> Option<String> {
        let addr = self.client_addr(id);
        let exchange = async {
            let mut stream = TcpStream::connect(addr).await.ok()?;
            stream.write_all(word.as_bytes()).await.ok()?;
            let mut answer = Vec::new();
            stream.read_to_end(&mut answer).await.ok()?;
            String::from_utf8(answer).ok()
        };
        tokio::time::timeout(Duration::from_secs(5), exchange)
            .await
            .ok()
            .flatten()
    }

    /// Node `id`'s mode from `srvr`; `None` if it does not answer.
    pub(crate) async fn mode(&self, id: NodeId) -> Option<Mode> {
        let answer = self.four_letter_word(id, "srvr").await?;
        if answer.contains("not currently serving") {
            return Some(Mode::NotServing);
        }
        let mode = answer
            .lines()
            .find_map(|line| line.strip_prefix("Mode: "))?;
        match mode.trim() {
            "leader" => Some(Mode::Leader),
            "follower" => Some(Mode::Follower),
            "observer" => Some(Mode::Observer),
            "standalone" => Some(Mode::Standalone),
            _ => None,
        }
    }

    /// Node `id`'s last applied zxid from `srvr`; `None` if it does not serve.
    pub(crate) async fn zxid(&self, id: NodeId) -> Option<i64> {
        let answer = self.four_letter_word(id, "srvr").await?;
        let hex = answer
            .lines()
            .find_map(|line| line.strip_prefix("Zxid: 0x"))?;
        i64::from_str_radix(hex.trim(), 16)
            .or_else(|_| u64::from_str_radix(hex.trim(), 16).map(|z| z as i64))
            .ok()
    }

    /// Node `id`'s `(last zxid, tree digest)` from `hash`; `None` if it does not answer so.
    pub(crate) async fn digest(&self, id: NodeId) -> Option<(i64, String)> {
        let answer = self.four_letter_word(id, "hash").await?;
        let mut lines = answer.lines();
        if lines.next()? != "Digest in history:" {
            return None;
        }
        let (zxid, digest) = lines.next()?.split_once(": ")?;
        Some((zxid.trim().parse().ok()?, digest.trim().to_owned()))
    }

    /// Which node holds session `session_id` now, by `cons` on every live node.
    pub(crate) async fn node_of_session(&self, session_id: i64) -> Option<NodeId> {
        let needle = format!("sid=0x{:x},", session_id as u64);
        for id in self.live() {
            let cons = self.four_letter_word(id, "cons").await.unwrap_or_default();
            if cons.contains(&needle) {
                return Some(id);
            }
        }
        None
    }

    /// One sample of node `id`'s `/metrics`, e.g. `edgekeeper_zab_syncs_total{kind="diff"}`
    /// (labels not named in `selector` may have any value); `None` if there is none.
    pub(crate) async fn metric(&self, id: NodeId, selector: &str) -> Option<f64> {
        let (status, body) = self.admin_get(id, "/metrics").await?;
        if status != 200 {
            return None;
        }
        find_sample(&body, selector)
    }

    /// Learners synchronised by `kind` (`diff`, `trunc` or `snap`) as counted by
    /// `edgekeeper_zab_syncs_total` on the nodes `ids`, summed: only a leader counts, so the
    /// sum does not depend on which of them leads. The server exports the family without
    /// the `edgekeeper_` prefix (ZooKeeper's metrics are unprefixed), so either name counts.
    pub(crate) async fn syncs(&self, kind: &str, ids: &[NodeId]) -> f64 {
        let mut total = 0.0;
        for &id in ids {
            for name in SYNCS_FAMILIES {
                let selector = format!("{name}{{kind=\"{kind}\"}}");
                if let Some(value) = self.metric(id, &selector).await {
                    total += value;
                    break;
                }
            }
        }
        total
    }

    /// Waits until the `kind` sync count over `ids` exceeds `before` (see
    /// [`Cluster::syncs`]).
    pub(crate) async fn wait_syncs_above(&self, kind: &str, ids: &[NodeId], before: f64) {
        let what = format!(
            "edgekeeper_zab_syncs_total{{kind=\"{kind}\"}} on nodes {ids:?} to exceed {before}"
        );
        self.wait_for(&what, || async {
            (self.syncs(kind, ids).await > before).then_some(())
        })
        .await
    }

    /// The HTTP status of node `id`'s `/healthz`; `None` if the admin port does not answer.
    pub(crate) async fn healthz(&self, id: NodeId) -> Option<u16> {
        self.admin_get(id, "/healthz")
            .await
            .map(|(status, _)| status)
    }

    /// `GET path` on node `id`'s admin port: the status and the body.
    async fn admin_get(&self, id: NodeId, path: &str) -> Option<(u16, String)> {
        let addr = self.node(id).admin_addr;
        let exchange = async {
            let mut stream = TcpStream::connect(addr).await.ok()?;
            let request =
                format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
            stream.write_all(request.as_bytes()).await.ok()?;
            let mut answer = Vec::new();
            stream.read_to_end(&mut answer).await.ok()?;
            let answer = String::from_utf8_lossy(&answer).into_owned();
            let status = answer.split(' ').nth(1)?.parse().ok()?;
            let body = answer.split_once("\r\n\r\n").map(|(_, body)| body)?;
            Some((status, body.to_owned()))
        };
        tokio::time::timeout(Duration::from_secs(5), exchange)
            .await
            .ok()
            .flatten()
    }

    /// Polls `probe` until it gives a value; panics with `what` and every log after
    /// [`CLUSTER_WAIT`].
    pub(crate) async fn wait_for<T, F, Fut>(&self, what: &str, mut probe: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        let deadline = Instant::now() + CLUSTER_WAIT;
        loop {
            if let Some(value) = probe().await {
                return value;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out after {CLUSTER_WAIT:?} waiting for {what}\n{}",
                    self.logs()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until one live node leads and every other live node follows or observes it;
    /// returns the leader.
    pub(crate) async fn leader(&self) -> NodeId {
        self.leader_among(&self.live()).await
    }

    /// Waits until exactly one of `ids` leads and all the others serve as followers or
    /// observers; returns the leader. Nodes outside `ids` are not asked.
    pub(crate) async fn leader_among(&self, ids: &[NodeId]) -> NodeId {
        let what = format!("one leader among nodes {ids:?}, the others serving");
        self.wait_for(&what, || async {
            let mut leaders = Vec::new();
            for &id in ids {
                match self.mode(id).await? {
                    Mode::Leader => leaders.push(id),
                    Mode::Follower | Mode::Observer => {}
                    Mode::Standalone => panic!(
                        "node {id} runs standalone: the [ensemble] table was ignored; log:\n{}",
                        self.log_tail(id)
                    ),
                    Mode::NotServing => return None,
                }
            }
            (leaders.len() == 1).then(|| leaders[0])
        })
        .await
    }

    /// Waits until node `id` serves (answers `srvr` with a mode); returns the mode.
    pub(crate) async fn wait_serving(&self, id: NodeId) -> Mode {
        self.wait_for(&format!("node {id} to serve"), || async {
            self.mode(id).await.filter(|mode| *mode != Mode::NotServing)
        })
        .await
    }

    /// Waits until node `id` answers `srvr` with "not currently serving requests".
    pub(crate) async fn wait_not_serving(&self, id: NodeId) {
        self.wait_for(&format!("node {id} to stop serving"), || async {
            (self.mode(id).await? == Mode::NotServing).then_some(())
        })
        .await
    }

    /// Waits until every node in `ids` reports the same last zxid and digest (`hash`);
    /// returns them. A write load must have stopped for this to happen.
    pub(crate) async fn wait_converged(&self, ids: &[NodeId]) -> (i64, String) {
        let what = format!("equal zxids and digests on nodes {ids:?}");
        let mut last_seen = Vec::new();
        let deadline = Instant::now() + CLUSTER_WAIT;
        loop {
            last_seen.clear();
            for &id in ids {
                last_seen.push((id, self.digest(id).await));
            }
            let first = last_seen[0].1.clone();
            if first.is_some() && last_seen.iter().all(|(_, seen)| *seen == first) {
                return first.unwrap_or_default();
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out after {CLUSTER_WAIT:?} waiting for {what}; last seen (node, \
                     (zxid, digest)): {last_seen:?}\n{}",
                    self.logs()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// The value of the first sample in Prometheus text `body` matching `selector`: a metric
/// name, optionally followed by `{label="value",...}` that the sample's labels must include.
pub(crate) fn find_sample(body: &str, selector: &str) -> Option<f64> {
    let (name, wanted) = split_sample(selector)?;
    body.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (sample, value) = line.rsplit_once(' ')?;
            let (sample_name, labels) = split_sample(sample)?;
            let matches = sample_name == name && wanted.iter().all(|label| labels.contains(label));
            matches.then(|| value.trim().parse().ok()).flatten()
        })
}

/// `name{a="x",b="y"}` into `name` and `["a=\"x\"", "b=\"y\""]`.
fn split_sample(sample: &str) -> Option<(&str, Vec<&str>)> {
    match sample.split_once('{') {
        None => Some((sample.trim(), Vec::new())),
        Some((name, rest)) => {
            let labels = rest.strip_suffix('}')?;
            let labels = labels
                .split(',')
                .map(str::trim)
                .filter(|label| !label.is_empty())
                .collect();
            Some((name.trim(), labels))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::find_sample;

    #[test]
    fn samples_are_found_by_name_and_labels() {
        let body = "# HELP edgekeeper_zab_syncs_total syncs\n\
                    # TYPE edgekeeper_zab_syncs_total counter\n\
                    edgekeeper_zab_syncs_total{kind=\"diff\"} 3\n\
                    edgekeeper_zab_syncs_total{kind=\"snap\"} 1\n\
                    edgekeeper_zab_epoch 2\n\
                    edgekeeper_zab_epoch_other 9\n";
        let diff = "edgekeeper_zab_syncs_total{kind=\"diff\"}";
        assert_eq!(find_sample(body, diff), Some(3.0));
        let snap = "edgekeeper_zab_syncs_total{kind=\"snap\"}";
        assert_eq!(find_sample(body, snap), Some(1.0));
        let trunc = "edgekeeper_zab_syncs_total{kind=\"trunc\"}";
        assert_eq!(find_sample(body, trunc), None);
        assert_eq!(find_sample(body, "edgekeeper_zab_epoch"), Some(2.0));
        assert_eq!(find_sample(body, "edgekeeper_zab"), None);
    }
}
