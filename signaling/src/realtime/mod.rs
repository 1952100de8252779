//! The realtime layer behind `/ws`: the [`Hub`] of connections and rooms,
//! and the pure, clock-free parts it is built from (rate limits, chat gate
//! and history, reaction aggregation, alert accounting, validation), each
//! table-tested in its own module. The websocket transport lives in
//! `crate::ws`; this module never touches a socket.

pub mod ad_seat;
pub mod alerts;
pub mod history;
pub mod hub;
pub mod members;
pub mod moderation;
pub mod protocol;
pub mod rate;
pub mod reactions;
pub mod room;
pub mod throttle;
pub mod validate;

pub use hub::Hub;
