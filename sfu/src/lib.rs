//! relaycast's media plane: a simulcast SFU on str0m in RTP mode.
//!
//! - [`core`] is sans-IO and clock-free (every function takes `now`): the
//!   [`core::Forwarder`], [`core::GopCache`], keyframe detection and layer
//!   ranking, all table-tested.
//! - [`worker`] owns the one UDP socket, every peer's `Rtc` and every
//!   `DownTrack`; nothing in it is shared or locked.
//! - [`SfuHandle`] is how the control plane talks to the worker: commands in
//!   over a bounded channel, answers back over oneshots.
//!
//! This crate never reads env or files and never speaks HTTP.

pub mod core;
mod error;
mod handle;
mod ids;
mod metrics;
mod sdp;
mod worker;

pub use core::layer_selector::Bounds;
pub use core::layers::LayerChoice;
pub use error::MediaError;
pub use handle::{MediaConfig, SessionInfo, SfuHandle};
pub use ids::{BroadcastName, SessionId};
pub use metrics::{DropReason, Metrics};
pub use sdp::{answer_publisher, answer_viewer, NegotiatedPeer};
pub use worker::MAX_RESTARTS as MAX_WORKER_RESTARTS;
pub use worker::{BroadcastStatus, Demux, PublisherLayer, ViewerStatus};

/// A fault to inject (tests only, feature `fault-injection`).
#[cfg(feature = "fault-injection")]
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// The worker loop panics outside any session's guard.
    WorkerPanic,
    /// This session's next input panics inside its guard.
    SessionPanic(SessionId),
}
