//! Live ad breaks: starting one (REST, the moderator console, or the
//! schedule), delivering it to the room's seats that must see it while
//! holding their media, a member who joins mid-break, and a seat whose pod
//! finished early.
//!
//! Invariants:
//! - The server decides who sees a break: a seat whose account holds the
//!   ad-free plan never gets `ad_break` and its media is never held (see
//!   [`AdSeat`]); nothing a client sends can opt it out.
//! - A seat's media resumes early only when the ad server's own records say
//!   its pod is over (every ad completed, skipped or failed); otherwise at
//!   the break's end, which the media plane applies by itself.
//! - One break per broadcast at a time.
//!
//! [`AdSeat`]: crate::realtime::ad_seat::AdSeat

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use relaycast_sfu::SessionId;

use crate::ads::{pod, signing::UrlSigner};
use crate::error::ApiError;
use crate::realtime::members::ConnHandle;
use crate::realtime::protocol::ServerMessage;
use crate::store::{now_ms, AdBreak, NewBreak, VideoQuery};
use crate::AppState;

/// `[ads]`: breaks and the ad server's limits.
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdSettings {
    /// A break every this many minutes of each live broadcast (0: only on
    /// request).
    pub break_every_minutes: u32,
    /// How long a scheduled break lasts, in seconds.
    pub scheduled_break_secs: u32,
    /// The longest break anyone may start, in seconds.
    pub max_break_secs: u32,
    /// Ads in one pod at most.
    pub max_pod_ads: usize,
    /// The largest creative an admin may upload, in MiB.
    pub max_creative_mb: u64,
}

impl Default for AdSettings {
    fn default() -> Self {
        AdSettings {
            break_every_minutes: 0,
            scheduled_break_secs: 30,
            max_break_secs: 180,
            max_pod_ads: 4,
            max_creative_mb: 50,
        }
    }
}

/// How long `ad.done` waits for the pod's last tracking hit: this many
/// looks, this far apart.
const DONE_CHECKS: u32 = 10;
const DONE_CHECK_EVERY: Duration = Duration::from_millis(50);

/// The shortest break (a VAST ad is at least a few seconds).
pub const MIN_BREAK_SECS: u32 = 5;

/// The ad server's state on this node.
#[derive(Debug)]
pub struct AdRuntime {
    pub signer: UrlSigner,
    pub settings: AdSettings,
    running: Mutex<HashMap<String, Running>>,
}

#[derive(Debug, Clone, Copy)]
struct Running {
    id: i64,
    duration_s: u32,
    until: Instant,
}

impl AdRuntime {
    pub fn new(secret: &[u8], settings: AdSettings) -> AdRuntime {
        AdRuntime {
            signer: UrlSigner::new(secret),
            settings,
            running: Mutex::new(HashMap::new()),
        }
    }

    fn running(&self) -> MutexGuard<'_, HashMap<String, Running>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The break running on `broadcast` at `now`: (id, seconds left).
    pub fn running_break(&self, broadcast: &str, now: Instant) -> Option<(i64, Duration)> {
        self.running()
            .get(broadcast)
            .filter(|r| now < r.until)
            .map(|r| (r.id, r.until - now))
    }

    /// The signed path of the VAST pod for `session` in `break_id`, watched
    /// by `viewer` (an identity id, or "").
    pub fn vast_path(&self, break_id: i64, session: &str, viewer: &str) -> String {
        let b = break_id.to_string();
        let sig = self.signer.sign(&["vast", &b, session, viewer]);
        format!(
            "/ads/vast?break={b}&session={session}&viewer={}&sig={sig}",
            query_escape(viewer)
        )
    }
}

