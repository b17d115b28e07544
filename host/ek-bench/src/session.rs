//! One load session: keeps `--in-flight` requests outstanding on its connection, drawing
//! each op from the mix, until the run's op budget or deadline is reached, then drains.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ek_jute::{OwnedResponse, Request};
use ek_types::{OpCode, OpResult, WriteOp};
use tokio::time::{timeout, Instant};

use crate::conn::{Conn, Reply};
use crate::mix::{OpKind, OpMix, Rng};
use crate::stats::Recorder;
use crate::tree::create_op;
use crate::BenchError;

/// How long closing a session may take at the end of a run.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// What every session of a run shares.
#[derive(Debug)]
pub(crate) struct Plan {
    /// Which ops to draw.
    pub(crate) mix: OpMix,
    /// The paths of the keys created during setup.
    pub(crate) keys: Vec<String>,
    /// The value written by create and setData.
    pub(crate) value: Vec<u8>,
    /// Where `create` puts its new nodes.
    pub(crate) create_parent: String,
    /// setData ops per multi.
    pub(crate) multi_size: usize,
    /// Requests outstanding per session.
    pub(crate) in_flight: usize,
    /// Ops sent from this instant on are measured; earlier ones are warm-up.
    pub(crate) measure_start: Instant,
    /// No op is sent from this instant on (`--duration-s`).
    pub(crate) deadline: Option<Instant>,
    /// Measured ops left to send (`--ops`), shared by all sessions.
    pub(crate) budget: Option<AtomicU64>,
    /// A reply slower than this fails the run.
    pub(crate) request_timeout: Duration,
    /// The run's seed; each session mixes in its index.
    pub(crate) seed: u64,
}

impl Plan {
    /// Takes one op from the budget; false when it is used up.
    fn claim_op(&self) -> bool {
        match &self.budget {
            None => true,
            Some(left) => left
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok(),
        }
    }

    fn key(&self, rng: &mut Rng) -> String {
        let index = rng.below(self.keys.len() as u64) as usize;
        self.keys[index].clone()
    }
}

/// What one session measured.
#[derive(Debug, Default)]
pub(crate) struct SessionResult {
    /// Latencies and errors of the measured ops.
    pub(crate) recorder: Recorder,
    /// When the last measured reply arrived.
    pub(crate) last_measured_reply: Option<Instant>,
}

/// A request waiting for its reply.
#[derive(Debug)]
struct Pending {
    kind: OpKind,
    sent_at: Instant,
    measured: bool,
}

/// Runs session `index` to the end of the run, then closes it.
pub(crate) async fn run_session(
    plan: Arc<Plan>,
    index: usize,
    mut conn: Conn,
) -> Result<SessionResult, BenchError> {
    let mut rng = Rng::new(plan.seed, index as u64);
    let mut pending: HashMap<i32, Pending> = HashMap::with_capacity(plan.in_flight);
    let mut result = SessionResult::default();
    let mut creates: u64 = 0;
    let mut stopping = false;
    loop {
        if !stopping {
            stopping = fill(
                &plan,
                index,
                &mut conn,
                &mut rng,
                &mut pending,
                &mut creates,
            );
        }
        if pending.is_empty() {
            break;
        }
        conn.flush().await?;
        let reply = timeout(plan.request_timeout, conn.next_reply())
            .await
            .map_err(|_| BenchError::Timeout {
                addr: conn.addr().to_owned(),
                what: "a bench request".to_owned(),
                timeout: plan.request_timeout,
            })??;
        let Some(request) = pending.remove(&reply.header.xid) else {
            continue;
        };
        let ok = reply_ok(&conn, request.kind, &reply)?;
        if request.measured {
            let latency = reply.received_at.saturating_duration_since(request.sent_at);
            result.recorder.record(request.kind, latency, ok);
            result.last_measured_reply = Some(reply.received_at);
        }
    }
    conn.close(CLOSE_WAIT).await;
    Ok(result)
}

/// Queues ops until `in_flight` are outstanding. Returns true once the run is over for
/// this session (budget used up or deadline passed): no more ops will be sent.
fn fill(
    plan: &Plan,
    index: usize,
    conn: &mut Conn,
    rng: &mut Rng,
    pending: &mut HashMap<i32, Pending>,
    creates: &mut u64,
) -> bool {
    while pending.len() < plan.in_flight {
        let now = Instant::now();
        if plan.deadline.is_some_and(|deadline| now >= deadline) {
            return true;
        }
        let measured = now >= plan.measure_start;
        if measured && !plan.claim_op() {
            return true;
        }
        let kind = plan.mix.pick(rng);
        let request = build_request(plan, kind, rng, index, creates);
        let xid = conn.queue(&request);
        pending.insert(
            xid,
            Pending {
                kind,
                sent_at: now,
                measured,
            },
        );
    }
    false
}

/// The request for one op of `kind`.
fn build_request(
    plan: &Plan,
    kind: OpKind,
    rng: &mut Rng,
    index: usize,
    creates: &mut u64,
) -> Request {
    let set_data = |rng: &mut Rng| WriteOp::SetData {
        path: plan.key(rng),
        data: Some(plan.value.clone()),
        version: -1,
    };
    match kind {
        OpKind::Create => {
            let path = format!("{}/s{index}-{creates}", plan.create_parent);
            *creates += 1;
            Request::Write(create_op(path, plan.value.clone()))
        }
        OpKind::SetData => Request::Write(set_data(rng)),
        OpKind::GetData => Request::GetData {
            path: plan.key(rng),
            watch: false,
        },
        OpKind::Exists => Request::Exists {
            path: plan.key(rng),
            watch: false,
        },
        OpKind::Multi => Request::Multi((0..plan.multi_size).map(|_| set_data(rng)).collect()),
    }
}

/// Whether the reply reports success. A multi fails when its header has an error or any
/// of its results is an error.
fn reply_ok(conn: &Conn, kind: OpKind, reply: &Reply) -> Result<bool, BenchError> {
    if reply.header.err != 0 {
        return Ok(false);
    }
    if kind != OpKind::Multi {
        return Ok(true);
    }
    let (_, body) = conn.decode(reply, OpCode::Multi)?;
    Ok(match body {
        Some(OwnedResponse::Multi(results)) => !results
            .iter()
            .any(|result| matches!(result, OpResult::Error(_))),
        _ => false,
    })
}
