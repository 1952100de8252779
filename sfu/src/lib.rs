//! relaycast's media plane: a simulcast SFU on str0m in RTP mode.
//!
//! - [`core`] is sans-IO and clock-free (every function takes `now`): the
//!   [`core::Forwarder`], [`core::GopCache`], packet stores, keyframe
//!   detection, layer selection, bandwidth and load policy, all
//!   table-tested.
//! - `worker`: one thread per core, each owning its UDP socket (its own
//!   port), its sessions' `Rtc`s, the Sources of its publishers and a
//!   Mirror of every broadcast it has viewers of; nothing in it is shared or
//!   locked. Source and Mirrors talk only by messages (`worker::bus`).
//! - [`SfuHandle`] is how the control plane talks to the workers: it places
//!   sessions ([`placement`]), sends commands over bounded channels, and
//!   answers queries from the snapshots the workers publish.
//!
//! This crate never reads env or files and never speaks HTTP.

pub mod core;
mod error;
mod exposition;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
mod handle;
mod ids;
mod metrics;
pub mod placement;
pub mod recorder;
mod sdp;
mod worker;

pub use core::layer_selector::Bounds;
pub use core::layers::LayerChoice;
pub use core::view_fit::{Viewport, MAX_SIDE as MAX_VIEW_SIDE};
pub use error::MediaError;
pub use exposition::{MediaCollector, MediaSnapshot, WorkerLoad};
pub use handle::{MediaConfig, SessionInfo, SfuHandle, WORKER_STALL};
pub use ids::{BroadcastName, SessionId};
pub use metrics::{DropReason, Metrics};
pub use sdp::{answer_publisher, answer_viewer, NegotiatedPeer};
pub use worker::MAX_RESTARTS as MAX_WORKER_RESTARTS;
pub use worker::{BroadcastStatus, Demux, PublisherLayer, ViewerStatus, WorkerStatus};

/// A fault to inject (tests only, feature `fault-injection`).
#[cfg(feature = "fault-injection")]
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// Worker 0's loop panics outside any session's guard.
    WorkerPanic,
    /// That worker's loop panics.
    WorkerPanicOn(usize),
    /// This session's next input panics inside its guard.
    SessionPanic(SessionId),
}