/// A query value with everything but unreserved characters %-escaped.
pub fn query_escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A fresh ad-server session id (128 random bits, hex).
pub fn new_session() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Starts a break of `duration_s` on `broadcast`, chosen and recorded now,
/// and delivers it to the room.
pub async fn start(
    state: &AppState,
    broadcast: &str,
    triggered_by: &str,
    duration_s: u32,
) -> Result<AdBreak, ApiError> {
    let ads = state.ads();
    let max = ads.settings.max_break_secs;
    if !(MIN_BREAK_SECS..=max).contains(&duration_s) {
        return Err(ApiError::BadRequest(format!(
            "duration_s must be {MIN_BREAK_SECS}-{max} seconds"
        )));
    }
    let now = Instant::now();
    if let Some((id, left)) = ads.running_break(broadcast, now) {
        return Err(ApiError::InvalidState(format!(
            "break {id} is running on {broadcast:?} for {} s more",
            left.as_secs()
        )));
    }
    let inventory = state.store().list_ads().await?;
    let duration_ms = i64::from(duration_s) * 1000;
    let chosen = pod::choose(
        &crate::store::inventory_for(&inventory, broadcast, now_ms()),
        now_ms(),
        duration_ms,
        ads.settings.max_pod_ads,
        |n| rand::random_range(0..n),
    );
    if chosen.is_empty() {
        return Err(ApiError::InvalidState(format!(
            "no active ad fits a {duration_s} s break"
        )));
    }
    let (recording, position_ms) = running_recording(state, broadcast).await?;
    let brk = state
        .store()
        .insert_break(&NewBreak {
            broadcast: broadcast.to_owned(),
            recording,
            triggered_by: triggered_by.to_owned(),
            started_ms: now_ms(),
            position_ms,
            duration_ms,
            pod: chosen,
        })
        .await?;
    let until = now + Duration::from_secs(u64::from(duration_s));
    {
        let mut running = ads.running();
        // Two requests may have raced past the check above: the first
        // recorded wins, the other's row stays as a break no one saw.
        if running.get(broadcast).is_some_and(|r| now < r.until) {
            return Err(ApiError::InvalidState(format!(
                "a break is already running on {broadcast:?}"
            )));
        }
        running.insert(
            broadcast.to_owned(),
            Running {
                id: brk.id,
                duration_s,
                until,
            },
        );
    }
    let seats = state.hub().room(broadcast).snapshot();
    let mut held = Vec::new();
    for conn in seats.iter() {
        held.extend(enter(state, conn, brk.id, duration_s, until, now));
    }
    hold(state, held, Some(until.saturating_duration_since(now)));
    tracing::info!(
        broadcast,
        id = brk.id,
        duration_s,
        seats = seats.len(),
        "ad break started"
    );
    Ok(brk)
}

/// The recording `broadcast` is writing now, and how far into it we are.
async fn running_recording(
    state: &AppState,
    broadcast: &str,
) -> Result<(Option<String>, i64), ApiError> {
    let latest = state
        .store()
        .list_recordings(&VideoQuery {
            broadcast: Some(broadcast.to_owned()),
            limit: 1,
            ..VideoQuery::default()
        })
        .await?;
    Ok(match latest.into_iter().next() {
        Some(r) if r.status == "recording" => {
            let at = (now_ms() - r.started_ms).clamp(0, r.duration_ms.max(0) + 10_000);
            (Some(r.id), at)
        }
        _ => (None, 0),
    })
}

/// Puts one seat into a break and tells it; the sessions to hold.
fn enter(
    state: &AppState,
    conn: &Arc<ConnHandle>,
    break_id: i64,
    duration_s: u32,
    until: Instant,
    now: Instant,
) -> Vec<SessionId> {
    let Some(entered) = conn.ads.enter(break_id, until, now, new_session) else {
        return Vec::new();
    };
    let vast_url = state
        .ads()
        .vast_path(break_id, &entered.seat.session, &entered.viewer);
    conn.push(
        ServerMessage::AdBreak {
            break_id,
            vast_url,
            duration_s,
            remaining_ms: until.saturating_duration_since(now).as_millis() as u64,
        }
        .to_text(),
    );
    entered.sessions
}

/// Holds (or with `None` resumes) sessions' audio and video, off the caller's task.
fn hold(state: &AppState, sessions: Vec<SessionId>, hold: Option<Duration>) {
    if sessions.is_empty() {
        return;
    }
    let media = state.media_arc();
    tokio::spawn(async move {
        media.hold_media(sessions, hold).await;
    });
}

/// A member joined `broadcast` (or a media session of it started): it
/// enters the running break for what is left of it.
pub fn joined(state: &AppState, conn: &Arc<ConnHandle>, broadcast: &str) {
    let now = Instant::now();
    let running = state.ads().running().get(broadcast).copied();
    if let Some(r) = running.filter(|r| now < r.until) {
        let held = enter(state, conn, r.id, r.duration_s, r.until, now);
        hold(state, held, Some(r.until.saturating_duration_since(now)));
    }
}

/// A media session of this connection started: held if its seat is in a
/// break.
pub fn session_started(state: &AppState, conn: &ConnHandle, id: SessionId) {
    if let Some(left) = conn.ads.add_session(id, Instant::now()) {
        hold(state, vec![id], Some(left));
    }
}

