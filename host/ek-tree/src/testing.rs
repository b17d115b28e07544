//! Helpers shared by the unit tests.

use crate::{Applied, Caller, DataTree, Prep, PrepContext};
use ek_types::{Acl, ErrorCode, OpCode, SessionId, Txn, TxnBody, WriteOp, Zxid};

/// A leader in a test: a tree, its prep, and the next zxid.
pub(crate) struct Leader {
    pub(crate) tree: DataTree,
    pub(crate) prep: Prep,
    pub(crate) counter: u32,
}

pub(crate) const SESSION: SessionId = SessionId(0x0100_0000_0000_0001);

pub(crate) fn ctx(counter: u32) -> PrepContext {
    PrepContext {
        zxid: Zxid::new(1, counter),
        time_ms: 1_000 + i64::from(counter),
        max_data_bytes: 1 << 20,
    }
}

pub(crate) fn txn(counter: u32, session: SessionId, body: TxnBody) -> Txn {
    Txn {
        zxid: Zxid::new(1, counter),
        session_id: session,
        cxid: 0,
        time_ms: 1_000 + i64::from(counter),
        body,
        digest: None,
    }
}

pub(crate) fn create(path: &str, flags: i32) -> WriteOp {
    WriteOp::Create {
        opcode: OpCode::Create2,
        path: path.to_string(),
        data: Some(b"x".to_vec()),
        acl: Acl::open_unsafe(),
        flags,
        ttl_ms: 0,
    }
}

pub(crate) fn delete(path: &str) -> WriteOp {
    WriteOp::Delete {
        path: path.to_string(),
        version: -1,
    }
}

impl Leader {
    pub(crate) fn new() -> Leader {
        Leader {
            tree: DataTree::new(),
            prep: Prep::new(),
            counter: 0,
        }
    }

    /// Preps without applying; returns the txn.
    pub(crate) fn propose(&mut self, op: &WriteOp) -> Result<Txn, ErrorCode> {
        self.propose_as(SESSION, &[], op)
    }

    pub(crate) fn propose_as(
        &mut self,
        session: SessionId,
        ids: &[ek_types::Id],
        op: &WriteOp,
    ) -> Result<Txn, ErrorCode> {
        let caller = Caller {
            session_id: session,
            ids,
        };
        let ctx = ctx(self.counter + 1);
        let body = self.prep.write(&self.tree, &caller, op, &ctx)?;
        self.counter += 1;
        Ok(txn(self.counter, session, body))
    }

    pub(crate) fn apply(&mut self, txn: &Txn) -> Applied {
        let applied = self.tree.apply(txn).expect("prepped txn applies");
        self.prep.applied(txn.zxid);
        applied
    }

    /// Preps and applies.
    pub(crate) fn write(&mut self, op: &WriteOp) -> Result<Applied, ErrorCode> {
        let txn = self.propose(op)?;
        Ok(self.apply(&txn))
    }

    pub(crate) fn write_as(
        &mut self,
        ids: &[ek_types::Id],
        op: &WriteOp,
    ) -> Result<Applied, ErrorCode> {
        let txn = self.propose_as(SESSION, ids, op)?;
        Ok(self.apply(&txn))
    }
}
