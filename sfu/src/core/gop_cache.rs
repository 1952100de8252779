//! [`GopCache`]: per layer, the packets since the last keyframe start, so a
//! joining viewer starts at once instead of waiting for the next keyframe.
//! OBS ignores PLI and sends a keyframe only every few seconds, so without
//! this a viewer could wait that long for a first picture.
//!
//! Packets are held as the `Arc`s every Mirror shares: a cached GOP costs
//! pointers, not payload copies.
//!
//! Invariants: the cache is empty or begins with a keyframe-start packet;
//! it never holds more than its packet and byte bounds (a GOP that outgrows
//! them is dropped whole, and the cache waits for the next keyframe).

use std::sync::Arc;

use super::packet::SourcePacket;

/// Bounds for one layer's cache: a 4 s GOP at 8 Mbit/s fits.
pub const MAX_PACKETS: usize = 4096;
pub const MAX_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, Default)]
pub struct GopCache {
    packets: Vec<Arc<SourcePacket>>,
    bytes: usize,
}

impl GopCache {
    /// Records an incoming packet of this layer.
    pub fn push(&mut self, pkt: &Arc<SourcePacket>) {
        if pkt.keyframe_start {
            self.packets.clear();
            self.bytes = 0;
        } else if self.packets.first().is_none_or(|first| pkt.seq < first.seq) {
            // No keyframe yet, or a late packet from before it.
            return;
        }
        if self.packets.len() >= MAX_PACKETS || self.bytes + pkt.payload.len() > MAX_BYTES {
            self.clear();
            return;
        }
        self.bytes += pkt.payload.len();
        self.packets.push(pkt.clone());
    }

    /// The cached GOP, keyframe first, in arrival order.
    pub fn packets(&self) -> &[Arc<SourcePacket>] {
        &self.packets
    }

    pub fn is_empty(&self) -> bool {
        self.packets.is_empty()
    }

    pub fn clear(&mut self) {
        self.packets.clear();
        self.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn pkt(seq: u64, key: bool, size: usize) -> Arc<SourcePacket> {
        Arc::new(SourcePacket {
            seq,
            ts: seq as u32,
            marker: false,
            ext: Default::default(),
            payload: Arc::from(vec![0u8; size]),
            arrival: Instant::now(),
            keyframe_start: key,
            vp8: None,
            dimensions: None,
        })
    }

    fn seqs(cache: &GopCache) -> Vec<u64> {
        cache.packets().iter().map(|p| p.seq).collect()
    }

    #[test]
    fn table_of_cache_contents() {
        // (name, packets pushed as (seq, keyframe_start), sequence numbers cached)
        type Case<'a> = (&'a str, &'a [(u64, bool)], &'a [u64]);
        let cases: &[Case] = &[
            (
                "nothing before the first keyframe",
                &[(1, false), (2, false)],
                &[],
            ),
            (
                "keyframe and what follows",
                &[(1, false), (2, true), (3, false)],
                &[2, 3],
            ),
            (
                "a new keyframe replaces the old gop",
                &[(2, true), (3, false), (4, true), (5, false)],
                &[4, 5],
            ),
            (
                "late packets from before the keyframe are ignored",
                &[(10, true), (9, false), (11, false)],
                &[10, 11],
            ),
            (
                "reordered packets after the keyframe are kept",
                &[(10, true), (12, false), (11, false)],
                &[10, 12, 11],
            ),
        ];
        for (name, pushes, want) in cases {
            let mut cache = GopCache::default();
            for &(seq, key) in pushes.iter() {
                cache.push(&pkt(seq, key, 10));
            }
            assert_eq!(seqs(&cache), *want, "{name}");
        }
    }

    #[test]
    fn an_oversized_gop_is_dropped_until_the_next_keyframe() {
        let mut cache = GopCache::default();
        cache.push(&pkt(0, true, 1000));
        for seq in 1..(MAX_BYTES / 1000 + 10) as u64 {
            cache.push(&pkt(seq, false, 1000));
        }
        assert!(cache.is_empty());
        cache.push(&pkt(100_000, true, 1000));
        assert_eq!(seqs(&cache), [100_000]);
    }

    #[test]
    fn cached_payloads_share_memory_with_the_incoming_packet() {
        let mut cache = GopCache::default();
        let p = pkt(1, true, 1200);
        cache.push(&p);
        assert!(Arc::ptr_eq(&cache.packets()[0], &p));
    }
}
