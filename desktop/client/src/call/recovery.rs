//! Recovery of a call's peer connections after a network drop.
//!
//! [`keep_connected`] watches one peer connection's ICE state. A connection that
//! stays disconnected for [`DISCONNECTED_GRACE`], or fails, gets an ICE restart,
//! and another one every [`RESTART_RETRY`] until it connects again. The `webrtc`
//! crate 0.21.1 restarts ICE on an existing connection both ways: as the offerer
//! with `RTCOfferOptions { ice_restart: true }` (the publisher, whose offer Janus
//! answers), and as the answerer when a remote offer carries new ICE credentials
//! (the subscriber, after `restart_subscriber` asks Janus for one). With
//! `discard_local_candidates_during_ice_restart`, the crate also binds fresh
//! sockets and gathers new candidates, so the restart copes with a changed address.
//!
//! [`rejoin_on_close`] handles the loss of the call's WebSocket. The server then
//! takes the participant out of the call and Janus drops both its connections, so
//! the session joins again with new peer connections and a new feed.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use roomler_shared::call::{CallReply, CallRequest, Jsep, PeerRole};
use rtc::peer_connection::configuration::RTCOfferOptions;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use webrtc::peer_connection::{PeerConnection, RTCIceConnectionState, RTCSessionDescription};

use super::participants::Participants;
use super::peer::{
    CallError, CallSession, Connection, GATHER_TIMEOUT, JoinTarget, Received, SessionMedia,
    describe_local, remote_description, webrtc_error,
};
use super::signaling::CallSignaling;

/// ICE timeouts of both peer connections, far below the crate's defaults (5 s to
/// disconnected, 25 s more to failed). A live connection receives media, RTCP or a
/// keepalive response about once a second or more often, so two seconds of
/// silence mean a broken path. A failed connection comes back only through a
/// restart, so after a drop longer than 4 s only the restart brings media back.
pub(crate) const ICE_DISCONNECTED_TIMEOUT: Duration = Duration::from_secs(2);
pub(crate) const ICE_FAILED_TIMEOUT: Duration = Duration::from_secs(2);
pub(crate) const ICE_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(1);
/// How long a disconnected connection may take to come back on its own before it
/// is restarted.
const DISCONNECTED_GRACE: Duration = Duration::from_secs(1);
/// How long a restarted connection may take to connect before the next restart.
const RESTART_RETRY: Duration = Duration::from_secs(5);

/// The first and the longest wait before joining again after the WebSocket closed;
/// each failed attempt doubles the wait.
const REJOIN_DELAY_MIN: Duration = Duration::from_millis(250);
const REJOIN_DELAY_MAX: Duration = Duration::from_secs(10);

/// One peer connection's ICE restart, with the signaling it takes.
pub(crate) trait RestartIce: Send {
    fn restart_ice(&mut self) -> impl Future<Output = Result<(), CallError>> + Send;
}

fn is_connected(state: &RTCIceConnectionState) -> bool {
    matches!(
        state,
        RTCIceConnectionState::Connected | RTCIceConnectionState::Completed
    )
}

fn is_broken(state: &RTCIceConnectionState) -> bool {
    matches!(
        state,
        RTCIceConnectionState::Disconnected | RTCIceConnectionState::Failed
    )
}

/// Restarts ICE on the connection whose state `state` reports whenever it stays
/// disconnected or fails, until `stop` or until the connection is gone.
pub(crate) async fn keep_connected(
    role: PeerRole,
    mut state: watch::Receiver<RTCIceConnectionState>,
    mut restart: impl RestartIce,
    stop: CancellationToken,
) {
    let run = async {
        loop {
            let broken = *state.wait_for(is_broken).await.ok()?;
            tracing::info!(?role, state = %broken, "ICE connection lost");
            if broken == RTCIceConnectionState::Disconnected {
                let back = tokio::time::timeout(DISCONNECTED_GRACE, state.wait_for(is_connected));
                if back.await.is_ok() {
                    tracing::info!(?role, "ICE connection came back on its own");
                    continue;
                }
            }
            let mut attempt = 1u32;
            loop {
                tracing::info!(?role, attempt, "restarting ICE");
                if let Err(error) = restart.restart_ice().await {
                    tracing::warn!(?role, attempt, %error, "ICE restart failed");
                }
                let connected = tokio::time::timeout(RESTART_RETRY, state.wait_for(is_connected));
                match connected.await {
                    Ok(Ok(_)) => break,
                    Ok(Err(_)) => return None::<()>,
                    Err(_) => attempt += 1,
                }
            }
            tracing::info!(?role, attempt, "ICE connection restored");
        }
    };
    tokio::select! {
        () = stop.cancelled() => {}
        _ = run => {}
    }
}

/// Sets `connected` once the connection whose state `state` reports connects,
/// unless `stop` comes first.
pub(crate) async fn mark_connected(
    mut state: watch::Receiver<RTCIceConnectionState>,
    connected: Arc<AtomicBool>,
    stop: CancellationToken,
) {
    tokio::select! {
        () = stop.cancelled() => {}
        reached = state.wait_for(is_connected) => {
            if reached.is_ok() {
                connected.store(true, Ordering::Relaxed);
            }
        }
    }
}

