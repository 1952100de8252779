//! [`Lockout`]: brute-force throttling of one kind of credential check
//! (passwords of accounts, keys of streams). Clock-free: the caller passes
//! `now`.
//!
//! Failures are counted twice: per client address (an IPv6 client by its
//! /64, which one subscriber usually holds whole) and per subject (the
//! account or the stream). Either bucket running dry refuses further
//! checks until it refills, *without* comparing the credential, so a
//! guesser learns nothing while throttled. A subject's lockout would let
//! anyone lock its owner out; so an address that passed the check for
//! that subject within `trust_for` is exempt from the subject's lockout
//! (never from its own address's), and OBS keeps publishing while its
//! stream's key is under attack from elsewhere.
//!
//! Invariants: each map holds at most `max_tracked` entries. When a map is
//! full, entries with a full bucket and no live trust are forgotten (at
//! most once a second); if it is still full, checks for keys it does not
//! hold are refused: under an attack from more addresses than that, new
//! clients wait rather than the server growing without bound.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::realtime::rate::{Rate, TokenBucket};

/// Trusted addresses remembered per subject.
const MAX_TRUSTED: usize = 8;
/// How often a full map may be swept for idle entries.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// The limits of one [`Lockout`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LockoutLimits {
    /// Failures one client address may have (burst, then per second).
    pub per_client: Rate,
    /// Failures one subject may have, from all untrusted addresses.
    pub per_subject: Rate,
    /// Entries per map (addresses; subjects) at most.
    pub max_tracked: usize,
    /// How long a success exempts its address from the subject's lockout.
    pub trust_for: Duration,
}

/// Which bucket a failure just emptied: the caller logs one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockedOut {
    Client,
    Subject,
}

#[derive(Debug)]
struct Subject {
    failures: TokenBucket,
    /// Addresses that passed recently, with when they did.
    trusted: Vec<(IpAddr, Instant)>,
}

impl Subject {
    fn trusts(&self, client: IpAddr, now: Instant, trust_for: Duration) -> bool {
        self.trusted
            .iter()
            .any(|&(ip, at)| ip == client && now.saturating_duration_since(at) < trust_for)
    }
}

#[derive(Debug)]
pub struct Lockout {
    limits: LockoutLimits,
    clients: HashMap<IpAddr, TokenBucket>,
    subjects: HashMap<String, Subject>,
    last_sweep: Option<Instant>,
}

/// The address a throttle counts: IPv4 as is (and IPv4-mapped IPv6 as
/// IPv4), IPv6 by its /64.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(bits.into())
            }
        },
    }
}

impl Lockout {
    pub fn new(limits: LockoutLimits) -> Lockout {
        Lockout {
            limits,
            clients: HashMap::new(),
            subjects: HashMap::new(),
            last_sweep: None,
        }
    }

    /// May `client` try a credential for `subject` now? `Err` says when it
    /// may. A check costs nothing; only [`Lockout::failed`] spends.
    pub fn check(
        &mut self,
        client: IpAddr,
        subject: Option<&str>,
        now: Instant,
    ) -> Result<(), Duration> {
        let client = client_key(client);
        self.sweep_if_full(now);
        let clients_full = self.clients.len() >= self.limits.max_tracked;
        match self.clients.get_mut(&client) {
            Some(bucket) => bucket.check(now)?,
            None if clients_full => return Err(SWEEP_EVERY),
            None => {}
        }
        let Some(name) = subject else { return Ok(()) };
        let subjects_full = self.subjects.len() >= self.limits.max_tracked;
        match self.subjects.get_mut(name) {
            Some(s) if s.trusts(client, now, self.limits.trust_for) => Ok(()),
            Some(s) => s.failures.check(now),
            None if subjects_full => Err(SWEEP_EVERY),
            None => Ok(()),
        }
    }

    /// `client` presented a wrong credential for `subject` (or a token
    /// that matched nothing: `None`). Says which bucket it emptied, once.
    pub fn failed(
        &mut self,
        client: IpAddr,
        subject: Option<&str>,
        now: Instant,
    ) -> Option<LockedOut> {
        let client = client_key(client);
        let mut emptied = None;
        if self.clients.contains_key(&client) || self.clients.len() < self.limits.max_tracked {
            let bucket = self
                .clients
                .entry(client)
                .or_insert_with(|| TokenBucket::new(self.limits.per_client, now));
            if take_and_emptied(bucket, now) {
                emptied = Some(LockedOut::Client);
            }
        }
        if let Some(name) = subject {
            let trust_for = self.limits.trust_for;
            let per_subject = self.limits.per_subject;
            let room = self.subjects.len() < self.limits.max_tracked;
            let entry = match self.subjects.get_mut(name) {
                Some(s) => Some(s),
                None if room => Some(self.subjects.entry(name.to_owned()).or_insert(Subject {
                    failures: TokenBucket::new(per_subject, now),
                    trusted: Vec::new(),
                })),
                None => None,
            };
            // A trusted address's typo does not count against its subject.
            if let Some(s) = entry.filter(|s| !s.trusts(client, now, trust_for)) {
                if take_and_emptied(&mut s.failures, now) && emptied.is_none() {
                    emptied = Some(LockedOut::Subject);
                }
            }
        }
        emptied
    }