/// The account watching here changed (auth); an account that became
/// ad-free leaves its break at once.
pub fn viewer_changed(state: &AppState, conn: &ConnHandle, viewer: &str, ad_free: bool) {
    if let Some((left, sessions)) = conn.ads.set_viewer(viewer, ad_free) {
        hold(state, sessions, None);
        conn.push(
            ServerMessage::AdBreakEnded {
                break_id: left.break_id,
            }
            .to_text(),
        );
    }
}

/// The seat's player says its pod of `break_id` is over. Accepted only when
/// the tracking records agree: every ad of the pod completed, was skipped
/// or failed for this seat's session.
pub async fn done(state: &AppState, conn: &ConnHandle, break_id: i64) -> Result<(), ApiError> {
    let Some(seat) = conn.ads.current(Instant::now()) else {
        return Err(ApiError::NotFound(
            "this connection is in no ad break".into(),
        ));
    };
    if seat.break_id != break_id {
        return Err(ApiError::NotFound(format!(
            "this connection is in break {}, not {break_id}",
            seat.break_id
        )));
    }
    let brk = state
        .store()
        .ad_break(break_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no ad break {break_id}")))?;
    // The player fires its last tracking pixel and this message together;
    // the pixel may land a moment later, so look a few times.
    let mut over = false;
    for attempt in 0..DONE_CHECKS {
        if attempt > 0 {
            tokio::time::sleep(DONE_CHECK_EVERY).await;
        }
        let events = state.store().ad_events(break_id, &seat.session).await?;
        over = brk.pod_ids().iter().all(|ad| {
            events
                .iter()
                .any(|(a, e, _)| a == ad && matches!(e.as_str(), "complete" | "skip" | "error"))
        });
        if over {
            break;
        }
    }
    if !over {
        return Err(ApiError::InvalidState(
            "the pod is not over: an ad has not completed, been skipped or failed".into(),
        ));
    }
    if let Some((_, sessions)) = conn.ads.leave(break_id) {
        hold(state, sessions, None);
    }
    conn.push(ServerMessage::AdBreakEnded { break_id }.to_text());
    Ok(())
}

/// Whether a scheduled break is due: breaks every `every_ms` of a broadcast
/// live since `live_since_ms`, counted from its latest break (or from going
/// live).
pub fn scheduled_break_due(
    now_ms: i64,
    live_since_ms: i64,
    last_break_ms: Option<i64>,
    every_ms: i64,
) -> bool {
    if every_ms <= 0 {
        return false;
    }
    let since = last_break_ms.map_or(live_since_ms, |b| b.max(live_since_ms));
    now_ms - since >= every_ms
}

/// Runs the schedule (`[ads] break_every_minutes`): every 5 s, each live
/// broadcast whose break is due gets one. Runs until aborted at shutdown.
pub async fn schedule_loop(state: AppState) {
    let every = state.ads().settings.break_every_minutes;
    if every == 0 {
        return;
    }
    let every_ms = i64::from(every) * 60_000;
    let secs = state.ads().settings.scheduled_break_secs;
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tick.tick().await;
        for b in state.media().broadcasts() {
            let Some(since) = b.live_since.filter(|_| b.live) else {
                continue;
            };
            let since_ms = since
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            let name = b.name.to_string();
            let last = match state.store().last_break(&name).await {
                Ok(last) => last.map(|l| l.started_ms),
                Err(e) => {
                    tracing::warn!(error = %e, "ad schedule: reading the last break");
                    continue;
                }
            };
            if scheduled_break_due(now_ms(), since_ms, last, every_ms) {
                if let Err(e) = start(&state, &name, "schedule", secs).await {
                    tracing::warn!(broadcast = %name, error = %e, "ad schedule: no break");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scheduled_break_is_due_every_period_of_live_time() {
        let min = 60_000;
        // (now, live since, last break, every, due)
        let cases: &[(i64, i64, Option<i64>, i64, bool)] = &[
            (10 * min, 0, None, 10 * min, true),
            (9 * min, 0, None, 10 * min, false),
            (15 * min, 0, Some(10 * min), 10 * min, false),
            (20 * min, 0, Some(10 * min), 10 * min, true),
            // A break from an earlier session of the broadcast: count from going live.
            (15 * min, 10 * min, Some(min), 10 * min, false),
            (30 * min, 0, None, 0, false),
        ];
        for &(now, since, last, every, due) in cases {
            assert_eq!(
                scheduled_break_due(now, since, last, every),
                due,
                "{now} {since} {last:?} {every}"
            );
        }
    }

    #[test]
    fn query_values_are_escaped() {
        assert_eq!(query_escape("u-12"), "u-12");
        assert_eq!(query_escape("m-a b&c"), "m-a%20b%26c");
    }
}
