//! [`MediaPlane`]: everything the control plane asks of the media plane,
//! as a trait, so HTTP and websocket tests can run against a fake
//! (`tests/fake_media.rs`) as well as the real workers. [`SfuHandle`]
//! implements it. Session changes are async (they go to a worker); queries
//! are plain calls answered from the workers' published snapshots.
//!
//! [`SfuHandle`]: relaycast_sfu::SfuHandle

use relaycast_sfu::{
    BroadcastName, BroadcastStatus, LayerChoice, MediaError, PublisherLayer, SessionId,
    SessionInfo, SfuHandle, ViewerStatus, Viewport, MAX_VIEW_SIDE,
};
use tokio::sync::broadcast;

#[async_trait::async_trait]
pub trait MediaPlane: Send + Sync + 'static {
    async fn publish(
        &self,
        broadcast: BroadcastName,
        offer: &str,
    ) -> Result<SessionInfo, MediaError>;
    async fn view(
        &self,
        broadcast: BroadcastName,
        offer: &str,
        choice: LayerChoice,
    ) -> Result<SessionInfo, MediaError>;
    async fn set_layer(&self, id: SessionId, choice: LayerChoice) -> Result<(), MediaError>;
    /// What a viewer's player shows ([`Viewport`]): caps its automatic
    /// layer, pauses its video while hidden.
    async fn set_view(&self, id: SessionId, view: Viewport) -> Result<(), MediaError>;
    async fn end(&self, id: SessionId, broadcast: BroadcastName) -> Result<(), MediaError>;
    /// Holds these viewers' audio and video for `hold` (an ad break), or resumes them
    /// (`None`); how many of them exist.
    async fn hold_media(&self, ids: Vec<SessionId>, hold: Option<std::time::Duration>) -> usize;
    async fn attach_publisher(&self, id: SessionId) -> Result<(), MediaError>;
    /// Whether a session of this broadcast exists.
    fn exists(&self, id: SessionId, broadcast: &BroadcastName) -> bool;
    fn broadcasts(&self) -> Vec<BroadcastStatus>;
    fn viewers(&self, broadcast: &BroadcastName) -> Vec<ViewerStatus>;
    fn viewer(&self, id: SessionId) -> Option<ViewerStatus>;
    /// `Err(NoSuchSession)` once the publisher is gone; `Ok(None)` while
    /// its layers are not known yet.
    fn publisher_layers(&self, id: SessionId) -> Result<Option<Vec<PublisherLayer>>, MediaError>;
    /// Session ids as sessions end.
    fn ended(&self) -> broadcast::Receiver<SessionId>;
    /// Every media worker runs.
    fn is_alive(&self) -> bool;
    /// The media plane's metrics, read at each `/metrics` scrape.
    fn metrics_collector(&self) -> Box<dyn prometheus_client::collector::Collector>;
    /// The media plane's counters now (for the operator page).
    fn snapshot(&self) -> relaycast_sfu::MediaSnapshot;
}

#[async_trait::async_trait]
impl MediaPlane for SfuHandle {
    async fn publish(
        &self,
        broadcast: BroadcastName,
        offer: &str,
    ) -> Result<SessionInfo, MediaError> {
        SfuHandle::publish(self, broadcast, offer).await
    }

    async fn view(
        &self,
        broadcast: BroadcastName,
        offer: &str,
        choice: LayerChoice,
    ) -> Result<SessionInfo, MediaError> {
        SfuHandle::view(self, broadcast, offer, choice).await
    }

    async fn set_layer(&self, id: SessionId, choice: LayerChoice) -> Result<(), MediaError> {
        SfuHandle::set_layer(self, id, choice).await
    }

    async fn set_view(&self, id: SessionId, view: Viewport) -> Result<(), MediaError> {
        SfuHandle::set_view(self, id, view).await
    }

    async fn end(&self, id: SessionId, broadcast: BroadcastName) -> Result<(), MediaError> {
        SfuHandle::end(self, id, broadcast).await
    }

    async fn attach_publisher(&self, id: SessionId) -> Result<(), MediaError> {
        SfuHandle::attach_publisher(self, id).await
    }

    async fn hold_media(&self, ids: Vec<SessionId>, hold: Option<std::time::Duration>) -> usize {
        SfuHandle::hold_media(self, &ids, hold).await
    }

    fn exists(&self, id: SessionId, broadcast: &BroadcastName) -> bool {
        SfuHandle::exists(self, id, broadcast)
    }

    fn broadcasts(&self) -> Vec<BroadcastStatus> {
        SfuHandle::broadcasts(self)
    }

    fn viewers(&self, broadcast: &BroadcastName) -> Vec<ViewerStatus> {
        SfuHandle::viewers(self, broadcast)
    }

    fn viewer(&self, id: SessionId) -> Option<ViewerStatus> {
        SfuHandle::viewer(self, id)
    }

    fn publisher_layers(&self, id: SessionId) -> Result<Option<Vec<PublisherLayer>>, MediaError> {
        SfuHandle::publisher_layers(self, id)
    }

    fn ended(&self) -> broadcast::Receiver<SessionId> {
        SfuHandle::ended(self)
    }

    fn is_alive(&self) -> bool {
        SfuHandle::is_alive(self)
    }

    fn metrics_collector(&self) -> Box<dyn prometheus_client::collector::Collector> {
        Box::new(SfuHandle::metrics_collector(self))
    }

    fn snapshot(&self) -> relaycast_sfu::MediaSnapshot {
        SfuHandle::metrics_collector(self).snapshot()
    }
}

/// A player's report is believable: no side beyond any display.
pub fn check_view(view: &Viewport) -> Result<(), String> {
    if view.width > MAX_VIEW_SIDE || view.height > MAX_VIEW_SIDE {
        return Err(format!(
            "width and height are the player's picture in device pixels, at most {MAX_VIEW_SIDE}"
        ));
    }
    Ok(())
}
