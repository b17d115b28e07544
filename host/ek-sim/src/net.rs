//! The simulated network: per-link FIFO delivery with random latency, plus faults (loss,
//! duplication, reordering, latency spikes, partitions). Packets carry ZAB messages or a
//! whole tree snapshot for a SNAP sync.

use crate::config::{FaultRates, LinkModel};
use crate::rng::SimRng;
use ek_types::Zxid;
use ek_zab::{Message, ServerId, Time};
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

/// What travels between two servers.
#[derive(Clone, Debug)]
pub(crate) enum Packet {
    /// A ZAB message.
    Msg(Message),
    /// A snapshot streamed for a SNAP sync: the leader's tree at `zxid`, serialised.
    Snapshot { zxid: Zxid, bytes: Rc<Vec<u8>> },
}

/// A packet on its way.
#[derive(Debug)]
pub(crate) struct InFlight {
    pub(crate) from: ServerId,
    pub(crate) to: ServerId,
    pub(crate) packet: Packet,
}

/// What happened to a packet handed to [`Network::send`].
#[derive(Debug)]
pub(crate) enum Sent {
    Queued,
    Duplicated,
    /// Lost at once: why, and the packet.
    Lost(&'static str, InFlight),
}

#[derive(Default)]
pub(crate) struct Network {
    queue: BTreeMap<(Time, u64), InFlight>,
    seq: u64,
    /// Latest delivery time scheduled on each link, for FIFO order.
    tail: BTreeMap<(ServerId, ServerId), Time>,
    /// Directed links that lose everything.
    blocked: BTreeSet<(ServerId, ServerId)>,
    /// Packets lost when their connection broke, not yet reported.
    purged: Vec<InFlight>,
}

impl Network {
    /// Schedules `packet`, applying the fault rates.
    pub(crate) fn send(
        &mut self,
        now: Time,
        rng: &mut SimRng,
        rates: &FaultRates,
        flight: InFlight,
    ) -> Sent {
        let link = (flight.from, flight.to);
        let stream = rates.link == LinkModel::Stream;
        if self.blocked.contains(&link) {
            return Sent::Lost("partition", flight);
        }
        if rng.chance(rates.drop) {
            if stream {
                self.reset(link);
            }
            return Sent::Lost("dropped", flight);
        }
        let mut latency_ms = rng.range(rates.latency_ms.0, rates.latency_ms.1);
        if rng.chance(rates.spike) {
            latency_ms += rng.range(1, rates.spike_ms);
        }
        let mut at = now.plus_ms(latency_ms);
        if stream || !rng.chance(rates.reorder) {
            let tail = self.tail.entry(link).or_insert(Time::ZERO);
            at = at.max(*tail);
            *tail = at;
        }
        let duplicate = rng.chance(rates.duplicate);
        let copy = duplicate.then(|| InFlight {
            from: flight.from,
            to: flight.to,
            packet: flight.packet.clone(),
        });
        self.push(at, flight);
        if let Some(copy) = copy {
            let later = if stream {
                at
            } else {
                at.plus_ms(rng.range(0, rates.latency_ms.1))
            };
            self.push(later, copy);
        }
        if duplicate {
            Sent::Duplicated
        } else {
            Sent::Queued
        }
    }

    fn push(&mut self, at: Time, flight: InFlight) {
        self.seq += 1;
        self.queue.insert((at, self.seq), flight);
    }

    /// When the next packet arrives.
    pub(crate) fn next_time(&self) -> Option<Time> {
        self.queue.keys().next().map(|(time, _)| *time)
    }

    /// The next packet due at or before `now`, with whether its link is cut now.
    pub(crate) fn pop_due(&mut self, now: Time) -> Option<(InFlight, bool)> {
        let (&key, _) = self.queue.iter().next()?;
        if key.0 > now {
            return None;
        }
        let flight = self.queue.remove(&key)?;
        let cut = self.blocked.contains(&(flight.from, flight.to));
        Some((flight, cut))
    }

    /// The connection of `link` breaks: every packet in flight on it is lost.
    fn reset(&mut self, link: (ServerId, ServerId)) {
        let lost: Vec<(Time, u64)> = self
            .queue
            .iter()
            .filter(|(_, flight)| (flight.from, flight.to) == link)
            .map(|(key, _)| *key)
            .collect();
        for key in lost {
            if let Some(flight) = self.queue.remove(&key) {
                self.purged.push(flight);
            }
        }
    }

