//! [`ConnectionGate`]: how many TCP connections the HTTP server holds, in
//! total and per client address. A connection is admitted with a
//! [`Permit`] that lives as long as its socket — through a websocket
//! upgrade too — so one address can never hold more than its share, and
//! a flood from one address leaves room for everyone else.
//!
//! Invariants: `total` equals the number of live permits and each
//! address's count the number of its own; a refused admission changes
//! nothing; an address with no connections is forgotten, so the table
//! holds at most `max_total` entries. IPv6 clients are counted per /64
//! (see [`client_key`]), as an attacker owns a whole prefix.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use super::lockout::client_key;

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateRefusal {
    /// The server holds `max_connections` already.
    Full,
    /// This address holds `max_connections_per_client` already.
    ClientFull,
}

impl GateRefusal {
    pub fn message(self) -> &'static str {
        match self {
            GateRefusal::Full => "the server is at its connection limit; retry shortly",
            GateRefusal::ClientFull => {
                "too many connections from your address; close some and retry"
            }
        }
    }
}

#[derive(Debug)]
pub struct ConnectionGate {
    max_total: usize,
    max_per_client: usize,
    counts: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_client: HashMap<IpAddr, usize>,
}

/// One admitted connection; dropping it gives the place back.
#[derive(Debug)]
pub struct Permit {
    gate: Arc<ConnectionGate>,
    client: IpAddr,
}

impl ConnectionGate {
    pub fn new(max_total: usize, max_per_client: usize) -> Arc<ConnectionGate> {
        Arc::new(ConnectionGate {
            max_total: max_total.max(1),
            max_per_client: max_per_client.max(1),
            counts: Mutex::new(Counts::default()),
        })
    }

    fn counts(&self) -> MutexGuard<'_, Counts> {
        // Counting cannot be left half-done: a poisoned lock is still sound.
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn admit(self: &Arc<Self>, client: IpAddr) -> Result<Permit, GateRefusal> {
        let client = client_key(client);
        let mut counts = self.counts();
        if counts.total >= self.max_total {
            return Err(GateRefusal::Full);
        }
        let mine = counts.per_client.entry(client).or_insert(0);
        if *mine >= self.max_per_client {
            return Err(GateRefusal::ClientFull);
        }
        *mine += 1;
        counts.total += 1;
        Ok(Permit {
            gate: self.clone(),
            client,
        })
    }

    /// Connections held now: in total, and by `client`'s address.
    #[cfg(test)]
    pub fn held(&self, client: IpAddr) -> (usize, usize) {
        let counts = self.counts();
        let mine = counts.per_client.get(&client_key(client)).copied();
        (counts.total, mine.unwrap_or(0))
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut counts = self.gate.counts();
        counts.total = counts.total.saturating_sub(1);
        if let Some(mine) = counts.per_client.get_mut(&self.client) {
            *mine -= 1;
            if *mine == 0 {
                counts.per_client.remove(&self.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn each_address_gets_its_share_and_the_total_is_shared() {
        let gate = ConnectionGate::new(5, 3);
        let a: Vec<Permit> = (0..3)
            .map(|_| gate.admit(ip("10.0.0.1")).unwrap())
            .collect();
        assert_eq!(
            gate.admit(ip("10.0.0.1")).unwrap_err(),
            GateRefusal::ClientFull
        );
        let b: Vec<Permit> = (0..2)
            .map(|_| gate.admit(ip("10.0.0.2")).unwrap())
            .collect();
        // Five held: the total refuses even an address with none.
        assert_eq!(gate.admit(ip("10.0.0.3")).unwrap_err(), GateRefusal::Full);
        assert_eq!(gate.held(ip("10.0.0.1")), (5, 3));
        drop(b);
        assert_eq!(gate.held(ip("10.0.0.2")), (3, 0));
        let _c = gate.admit(ip("10.0.0.3")).unwrap();
        drop(a);
        assert_eq!(gate.held(ip("10.0.0.1")), (1, 0));
        assert_eq!(
            gate.counts().per_client.len(),
            1,
            "idle addresses are forgotten"
        );
    }

    #[test]
    fn an_ipv6_prefix_counts_as_one_client() {
        let gate = ConnectionGate::new(100, 2);
        let _a = gate.admit(ip("2001:db8::1")).unwrap();
        let _b = gate.admit(ip("2001:db8::2")).unwrap();
        assert_eq!(
            gate.admit(ip("2001:db8::ffff")).unwrap_err(),
            GateRefusal::ClientFull
        );
        assert!(gate.admit(ip("2001:db8:0:1::1")).is_ok(), "another /64");
    }

    #[test]
    fn refusals_change_nothing() {
        let gate = ConnectionGate::new(1, 1);
        let held = gate.admit(ip("10.0.0.1")).unwrap();
        for _ in 0..10 {
            assert!(gate.admit(ip("10.0.0.2")).is_err());
            assert!(gate.admit(ip("10.0.0.1")).is_err());
        }
        assert_eq!(gate.held(ip("10.0.0.2")), (1, 0));
        drop(held);
        assert_eq!(gate.held(ip("10.0.0.1")), (0, 0));
        assert!(gate.admit(ip("10.0.0.2")).is_ok());
    }
}
