//! relaycast's own ad server: which ads fill a break ([`pod`]), the VAST
//! 4.2 pods and VMAP schedules it serves ([`vast`], [`vmap`]), the signed
//! URLs that make tracking trustworthy ([`signing`]) and what an uploaded
//! creative is ([`probe`]). The HTTP side is `rest::ads` and
//! `rest::ad_serving`; live breaks reach viewers through the hub
//! (`realtime::ad_breaks`).
//!
//! Built on the industry's formats so a real ad server can replace it: an
//! ad can itself be an external VAST tag, served as a `Wrapper`.

pub mod pod;
pub mod probe;
pub mod signing;
pub mod vast;
pub mod vmap;

/// The one plan today: no ads.
pub const AD_FREE: &str = "ad-free";
