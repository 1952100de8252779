//! The media side of a websocket connection: viewer sessions it created
//! (`viewer.offer`, `viewer.leave`, `viewer.layer`), the publisher session
//! it attached (`publisher.attach`, with the stream's key or the key the
//! session started with), sessions ended elsewhere in the media plane, and
//! the publisher's wanted-layer updates. Same invariant as the rest of
//! [`Connection`]: a refusal is an `error` message, the connection stays up.

use relaycast_sfu::{BroadcastName, SessionId};

use super::{refuse, Connection, Handled, Refused, MAX_SESSIONS};
use crate::realtime::protocol::{ErrorCode, LayerState, ServerMessage};
use crate::ApiError;

impl Connection {
    pub(super) fn own_session(&self, session: &str) -> Result<SessionId, Refused> {
        SessionId::parse(session)
            .filter(|id| self.sessions.contains_key(id))
            .ok_or_else(|| {
                refuse(
                    ErrorCode::NotFound,
                    "no viewer session of this connection has that id",
                )
            })
    }

    pub(super) async fn viewer_offer(
        &mut self,
        stream: String,
        sdp: String,
        layer: Option<String>,
        replaces: Option<String>,
    ) -> Handled {
        let old = replaces.map(|s| self.own_session(&s)).transpose()?;
        if old.is_none() && self.sessions.len() >= MAX_SESSIONS {
            return Err(refuse(
                ErrorCode::Invalid,
                format!("at most {MAX_SESSIONS} viewer sessions per connection"),
            ));
        }
        let (name, choice) =
            crate::whip_whep::viewer_target(&self.state, &stream, layer.as_deref()).await?;
        let info = self
            .state
            .media()
            .view(name.clone(), &sdp, choice)
            .await
            .map_err(ApiError::from)?;
        self.sessions.insert(info.id, name);
        crate::ad_breaks::session_started(&self.state, &self.conn, info.id);
        // Renegotiation: the new session is up before the old one ends.
        if let Some(old) = old {
            self.end_session(old).await;
        }
        self.reply(&ServerMessage::ViewerAnswer {
            stream,
            session: info.id.to_string(),
            sdp: info.answer,
        });
        Ok(())
    }

    pub(super) async fn end_session(&mut self, id: SessionId) {
        self.conn.ads.remove_session(id);
        if let Some(name) = self.sessions.remove(&id) {
            // Already gone (the peer closed) is fine.
            let _ = self.state.media().end(id, name).await;
        }
    }

    pub(super) async fn viewer_leave(&mut self, session: &str) -> Handled {
        let id = self.own_session(session)?;
        self.end_session(id).await;
        self.reply(&ServerMessage::ViewerEnded {
            session: session.to_owned(),
        });
        Ok(())
    }

    pub(super) async fn viewer_layer(
        &mut self,
        stream: &str,
        session: &str,
        layer: String,
    ) -> Handled {
        let choice = layer
            .parse::<relaycast_sfu::LayerChoice>()
            .map_err(|e| refuse(ErrorCode::Invalid, e))?;
        let not_found = || refuse(ErrorCode::NotFound, "no such viewer session");
        let id = SessionId::parse(session).ok_or_else(not_found)?;
        let media = self.state.media();
        if !media.exists(id, &BroadcastName::new(stream)) {
            return Err(not_found());
        }
        media.set_layer(id, choice).await.map_err(|_| not_found())?;
        self.reply(&ServerMessage::LayerOk { layer });
        Ok(())
    }

    pub(super) async fn viewer_view(
        &mut self,
        stream: &str,
        session: &str,
        view: relaycast_sfu::Viewport,
    ) -> Handled {
        crate::media::check_view(&view).map_err(|e| refuse(ErrorCode::Invalid, e))?;
        let not_found = || refuse(ErrorCode::NotFound, "no such viewer session");
        let id = SessionId::parse(session).ok_or_else(not_found)?;
        let media = self.state.media();
        if !media.exists(id, &BroadcastName::new(stream)) {
            return Err(not_found());
        }
        media.set_view(id, view).await.map_err(|_| not_found())
    }

    pub(super) async fn attach(&mut self, stream: &str, session: &str, token: &str) -> Handled {
        let streams = self.state.streams();
        let Some(found) = streams.find(stream).await.map_err(ApiError::from)? else {
            return Err(refuse(
                ErrorCode::NotFound,
                format!("no stream named {stream:?}"),
            ));
        };
        match streams.check(&found, token) {
            crate::channels::KeyCheck::Accepted => {}
            // The key its session was created with (before a rotation).
            crate::channels::KeyCheck::Wrong if streams.created_with(session, token) => {}
            crate::channels::KeyCheck::Wrong => {
                return Err(refuse(
                    ErrorCode::Unauthorized,
                    "the token is not this stream's key",
                ))
            }
            crate::channels::KeyCheck::Suspended(reason) => {
                return Err(refuse(
                    ErrorCode::Forbidden,
                    format!("this channel is suspended: {reason}"),
                ))
            }
        }
        let not_found = || refuse(ErrorCode::NotFound, "no such publisher session");
        let id = SessionId::parse(session).ok_or_else(not_found)?;
        self.state
            .media()
            .attach_publisher(id)
            .await
            .map_err(|_| not_found())?;
        self.publisher = Some(id);
        self.last_layers = None;
        Ok(())
    }

    /// Notifications of sessions ending anywhere in the media plane.
    pub fn ended(&self) -> tokio::sync::broadcast::Receiver<SessionId> {
        self.state.media().ended()
    }

    /// A session ended somewhere in the media plane (pushed, not polled):
    /// if it is one of ours that this connection did not end itself, say so.
    pub fn session_ended(&mut self, id: SessionId) {
        if self.sessions.remove(&id).is_some() {
            self.conn.ads.remove_session(id);
            self.reply(&ServerMessage::ViewerEnded {
                session: id.to_string(),
            });
        }
    }

    /// After missing ended notifications (a lagging subscriber): finds
    /// which of our sessions are gone.
    pub fn recheck_sessions(&mut self) {
        let gone: Vec<SessionId> = self
            .sessions
            .iter()
            .filter(|(id, name)| !self.state.media().exists(**id, name))
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            self.session_ended(id);
        }
    }

    /// Tells an attached publisher which layers to send, when that changed.
    pub fn publisher_tick(&mut self) {
        let Some(id) = self.publisher else { return };
        let layers = match self.state.media().publisher_layers(id) {
            Ok(Some(layers)) => layers,
            // Not in its worker's snapshot yet.
            Ok(None) => return,
            // The session ended: nothing more to control.
            Err(_) => {
                self.publisher = None;
                return;
            }
        };
        let layers: Vec<LayerState> = layers
            .into_iter()
            .map(|l| LayerState {
                rid: l.rid,
                active: l.send,
            })
            .collect();
        if self.last_layers.as_ref() != Some(&layers) {
            self.reply(&ServerMessage::Layers {
                layers: layers.clone(),
            });
            self.last_layers = Some(layers);
        }
    }
}
