//! Simulated clients: each has a session and talks to one server at a time, issuing one
//! write after another (create / setData / delete of a small key space, every value
//! unique). A write completes when the server it was sent to applies the txn carrying the
//! client's (session, cxid); a client that waits too long gives up, and the outcome of that
//! write stays unknown.

use crate::check::Violation;
use crate::leader::SimRequest;
use crate::linearizability::{Input, Output};
use crate::sim::{Phase, Sim};
use crate::trace::TraceEvent;
use ek_types::{Acl, OpCode, WriteOp};
use ek_zab::{Role, ServerId, Time};

/// One client write as recorded for the checkers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpRecord {
    /// The client.
    pub client: usize,
    /// Key index (`/k{key}`).
    pub key: usize,
    /// What was asked.
    pub input: Input,
    /// The session and xid of the request, as carried by its txn.
    pub session: i64,
    /// See `session`.
    pub cxid: i32,
    /// The server it was sent to.
    pub node: ServerId,
    /// Invocation, virtual ms.
    pub call_ms: u64,
    /// Reply, virtual ms (`None`: no reply).
    pub ret_ms: Option<u64>,
    /// The reply (`None`: no reply).
    pub output: Option<Output>,
}

pub(crate) struct Client {
    pub(crate) session: i64,
    pub(crate) node: ServerId,
    pub(crate) next_cxid: i32,
    pub(crate) wake_at: Option<Time>,
    /// The write in progress (index into the history).
    pub(crate) waiting: Option<usize>,
}

pub(crate) fn path(key: usize) -> String {
    format!("/k{key}")
}

fn write_op(key: usize, input: Input) -> WriteOp {
    let path = path(key);
    match input {
        Input::Create(value) => WriteOp::Create {
            opcode: OpCode::Create,
            path,
            data: Some(value.to_le_bytes().to_vec()),
            acl: Acl::open_unsafe(),
            flags: 0,
            ttl_ms: 0,
        },
        Input::Set(value) => WriteOp::SetData {
            path,
            data: Some(value.to_le_bytes().to_vec()),
            version: -1,
        },
        Input::Delete | Input::Read => WriteOp::Delete { path, version: -1 },
    }
}

impl Sim {
    fn think(&mut self) -> Time {
        self.now.plus_ms(self.rng.range(0, self.think_ms))
    }

    fn other_node(&mut self) -> ServerId {
        self.rng.range(1, self.nodes.len() as u64)
    }

    /// Client `index` wakes up: its write timed out, or it is time for the next one.
    pub(crate) fn client_wake(&mut self, index: usize) -> Result<(), Violation> {
        if let Some(op) = self.clients[index].waiting.take() {
            let record = &self.history[op];
            let key = (record.session, record.cxid);
            let node = record.node;
            self.node_mut(node).waiting.remove(&key);
            self.stats.timed_out += 1;
            self.record(TraceEvent::ClientTimeout(index, op));
            let next = self.other_node();
            let wake = self.think();
            let client = &mut self.clients[index];
            client.node = next;
            client.wake_at = Some(wake);
            return Ok(());
        }
        if self.phase == Phase::Converge {
            self.clients[index].wake_at = None;
            return Ok(());
        }
        self.issue(index)
    }

    /// While converging: an idle client writes once through `leader` (a barrier), so that
    /// a learner that lost messages on a link that stayed up sees its hole.
    pub(crate) fn barrier(&mut self, leader: ServerId) -> Result<(), Violation> {
        let Some(index) = self.clients.iter().position(|c| c.waiting.is_none()) else {
            return Ok(());
        };
        self.clients[index].node = leader;
        self.issue(index)
    }

    fn refuse(&mut self, index: usize, node: ServerId, why: &'static str) {
        self.stats.refused += 1;
        self.record(TraceEvent::Rejected(index, node, why));
        let next = self.other_node();
        let wake = self.think();
        let client = &mut self.clients[index];
        client.node = next;
        client.wake_at = Some(wake);
    }

    fn issue(&mut self, index: usize) -> Result<(), Violation> {
        let node_id = self.clients[index].node;
        let serving = match self.nodes[&node_id].peer.as_ref() {
            None => Err("down"),
            Some(peer) if !peer.is_established() => Err("not serving"),
            Some(peer) => Ok(peer.role() == Role::Leading),
        };
        let is_leader = match serving {
            Ok(is_leader) => is_leader,
            Err(why) => {
                self.refuse(index, node_id, why);
                return Ok(());
            }
        };
        let key = self.rng.index(self.cfg.keys.max(1));
        self.next_value += 1;
        let value = self.next_value;
        let input = match self.rng.weighted(&[3, 4, 2]) {
            0 => Input::Create(value),
            1 => Input::Set(value),
            _ => Input::Delete,
        };
        let client = &mut self.clients[index];
        let (session, cxid) = (client.session, client.next_cxid);
        client.next_cxid += 1;
        let request = SimRequest {
            session,
            cxid,
            op: write_op(key, input),
        };
        let accepted = self.submit(node_id, is_leader, request)?;
        if !accepted {
            self.refuse(index, node_id, "cannot take writes");
            return Ok(());
        }
        let op = self.history.len();
        self.history.push(OpRecord {
            client: index,
            key,
            input,
            session,
            cxid,
            node: node_id,
            call_ms: self.now.as_ms(),
            ret_ms: None,
            output: None,
        });
        self.node_mut(node_id).waiting.insert((session, cxid), op);
        let deadline = self.now.plus_ms(self.cfg.client_timeout_ms);
        let client = &mut self.clients[index];
        client.waiting = Some(op);
        client.wake_at = Some(deadline);
        self.stats.invoked += 1;
        let what = format!("{} {:?}", path(key), input);
        self.record(TraceEvent::Invoke(index, op, node_id, what));
        self.drain(node_id)
    }

    /// Hands a request to the server the client talks to: a leader queues it for prep, a
    /// learner forwards it. False if the server cannot take it.
    fn submit(
        &mut self,
        node_id: ServerId,
        is_leader: bool,
        request: SimRequest,
    ) -> Result<bool, Violation> {
        if is_leader {
            let node = self.node_mut(node_id);
            node.seen.insert((request.session, request.cxid));
            let Some(leading) = node.leading.as_mut() else {
                return Ok(false);
            };
            leading.queue.push_back(request);
            return Ok(true);
        }
        let payload = postcard::to_allocvec(&request)
            .map_err(|e| Violation::new("simulated server", format!("encode: {e}")))?;
        let peer = self.node_mut(node_id).peer.as_mut();
        Ok(peer.is_some_and(|peer| peer.forward(payload).is_ok()))
    }

    /// The write `op` got its reply.
    pub(crate) fn complete(&mut self, op: usize, output: Output) {
        let now = self.now;
        let record = &mut self.history[op];
        if record.output.is_some() {
            return;
        }
        record.ret_ms = Some(now.as_ms());
        record.output = Some(output);
        let index = record.client;
        if output == Output::Ok {
            self.stats.ok += 1;
        } else {
            self.stats.refused_by_state += 1;
        }
        self.record(TraceEvent::Complete(index, op, format!("{output:?}")));
        if self.clients[index].waiting == Some(op) {
            let wake = self.think();
            let client = &mut self.clients[index];
            client.waiting = None;
            client.wake_at = Some(wake);
        }
    }
}