/// Waits until ICE gathering completes after `gathered` was marked unchanged, so
/// that a value from an earlier gathering does not count. Gives up after
/// [`GATHER_TIMEOUT`], like a first gathering.
async fn wait_for_fresh_gathering(gathered: &mut watch::Receiver<bool>) {
    let fresh = async {
        while gathered.changed().await.is_ok() {
            if *gathered.borrow_and_update() {
                return;
            }
        }
    };
    if tokio::time::timeout(GATHER_TIMEOUT, fresh).await.is_err() {
        tracing::debug!("ICE gathering after a restart timed out; sending what was gathered");
    }
}

/// Applies `description` locally, waits for the new candidates (half-trickle) and
/// returns the description to send.
async fn restarted_description(
    peer: &dyn PeerConnection,
    description: RTCSessionDescription,
    gathered: &mut watch::Receiver<bool>,
) -> Result<Jsep, CallError> {
    peer.set_local_description(description)
        .await
        .map_err(webrtc_error)?;
    wait_for_fresh_gathering(gathered).await;
    describe_local(peer).await
}

/// The ICE restart of the publishing connection: a new offer with fresh ICE
/// credentials, sent as a `publish` with `restart`, whose answer Janus returns.
pub(crate) struct PublisherRestart {
    pub(crate) signaling: std::sync::Arc<CallSignaling>,
    pub(crate) peer: std::sync::Arc<dyn PeerConnection>,
    pub(crate) gathered: watch::Receiver<bool>,
}

impl RestartIce for PublisherRestart {
    async fn restart_ice(&mut self) -> Result<(), CallError> {
        let options = RTCOfferOptions { ice_restart: true };
        let offer = self
            .peer
            .create_offer(Some(options))
            .await
            .map_err(webrtc_error)?;
        self.gathered.mark_unchanged();
        let offer = restarted_description(&*self.peer, offer, &mut self.gathered).await?;
        let reply = self
            .signaling
            .request(CallRequest::Publish {
                jsep: offer,
                restart: true,
            })
            .await?;
        let CallReply::Published { jsep, .. } = reply else {
            return Err(CallError::UnexpectedReply("publish"));
        };
        self.peer
            .set_remote_description(remote_description(&jsep)?)
            .await
            .map_err(webrtc_error)?;
        self.signaling
            .request(CallRequest::Trickle {
                target: PeerRole::Publisher,
                candidate: None,
            })
            .await?;
        Ok(())
    }
}

/// The ICE restart of the subscribing connection, which only the task that owns
/// it may run, because Janus's renegotiations go through that task too. It sends
/// that task a request, and the task calls [`restart_subscriber`].
pub(crate) struct SubscriberRestart {
    pub(crate) requests: mpsc::UnboundedSender<()>,
}

impl RestartIce for SubscriberRestart {
    async fn restart_ice(&mut self) -> Result<(), CallError> {
        self.requests
            .send(())
            .map_err(|_| CallError::WebRtc("the subscribing connection is closed".into()))
    }
}

/// Restarts ICE on the subscribing connection: Janus sends an offer with fresh ICE
/// credentials, and the answer goes back with `start`. The streams stay the same.
pub(crate) async fn restart_subscriber(
    signaling: &CallSignaling,
    peer: &dyn PeerConnection,
    gathered: &mut watch::Receiver<bool>,
) -> Result<(), CallError> {
    let reply = signaling.request(CallRequest::RestartSubscriber).await?;
    let CallReply::Subscribed {
        jsep: Some(offer), ..
    } = reply
    else {
        return Err(CallError::UnexpectedReply("restart_subscriber"));
    };
    gathered.mark_unchanged();
    peer.set_remote_description(remote_description(&offer)?)
        .await
        .map_err(webrtc_error)?;
    let answer = peer.create_answer(None).await.map_err(webrtc_error)?;
    let answer = restarted_description(peer, answer, gathered).await?;
    signaling
        .request(CallRequest::Start { jsep: answer })
        .await?;
    signaling
        .request(CallRequest::Trickle {
            target: PeerRole::Subscriber,
            candidate: None,
        })
        .await?;
    Ok(())
}

/// Joins the call again, with new peer connections, each time the WebSocket of
/// the current join closes, until `stop`. A muted session stays muted, and a camera
/// that was off stays off.
pub(super) async fn rejoin_on_close(
    target: JoinTarget,
    connection: Arc<Mutex<Connection>>,
    received: Arc<Mutex<Received>>,
    participants: Arc<Participants>,
    media: Arc<SessionMedia>,
    stop: CancellationToken,
) {
    let room_id = target.room_id;
    loop {
        let current = connection.lock().unwrap().clone();
        tokio::select! {
            () = stop.cancelled() => return,
            () = current.signaling.closed() => {}
        }
        current.stop.cancel();
        current.stop_publishing().await;
        tracing::info!(%room_id, "the call's WebSocket closed, joining again");

        let mut delay = REJOIN_DELAY_MIN;
        let mut attempt = 1u32;
        let joined = loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(delay) => {}
            }
            match CallSession::connect(&target, &received, &participants, &media, &stop).await {
                Ok(joined) => break joined,
                Err(error) => {
                    tracing::warn!(%room_id, attempt, %error, "failed to join the call again");
                    delay = (delay * 2).min(REJOIN_DELAY_MAX);
                    attempt += 1;
                }
            }
        };
        let signaling = joined.signaling.clone();
        *connection.lock().unwrap() = joined;
        tracing::info!(%room_id, attempt, "joined the call again");

        if let Err(error) = media.own.configure_server(&signaling).await {
            tracing::warn!(%room_id, %error, "failed to mute or turn the camera off again after joining again");
        }
    }
}
