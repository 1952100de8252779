//! The one way into an `Rtc`: [`guarded`] runs a call and then str0m's rule
//! (drain `poll_output` until `Timeout`, sending what it transmits and
//! keeping its events for after the drain) inside `catch_unwind`, so a
//! panic in str0m, or in our handling of one session, ends that session
//! only. Every input, timeout, keyframe request, estimator setting and
//! close goes through it; the fast egress ([`super::fanout`]) guards its
//! direct sends the same way.

use std::os::fd::AsFd;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use str0m::net::Protocol;
use str0m::{Event, Output, Rtc, RtcError};

use super::egress::{Class, Egress};
use crate::metrics::Metrics;

/// Where a drain's transmits go.
pub struct Io<'a, S: AsFd> {
    pub socket: &'a S,
    pub egress: &'a mut Egress,
    pub metrics: &'a Metrics,
}

/// How a guarded call ended.
pub enum Guarded<T> {
    /// The call returned; the session's next timeout.
    Done(T, Instant),
    /// str0m refused the input (a bad SRTP packet, a stray DTLS record);
    /// the session may live on if it is still alive.
    Refused,
    /// It panicked: the session must end.
    Panicked,
}

/// Polls `rtc` until only a timeout is left.
pub fn drain<S: AsFd>(
    rtc: &mut Rtc,
    io: &mut Io<'_, S>,
    events: &mut Vec<Event>,
) -> Result<Instant, RtcError> {
    loop {
        match rtc.poll_output()? {
            Output::Timeout(t) => return Ok(t),
            Output::Transmit(t) => {
                // A TCP transmit to a connection that is gone goes nowhere.
                if t.proto == Protocol::Udp || io.egress.tcp.contains_key(&t.destination) {
                    io.egress.push(
                        io.socket,
                        io.metrics,
                        t.destination,
                        &t.contents,
                        Class::Priority,
                    );
                }
            }
            Output::Event(e) => events.push(e),
        }
    }
}

/// Runs `call` on `rtc`, then drains it; events land in `events`.
pub fn guarded<S: AsFd, T>(
    rtc: &mut Rtc,
    io: &mut Io<'_, S>,
    events: &mut Vec<Event>,
    call: impl FnOnce(&mut Rtc) -> Result<T, RtcError>,
) -> Guarded<T> {
    let result = catch_unwind(AssertUnwindSafe(|| {
        let value = call(rtc)?;
        drain(rtc, io, events).map(|t| (value, t))
    }));
    match result {
        Ok(Ok((value, timeout))) => Guarded::Done(value, timeout),
        Ok(Err(_)) => Guarded::Refused,
        Err(_) => Guarded::Panicked,
    }
}
