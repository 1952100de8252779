//! [`PacketStore`]: one incoming layer's recent packets, by sequence number,
//! so a NACK from any viewer of that layer is answered from one shared
//! buffer (mediasoup keeps one per Producer, LiveKit one per Receiver)
//! instead of a retransmission cache per viewer. A viewer's own sequence
//! numbers map back to the source's through its Forwarder; the resend is
//! rewritten on the way out like any packet.
//!
//! Invariants: at most [`CAPACITY`] packets are held (a ring indexed by the
//! low bits of the extended sequence number, so a lookup is one index and
//! one compare); a lookup returns a packet only if its sequence number is
//! exactly the one asked for, never a newer packet in the same slot.

use std::sync::Arc;

use super::packet::SourcePacket;

/// Slots per layer: two seconds of a 5 Mbit/s layer (~450 packets/s).
pub const CAPACITY: usize = 1024;

#[derive(Debug)]
pub struct PacketStore {
    slots: Box<[Option<Arc<SourcePacket>>]>,
}

impl Default for PacketStore {
    fn default() -> Self {
        PacketStore {
            slots: vec![None; CAPACITY].into_boxed_slice(),
        }
    }
}

impl PacketStore {
    pub fn push(&mut self, pkt: &Arc<SourcePacket>) {
        let slot = pkt.seq as usize & (CAPACITY - 1);
        self.slots[slot] = Some(pkt.clone());
    }

    /// The packet with extended sequence number `seq`, if it is still held.
    /// (How old a packet may be to be worth resending is the caller's rule:
    /// a packet replayed from the GopCache was sent later than it arrived.)
    pub fn get(&self, seq: u64) -> Option<&Arc<SourcePacket>> {
        let pkt = self.slots[seq as usize & (CAPACITY - 1)].as_ref()?;
        (pkt.seq == seq).then_some(pkt)
    }

    pub fn clear(&mut self) {
        self.slots.iter_mut().for_each(|s| *s = None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn pkt(seq: u64, at: Instant) -> Arc<SourcePacket> {
        Arc::new(SourcePacket {
            seq,
            ts: 0,
            marker: false,
            ext: Default::default(),
            payload: Arc::from(&[1u8, 2, 3][..]),
            arrival: at,
            keyframe_start: false,
            vp8: None,
            dimensions: None,
        })
    }

    #[test]
    fn table_of_lookups() {
        let t0 = Instant::now();
        let mut store = PacketStore::default();
        for seq in 100..110 {
            store.push(&pkt(seq, t0));
        }
        // Overwrites slot of 100 + CAPACITY's predecessor.
        store.push(&pkt(100 + CAPACITY as u64, t0));
        let cases: &[(&str, u64, bool)] = &[
            ("held", 105, true),
            ("never stored", 99, false),
            ("its slot reused by a newer packet", 100, false),
            ("the newer packet itself", 100 + CAPACITY as u64, true),
        ];
        for (name, seq, found) in cases {
            assert_eq!(store.get(*seq).is_some(), *found, "{name}");
        }
    }

    #[test]
    fn stored_packets_are_shared_not_copied() {
        let mut store = PacketStore::default();
        let p = pkt(7, Instant::now());
        store.push(&p);
        let got = store.get(7).unwrap();
        assert!(Arc::ptr_eq(got, &p));
    }
}
