//! The sans-IO, clock-free heart of the SFU. Nothing here touches a socket,
//! a clock or a lock: callers pass `now`, so tests run faster than real time.

pub mod bitrate;
pub mod bwe_policy;
pub mod clean_delivery;
pub mod forwarder;
pub mod gop_cache;
pub mod h264_sps;
pub mod keyframe;
pub mod layer_selector;
pub mod layers;
pub mod loss_cap;
pub mod overload;
pub mod packet;
pub mod packet_store;
pub mod probe_pacer;
pub mod resend_budget;
pub mod stale_estimate;
pub mod throttle;
pub mod view_fit;

pub use forwarder::{DownTrackState, Forwarder, ResendRef, SourceKey, Translated};
pub use gop_cache::GopCache;
pub use packet::SourcePacket;
pub use packet_store::PacketStore;