    /// `client` presented the right credential for `subject`: trust it.
    pub fn succeeded(&mut self, client: IpAddr, subject: &str, now: Instant) {
        let client = client_key(client);
        let room = self.subjects.len() < self.limits.max_tracked;
        let entry = match self.subjects.get_mut(subject) {
            Some(s) => s,
            None if room => self.subjects.entry(subject.to_owned()).or_insert(Subject {
                failures: TokenBucket::new(self.limits.per_subject, now),
                trusted: Vec::new(),
            }),
            None => return,
        };
        entry.trusted.retain(|&(ip, _)| ip != client);
        if entry.trusted.len() >= MAX_TRUSTED {
            entry.trusted.remove(0); // the oldest
        }
        entry.trusted.push((client, now));
    }

    /// Entries tracked (addresses, subjects), for tests and metrics.
    pub fn tracked(&self) -> (usize, usize) {
        (self.clients.len(), self.subjects.len())
    }

    fn sweep_if_full(&mut self, now: Instant) {
        let full = self.clients.len() >= self.limits.max_tracked
            || self.subjects.len() >= self.limits.max_tracked;
        if !full || self.last_sweep.is_some_and(|t| now < t + SWEEP_EVERY) {
            return;
        }
        self.last_sweep = Some(now);
        let trust_for = self.limits.trust_for;
        self.clients.retain(|_, b| !b.is_full(now));
        self.subjects.retain(|_, s| {
            s.trusted
                .retain(|&(_, at)| now.saturating_duration_since(at) < trust_for);
            !(s.failures.is_full(now) && s.trusted.is_empty())
        });
    }
}

/// Takes a token if there is one; true when that left the bucket unable
/// to give another (the moment a lockout starts).
fn take_and_emptied(bucket: &mut TokenBucket, now: Instant) -> bool {
    bucket.try_take(now).is_ok() && bucket.check(now).is_err()
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));
    const C: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 3));

    fn limits() -> LockoutLimits {
        LockoutLimits {
            per_client: Rate {
                per_sec: 0.1,
                burst: 5.0,
            },
            per_subject: Rate {
                per_sec: 0.1,
                burst: 8.0,
            },
            max_tracked: 100,
            trust_for: Duration::from_secs(3600),
        }
    }

    #[test]
    fn a_client_is_refused_after_its_burst_and_recovers_after_the_window() {
        let t0 = Instant::now();
        let mut l = Lockout::new(limits());
        let mut events = Vec::new();
        for _ in 0..5 {
            assert_eq!(l.check(A, Some("live"), t0), Ok(()));
            events.push(l.failed(A, Some("live"), t0));
        }
        assert_eq!(events[..4], [None; 4]);
        assert_eq!(
            events[4],
            Some(LockedOut::Client),
            "logged once, on the 5th"
        );
        assert_eq!(l.check(A, Some("live"), t0), Err(Duration::from_secs(10)));
        assert_eq!(l.check(A, None, t0), Err(Duration::from_secs(10)));
        // Another address is not affected (the subject has 3 left).
        assert_eq!(l.check(B, Some("live"), t0), Ok(()));
        // One failure's worth back after 10 s.
        assert_eq!(
            l.check(A, Some("live"), t0 + Duration::from_secs(10)),
            Ok(())
        );
    }

    #[test]
    fn a_subject_under_attack_stays_open_to_the_address_it_trusts() {
        let t0 = Instant::now();
        let mut l = Lockout::new(LockoutLimits {
            trust_for: Duration::from_secs(5),
            ..limits()
        });
        l.succeeded(C, "live", t0); // OBS published from C before
                                    // Eight failures from two attacker addresses empty the subject.
        let mut locked = None;
        for i in 0..8 {
            let ip = if i % 2 == 0 { A } else { B };
            locked = locked.or(l.failed(ip, Some("live"), t0));
        }
        assert_eq!(locked, Some(LockedOut::Subject));
        let d = IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, 7));
        assert!(l.check(d, Some("live"), t0).is_err(), "a new address waits");
        assert_eq!(
            l.check(C, Some("live"), t0),
            Ok(()),
            "the trusted one does not"
        );
        assert_eq!(
            l.check(d, Some("news"), t0),
            Ok(()),
            "other subjects are open"
        );
        // The trusted address's own typos neither count nor lock it out.
        for _ in 0..3 {
            l.failed(C, Some("live"), t0);
        }
        assert_eq!(l.check(C, Some("live"), t0), Ok(()));
        // Trust runs out (after 5 s here; the subject has refilled only
        // half a failure by then).
        let t5 = t0 + Duration::from_secs(5);
        assert!(l.check(C, Some("live"), t5).is_err());
    }

    #[test]
    fn ipv6_clients_count_by_their_64() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(client_key(mapped), A);
    }

    #[test]
    fn full_maps_forget_idle_entries_then_refuse_new_keys() {
        let t0 = Instant::now();
        let mut l = Lockout::new(LockoutLimits {
            max_tracked: 3,
            ..limits()
        });
        for i in 0..3u8 {
            let ip = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, i));
            l.failed(ip, None, t0);
        }
        l.failed(A, None, t0);
        assert_eq!(l.tracked().0, 3, "never more than max_tracked");
        assert_eq!(
            l.check(A, None, t0),
            Err(SWEEP_EVERY),
            "full: new keys wait"
        );
        // 10 s later every bucket refilled: the sweep forgets them.
        let later = t0 + Duration::from_secs(10);
        assert_eq!(l.check(A, None, later), Ok(()));
        assert_eq!(l.tracked().0, 0);
    }
}
