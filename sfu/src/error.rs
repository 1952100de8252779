//! Errors the media plane reports to the control plane. Each maps to one HTTP
//! status in `signaling`; none of them is fatal to the worker.

/// Why a publish/view/end request failed.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("malformed SDP offer: {0}")]
    BadSdp(String),
    #[error("the offer has no media we can use: {0}")]
    UnusableOffer(String),
    #[error("no supported codec offered (offered: {offered}); relaycast accepts H264, VP8, VP9, AV1, Opus")]
    UnsupportedCodecs { offered: String },
    #[error("broadcast {0} is already live")]
    AlreadyLive(String),
    #[error("no such session")]
    NoSuchSession,
    #[error("the media worker is not running")]
    WorkerGone,
    #[error("the media worker is overloaded; retry shortly")]
    Busy,
    /// Admission control: no worker may take another viewer without its
    /// viewers suffering, or the node is at its configured maximum.
    #[error("{}; retry in {} s", if *node_full { "this server has as many viewers as it is configured for" } else { "this server is at capacity" }, retry_after.as_secs())]
    Overloaded {
        retry_after: std::time::Duration,
        node_full: bool,
    },
}
