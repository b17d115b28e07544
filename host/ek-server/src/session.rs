//! Session liveness: ids, passwords, timeouts and expiry. The replicated part of a session
//! (id and timeout) lives in the data tree; this tracker holds what only the serving
//! leader needs: when each session last showed a sign of life and whether it is closing.

use ek_types::SessionId;
use sha1::{Digest, Sha1};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Length of a session password.
pub(crate) const PASSWORD_LEN: usize = 16;

/// The password of a session: a deterministic function of its id that every node of the
/// cluster computes alike, so a client can resume its session on any node.
pub(crate) fn password(session: SessionId) -> [u8; PASSWORD_LEN] {
    let mut hasher = Sha1::new();
    hasher.update(b"edgekeeper-session-password\0");
    hasher.update(session.0.to_be_bytes());
    let digest = hasher.finalize();
    let mut out = [0u8; PASSWORD_LEN];
    out.copy_from_slice(&digest[..PASSWORD_LEN]);
    out
}

/// Hands out session ids unique across nodes (top byte = node id) and restarts (the low
/// bits start from the clock, as ZooKeeper does).
pub(crate) struct SessionIds {
    next: i64,
}

impl SessionIds {
    pub(crate) fn new(node_id: u64, now_ms: i64) -> SessionIds {
        let low = ((now_ms as u64) << 24) >> 8;
        SessionIds {
            next: (low | ((node_id & 0xff) << 56)) as i64,
        }
    }

    pub(crate) fn next_id(&mut self) -> SessionId {
        loop {
            let id = self.next;
            self.next = self.next.wrapping_add(1);
            // 0 means "no session"; i64::MIN marks containers.
            if id != 0 && id != i64::MIN {
                return SessionId(id);
            }
        }
    }
}

struct Liveness {
    timeout: Duration,
    expires_at: Instant,
    closing: bool,
}

/// Tracks when each live session expires.
pub(crate) struct SessionTracker {
    tick: Duration,
    sessions: HashMap<SessionId, Liveness>,
}

impl SessionTracker {
    pub(crate) fn new(tick: Duration) -> SessionTracker {
        SessionTracker {
            tick,
            sessions: HashMap::new(),
        }
    }

    /// Starts tracking a session with a full timeout from `now`.
    pub(crate) fn track(&mut self, session: SessionId, timeout_ms: i32, now: Instant) {
        let timeout = Duration::from_millis(timeout_ms.max(0) as u64);
        let expires_at = self.deadline(now, timeout);
        self.sessions.insert(
            session,
            Liveness {
                timeout,
                expires_at,
                closing: false,
            },
        );
    }

    /// A sign of life: pushes the deadline out. Returns false for unknown or closing sessions.
    pub(crate) fn touch(&mut self, session: SessionId, now: Instant) -> bool {
        let deadline_for = |timeout| self.deadline(now, timeout);
        match self.sessions.get(&session) {
            Some(live) if !live.closing => {
                let expires_at = deadline_for(live.timeout);
                if let Some(live) = self.sessions.get_mut(&session) {
                    live.expires_at = expires_at;
                }
                true
            }
            _ => false,
        }
    }

    /// Whether the session is known and not closing.
    pub(crate) fn is_live(&self, session: SessionId) -> bool {
        self.sessions
            .get(&session)
            .is_some_and(|live| !live.closing)
    }

    /// Marks a session closing: later writes from it fail with SessionExpired.
    pub(crate) fn set_closing(&mut self, session: SessionId) {
        if let Some(live) = self.sessions.get_mut(&session) {
            live.closing = true;
        }
    }

    /// Forgets a session (its close txn committed).
    pub(crate) fn remove(&mut self, session: SessionId) {
        self.sessions.remove(&session);
    }

    /// Sessions whose deadline has passed and that are not already closing; marks them closing.
    pub(crate) fn expire(&mut self, now: Instant) -> Vec<SessionId> {
        let mut expired: Vec<SessionId> = self
            .sessions
            .iter()
            .filter(|(_, live)| !live.closing && live.expires_at <= now)
            .map(|(id, _)| *id)
            .collect();
        expired.sort();
        for id in &expired {
            self.set_closing(*id);
        }
        expired
    }

    pub(crate) fn len(&self) -> usize {
        self.sessions.len()
    }

    /// ZooKeeper rounds deadlines up to the next tick boundary so expiry runs in buckets;
    /// relative to `now` this only ever lengthens the timeout by less than a tick.
    fn deadline(&self, now: Instant, timeout: Duration) -> Instant {
        let tick_ms = self.tick.as_millis().max(1);
        let timeout_ms = timeout.as_millis();
        let rounded = (timeout_ms / tick_ms + 1) * tick_ms;
        now + Duration::from_millis(rounded as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_deterministic_and_distinct() {
        assert_eq!(password(SessionId(7)), password(SessionId(7)));
        assert_ne!(password(SessionId(7)), password(SessionId(8)));
    }

    #[test]
    fn ids_carry_the_node_id_and_never_repeat() {
        let mut ids = SessionIds::new(3, 1_700_000_000_000);
        let first = ids.next_id();
        let second = ids.next_id();
        assert_eq!((first.0 as u64) >> 56, 3);
        assert_ne!(first, second);
    }

    #[test]
    fn sessions_expire_after_their_timeout_unless_touched() {
        let start = Instant::now();
        let mut tracker = SessionTracker::new(Duration::from_millis(100));
        tracker.track(SessionId(1), 1000, start);
        tracker.track(SessionId(2), 1000, start);
        assert!(tracker
            .expire(start + Duration::from_millis(900))
            .is_empty());
        assert!(tracker.touch(SessionId(2), start + Duration::from_millis(900)));
        let expired = tracker.expire(start + Duration::from_millis(1200));
        assert_eq!(expired, vec![SessionId(1)]);
        assert!(!tracker.is_live(SessionId(1)));
        assert!(!tracker.touch(SessionId(1), start + Duration::from_millis(1200)));
        assert!(tracker.is_live(SessionId(2)));
    }
}