    /// Cuts the directed link `from -> to`. With [`LinkModel::Stream`] its connection
    /// breaks at once; with [`LinkModel::Datagram`] packets in flight are lost when they
    /// arrive while the link is still cut.
    pub(crate) fn block(&mut self, from: ServerId, to: ServerId, model: LinkModel) {
        self.blocked.insert((from, to));
        if model == LinkModel::Stream {
            self.reset((from, to));
        }
    }

    /// Packets lost to broken connections since the last call.
    pub(crate) fn take_purged(&mut self) -> Vec<InFlight> {
        std::mem::take(&mut self.purged)
    }

    /// Restores every link.
    pub(crate) fn heal(&mut self) {
        self.blocked.clear();
    }

    pub(crate) fn blocked(&self) -> Vec<(ServerId, ServerId)> {
        self.blocked.iter().copied().collect()
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.queue.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ping(zxid: i64) -> Packet {
        Packet::Msg(Message::Ping {
            session: 1,
            zxid: Zxid(zxid),
        })
    }

    fn zxid_of(packet: &Packet) -> i64 {
        match packet {
            Packet::Msg(Message::Ping { zxid, .. }) => zxid.0,
            _ => -1,
        }
    }

    #[test]
    fn links_are_fifo_without_faults() {
        let mut net = Network::default();
        let mut rng = SimRng::new(3);
        let rates = FaultRates::none();
        for i in 0..50 {
            let flight = InFlight {
                from: 1,
                to: 2,
                packet: ping(i),
            };
            let sent = net.send(Time::from_ms(i as u64), &mut rng, &rates, flight);
            assert!(matches!(sent, Sent::Queued));
        }
        let mut seen = Vec::new();
        while let Some((flight, cut)) = net.pop_due(Time::from_ms(10_000)) {
            assert!(!cut);
            seen.push(zxid_of(&flight.packet));
        }
        assert_eq!(seen, (0..50).collect::<Vec<_>>());
    }

    #[test]
    fn blocked_links_lose_packets() {
        let mut net = Network::default();
        let mut rng = SimRng::new(3);
        let rates = FaultRates::none();
        net.block(1, 2, LinkModel::Datagram);
        let flight = InFlight {
            from: 1,
            to: 2,
            packet: ping(0),
        };
        let sent = net.send(Time::ZERO, &mut rng, &rates, flight);
        assert!(matches!(sent, Sent::Lost("partition", _)));
        let flight = InFlight {
            from: 2,
            to: 1,
            packet: ping(0),
        };
        let sent = net.send(Time::ZERO, &mut rng, &rates, flight);
        assert!(matches!(sent, Sent::Queued));
        net.block(2, 1, LinkModel::Datagram);
        let (_, cut) = net.pop_due(Time::from_ms(100)).expect("a packet");
        assert!(cut, "a packet on a link cut while in flight is lost");
    }

    #[test]
    fn a_stream_loss_breaks_the_connection() {
        let mut net = Network::default();
        let mut rng = SimRng::new(5);
        let mut rates = FaultRates::none();
        for i in 0..3 {
            let flight = InFlight {
                from: 1,
                to: 2,
                packet: ping(i),
            };
            assert!(matches!(
                net.send(Time::ZERO, &mut rng, &rates, flight),
                Sent::Queued
            ));
        }
        rates.drop = 1.0;
        let flight = InFlight {
            from: 1,
            to: 2,
            packet: ping(3),
        };
        assert!(matches!(
            net.send(Time::ZERO, &mut rng, &rates, flight),
            Sent::Lost(..)
        ));
        assert_eq!(net.take_purged().len(), 3, "everything in flight is lost");
        assert_eq!(net.in_flight(), 0);
        rates.drop = 0.0;
        let flight = InFlight {
            from: 1,
            to: 2,
            packet: ping(4),
        };
        assert!(matches!(
            net.send(Time::ZERO, &mut rng, &rates, flight),
            Sent::Queued
        ));
        let (flight, _) = net.pop_due(Time::from_ms(100)).expect("a packet");
        assert_eq!(
            zxid_of(&flight.packet),
            4,
            "a new connection carries later packets"
        );
    }
}
