//! Reads and session-local requests, answered from the local tree. Watches are registered
//! in the same step as the read, so no change can slip between them.

use crate::client::ConnId;
use crate::core::Core;
use ek_jute::{ClientInfo, ReadOp, ReadResult, Request, Response};
use ek_tree::acl;
use ek_types::{path, perms, ErrorCode, Id};
use ek_watch::{SetWatchLists, WatchKind, WatcherId, WatcherType};
use std::time::Instant;

impl Core {
    /// Runs a read and returns its encoded reply frame.
    pub(crate) fn execute_read(
        &mut self,
        conn: ConnId,
        xid: i32,
        request: &Request,
        started: Instant,
    ) -> Vec<u8> {
        // Borrowed out of the connection for the read (which needs the whole core) and put
        // back after: no copy of the id list on the hot path.
        let ids = self
            .conns
            .get_mut(&conn)
            .map(|client| std::mem::take(&mut client.ids))
            .unwrap_or_default();
        let mut frame = Vec::new();
        let op = request.opcode().name();
        let result = self.read(conn, &ids, request, xid, &mut frame);
        if let Some(client) = self.conns.get_mut(&conn) {
            client.ids = ids;
        }
        if let Err(err) = result {
            frame.clear();
            let zxid = self.tree.last_zxid();
            ek_jute::encode_reply(&mut frame, xid, zxid, err, &Response::Empty);
        }
        let elapsed = started.elapsed();
        self.metrics.observe_request(op, elapsed);
        let zxid = self.tree.last_zxid();
        if let Some(client) = self.conns.get_mut(&conn) {
            client.stats.record(op, xid, zxid.0, elapsed);
        }
        frame
    }

