//! [`Demux`]: which session a datagram belongs to. A known 5-tuple maps
//! straight to its session; an unknown one is learned from a STUN binding
//! request whose USERNAME names one of our ICE ufrags. Nothing is scanned.

use std::collections::HashMap;
use std::net::SocketAddr;

/// Generic over the session handle: the worker routes to its own table's
/// keys; the benchmarks use plain numbers.
#[derive(Debug)]
pub struct Demux<K> {
    by_addr: HashMap<SocketAddr, K>,
    by_ufrag: HashMap<String, K>,
}

impl<K> Default for Demux<K> {
    fn default() -> Self {
        Demux {
            by_addr: HashMap::new(),
            by_ufrag: HashMap::new(),
        }
    }
}

impl<K: Copy> Demux<K> {
    pub fn add_session(&mut self, ufrag: &str, id: K) {
        self.by_ufrag.insert(ufrag.to_owned(), id);
    }

    /// Forgets a session's ufrag and every address learned for it.
    pub fn remove_session(&mut self, ufrag: &str, addrs: &[SocketAddr]) {
        self.by_ufrag.remove(ufrag);
        for addr in addrs {
            self.by_addr.remove(addr);
        }
    }

    /// The session for a datagram, and whether its address is newly learned.
    pub fn route(&mut self, source: SocketAddr, datagram: &[u8]) -> Option<(K, bool)> {
        if let Some(id) = self.by_addr.get(&source) {
            return Some((*id, false));
        }
        let ufrag = stun_local_ufrag(datagram)?;
        let id = *self.by_ufrag.get(ufrag)?;
        self.by_addr.insert(source, id);
        Some((id, true))
    }
}

const STUN_MAGIC: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];
const STUN_BINDING_REQUEST: [u8; 2] = [0x00, 0x01];
const ATTR_USERNAME: u16 = 0x0006;

/// The local (first) half of a STUN binding request's `USERNAME`
/// ("ours:theirs"), or `None` for anything else. Untrusted input: every
/// length is checked.
pub fn stun_local_ufrag(d: &[u8]) -> Option<&str> {
    if d.len() < 20 || d[0..2] != STUN_BINDING_REQUEST || d[4..8] != STUN_MAGIC {
        return None;
    }
    let body_len = usize::from(u16::from_be_bytes([d[2], d[3]]));
    let mut attrs = d.get(20..20 + body_len)?;
    while attrs.len() >= 4 {
        let kind = u16::from_be_bytes([attrs[0], attrs[1]]);
        let len = usize::from(u16::from_be_bytes([attrs[2], attrs[3]]));
        let value = attrs.get(4..4 + len)?;
        if kind == ATTR_USERNAME {
            let username = std::str::from_utf8(value).ok()?;
            return username.split(':').next();
        }
        let padded = (4 + len).div_ceil(4) * 4;
        attrs = attrs.get(padded..).unwrap_or(&[]);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    struct SessionId(u32);

    fn binding_request(username: &str) -> Vec<u8> {
        let mut attr = Vec::new();
        attr.extend_from_slice(&ATTR_USERNAME.to_be_bytes());
        attr.extend_from_slice(&(username.len() as u16).to_be_bytes());
        attr.extend_from_slice(username.as_bytes());
        while attr.len() % 4 != 0 {
            attr.push(0);
        }
        let mut d = vec![0x00, 0x01];
        d.extend_from_slice(&(attr.len() as u16).to_be_bytes());
        d.extend_from_slice(&STUN_MAGIC);
        d.extend_from_slice(&[7; 12]);
        d.extend_from_slice(&attr);
        d
    }

    #[test]
    fn learns_an_address_from_a_stun_check_then_routes_by_address() {
        let mut demux = Demux::default();
        demux.add_session("abcd", SessionId(7));
        let addr: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        assert_eq!(
            demux.route(addr, &binding_request("abcd:peer")),
            Some((SessionId(7), true))
        );
        assert_eq!(
            demux.route(addr, &[0x80, 0x60, 0, 1]),
            Some((SessionId(7), false))
        );
        demux.remove_session("abcd", &[addr]);
        assert_eq!(demux.route(addr, &[0x80, 0x60, 0, 1]), None);
    }

    #[test]
    fn table_of_datagrams_that_name_no_session() {
        let mut truncated = binding_request("abcd:peer");
        truncated.truncate(26);
        let mut lying_length = binding_request("abcd:peer");
        lying_length[23] = 0xff;
        let cases: &[(&str, Vec<u8>)] = &[
            ("empty", vec![]),
            (
                "rtp from a stranger",
                vec![0x80, 0x60, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0],
            ),
            ("unknown ufrag", binding_request("zzzz:peer")),
            ("truncated attribute", truncated),
            ("attribute longer than the message", lying_length),
        ];
        for (name, datagram) in cases {
            let mut demux = Demux::<SessionId>::default();
            demux.add_session("abcd", SessionId(1));
            let addr: SocketAddr = "127.0.0.1:6000".parse().unwrap();
            assert_eq!(demux.route(addr, datagram), None, "{name}");
        }
    }
}