    /// Runs a read, registering any watch it asks for, and encodes its success reply into
    /// `out`; an error is returned for the caller to encode.
    fn read(
        &mut self,
        conn: ConnId,
        ids: &[Id],
        request: &Request,
        xid: i32,
        out: &mut Vec<u8>,
    ) -> Result<(), ErrorCode> {
        let watcher = WatcherId(conn.0);
        let zxid = self.tree.last_zxid();
        let ok = ErrorCode::Ok;
        match request {
            Request::Exists { path, watch } => {
                valid(path)?;
                let Some(node) = self.tree.node(path) else {
                    if *watch {
                        self.watches.add(watcher, path, WatchKind::Exist);
                    }
                    return Err(ErrorCode::NoNode);
                };
                let stat = node.stat().for_client();
                if !acl::check(node.acl(), perms::READ, ids) {
                    return Err(ErrorCode::NoAuth);
                }
                if *watch {
                    self.watches.add(watcher, path, WatchKind::Data);
                }
                ek_jute::encode_reply(out, xid, zxid, ok, &Response::Stat(stat));
            }
            Request::GetData { path, watch } => {
                valid(path)?;
                self.readable(path, ids)?;
                if *watch {
                    self.watches.add(watcher, path, WatchKind::Data);
                }
                let node = self.tree.node(path).ok_or(ErrorCode::NoNode)?;
                let response = Response::GetData {
                    data: node.data(),
                    stat: node.stat().for_client(),
                };
                ek_jute::encode_reply(out, xid, zxid, ok, &response);
            }
            Request::GetChildren { path, watch } | Request::GetChildren2 { path, watch } => {
                valid(path)?;
                self.readable(path, ids)?;
                if *watch {
                    self.watches.add(watcher, path, WatchKind::Child);
                }
                let node = self.tree.node(path).ok_or(ErrorCode::NoNode)?;
                let stat = node.stat().for_client();
                let children: Vec<String> = self
                    .tree
                    .children(path)
                    .unwrap_or_default()
                    .into_iter()
                    .map(str::to_owned)
                    .collect();
                let response = if matches!(request, Request::GetChildren { .. }) {
                    Response::GetChildren {
                        children: &children,
                    }
                } else {
                    Response::GetChildren2 {
                        children: &children,
                        stat,
                    }
                };
                ek_jute::encode_reply(out, xid, zxid, ok, &response);
            }
            Request::GetAcl { path } => {
                valid(path)?;
                let node = self.tree.node(path).ok_or(ErrorCode::NoNode)?;
                let node_acl = node.acl();
                let admin = acl::check(node_acl, perms::ADMIN, ids);
                if !admin && !acl::check(node_acl, perms::READ, ids) {
                    return Err(ErrorCode::NoAuth);
                }
                let shown = if admin {
                    node_acl.to_vec()
                } else {
                    acl::mask_digests(node_acl)
                };
                let response = Response::GetAcl {
                    acl: &shown,
                    stat: node.stat().for_client(),
                };
                ek_jute::encode_reply(out, xid, zxid, ok, &response);
            }
            Request::Sync { path } => {
                ek_jute::encode_reply(out, xid, zxid, ok, &Response::Sync { path });
            }
            Request::GetAllChildrenNumber { path } => {
                valid(path)?;
                self.readable(path, ids)?;
                let count = self
                    .tree
                    .all_children_number(path)
                    .ok_or(ErrorCode::NoNode)?;
                let response = Response::GetAllChildrenNumber(count as i32);
                ek_jute::encode_reply(out, xid, zxid, ok, &response);
            }
            Request::GetEphemerals { prefix } => {
                let session = self.conns.get(&conn).and_then(|client| client.session);
                let prefix = if prefix.is_empty() {
                    "/"
                } else {
                    prefix.as_str()
                };
                let paths: Vec<String> = session
                    .map(|session| self.tree.ephemerals_of(session))
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|path| path.starts_with(prefix))
                    .collect();
                ek_jute::encode_reply(out, xid, zxid, ok, &Response::GetEphemerals(&paths));
            }
            Request::WhoAmI => {
                // ZooKeeper lists authenticated ids first and the implicit ip id last.
                let infos: Vec<ClientInfo> = ids
                    .iter()
                    .filter(|id| id.scheme != "super" && id.scheme != "ip")
                    .chain(ids.iter().filter(|id| id.scheme == "ip"))
                    .map(|id| ClientInfo {
                        auth_scheme: id.scheme.clone(),
                        user: whoami_user(id),
                    })
                    .collect();
                ek_jute::encode_reply(out, xid, zxid, ok, &Response::WhoAmI(&infos));
            }
            Request::AddWatch { path, mode } => {
                valid(path)?;
                let kind = WatchKind::from_add_watch_mode(*mode).ok_or(ErrorCode::BadArguments)?;
                self.watches.add(watcher, path, kind);
                ek_jute::encode_reply(out, xid, zxid, ok, &Response::AddWatch);
            }
            Request::CheckWatches { path, watcher_type } => {
                valid(path)?;
                let kind = WatcherType::from_code(*watcher_type).ok_or(ErrorCode::BadArguments)?;
                if !self.watches.check(watcher, path, kind) {
                    return Err(ErrorCode::NoWatcher);
                }
                ek_jute::encode_reply(out, xid, zxid, ok, &Response::Empty);
            }
            Request::RemoveWatches { path, watcher_type } => {
                valid(path)?;
                let kind = WatcherType::from_code(*watcher_type).ok_or(ErrorCode::BadArguments)?;
                if !self.watches.remove(watcher, path, kind) {
                    return Err(ErrorCode::NoWatcher);
                }
                ek_jute::encode_reply(out, xid, zxid, ok, &Response::Empty);
            }
            Request::SetWatches {
                relative_zxid,
                data,
                exist,
                child,
                persistent,
                persistent_recursive,
            } => {
                let lists = SetWatchLists {
                    data: data.clone(),
                    exist: exist.clone(),
                    child: child.clone(),
                    persistent: persistent.clone(),
                    persistent_recursive: persistent_recursive.clone(),
                };
                self.set_watches(conn, relative_zxid.0, &lists);
                ek_jute::encode_reply(out, xid, zxid, ok, &Response::Empty);
            }
            Request::MultiRead(ops) => {
                let results: Vec<ReadResult> =
                    ops.iter().map(|op| self.read_one(ids, op)).collect();
                ek_jute::encode_reply(out, xid, zxid, ok, &Response::MultiRead(&results));
            }
            _ => return Err(ErrorCode::Unimplemented),
        }
        Ok(())
    }

    /// Restores a reconnecting client's watches; events it missed go out at once.
    fn set_watches(&mut self, conn: ConnId, relative_zxid: i64, lists: &SetWatchLists) {
        let mut immediate = Vec::new();
        let tree = &self.tree;
        self.watches.set_watches(
            WatcherId(conn.0),
            relative_zxid,
            lists,
            |path| {
                tree.node(path).map(|node| {
                    let stat = node.stat();
                    ek_watch::NodeVersionInfo {
                        mzxid: stat.mzxid.0,
                        pzxid: stat.pzxid.0,
                    }
                })
            },
            &mut immediate,
        );
        for event in &immediate {
            self.notify(conn, event);
        }
    }

    fn read_one(&self, ids: &[Id], op: &ReadOp) -> ReadResult {
        let path = match op {
            ReadOp::GetChildren { path } | ReadOp::GetData { path } => path,
        };
        if valid(path).is_err() {
            return ReadResult::Error(ErrorCode::BadArguments);
        }
        if let Err(err) = self.readable(path, ids) {
            return ReadResult::Error(err);
        }
        let Some(node) = self.tree.node(path) else {
            return ReadResult::Error(ErrorCode::NoNode);
        };
        match op {
            ReadOp::GetChildren { .. } => ReadResult::GetChildren {
                children: self
                    .tree
                    .children(path)
                    .unwrap_or_default()
                    .into_iter()
                    .map(str::to_owned)
                    .collect(),
            },
            ReadOp::GetData { .. } => ReadResult::GetData {
                data: node.data().map(<[u8]>::to_vec),
                stat: node.stat().for_client(),
            },
        }
    }

    /// NoNode if missing, NoAuth without READ.
    fn readable(&self, path: &str, ids: &[Id]) -> Result<(), ErrorCode> {
        let node = self.tree.node(path).ok_or(ErrorCode::NoNode)?;
        if acl::check(node.acl(), perms::READ, ids) {
            Ok(())
        } else {
            Err(ErrorCode::NoAuth)
        }
    }
}

fn valid(path: &str) -> Result<(), ErrorCode> {
    path::validate(path).map_err(|_| ErrorCode::BadArguments)
}

/// whoAmI shows the user name of a digest id, not its hash.
fn whoami_user(id: &Id) -> String {
    if id.scheme == "digest" {
        id.id.split(':').next().unwrap_or("").to_owned()
    } else {
        id.id.clone()
    }
}
