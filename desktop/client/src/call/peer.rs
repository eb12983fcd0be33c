//! A joined call: the publishing and the subscribing peer connection, the media
//! sent on the first, and the pictures, levels and statistics of what arrives on
//! the second.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use roomler_media::{AUDIO_FRAME_DURATION, CpalSpeaker, EncodedVideo, Layer, RenderProcessor};
use roomler_shared::call::{
    CallEvent, CallFormat, CallReply, CallRequest, CallRole, CallSignal, IceCandidate, IceServer,
    Jsep, JsepKind, PeerRole, StreamRef, SubscribedStream,
};
use rtc::interceptor::Slot;
use rtc::media::Sample;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::receiver_report::ReceiverReport;
use rtc::rtcp::reception_report::ReceptionReport;
use rtc::rtp::extension::HeaderExtension;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters,
    RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::shared::marshal::{Marshal, MarshalSize};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use webrtc::media_stream::MediaStreamTrack;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCConfigurationBuilder, RTCIceConnectionState, RTCIceGatheringState, RTCIceServer,
    RTCIceTransportPolicy, RTCPeerConnectionIceEvent, RTCSdpType, RTCSessionDescription, Registry,
    SettingEngineBuilder, configure_simulcast_extension_headers, register_default_interceptors,
};

use super::feedback::{self, FeedbackMarker, SentStats, SentVideo};
use super::interop::{DlsrShortener, OutgoingRewriter, RtxExtensions};
use super::layers::{SubstreamRequests, TileLayout};
use super::media::{
    self, EncodedAudio, EncodedStreams, FailureReporter, MediaOutput, MediaSetup, RemoteOutput,
    RtpUnit, SendSwitches, SharedStats, SpeakerChoice, TileLayouts, spawn_audio_decoder,
    spawn_video_decoder, video_frame_duration,
};
use super::own_media::{self, MediaState, OwnMedia};
use super::participants::{CallParticipant, Participants};
use super::playback::{Playback, PlaybackMix, start_playback};
use super::recovery::{self, PublisherRestart, SubscriberRestart};
use super::signaling::{CallSignaling, Notice, SignalingError};
use super::turn_tcp;

/// The position of [`FeedbackMarker`] in the interceptor chain, as a distance from
/// the wire.
const FEEDBACK_SLOT: usize = 12_500;
/// The position of [`RtxExtensions`]: below the NACK responder (4_000), so that
/// the retransmissions it writes pass it on their way to the wire.
const RTX_EXTENSIONS_SLOT: usize = 3_500;
/// The position of [`DlsrShortener`]: below the RTCP reports (10_000), so that
/// the receiver reports they write pass it on their way to the wire.
const DLSR_SLOT: usize = 9_500;

/// How long the gathering of an ICE restart may take before its description is
/// sent as it is.
pub(super) const GATHER_TIMEOUT: Duration = Duration::from_secs(5);
/// How often and how long a remote track's `mid` is looked up.
const MID_LOOKUPS: u32 = 40;
const MID_LOOKUP_INTERVAL: Duration = Duration::from_millis(50);

type Peer = Arc<dyn PeerConnection>;

/// Candidate gathering settings of both peer connections.
#[derive(Debug, Clone)]
pub struct CallOptions {
    /// The local address the ICE sockets bind to.
    pub bind: IpAddr,
    /// Uses TURN relay candidates only.
    pub relay_only: bool,
    /// Frequency of the synthetic tone sent as audio, in Hz; give each participant
    /// its own, so that receivers can tell the streams apart.
    pub tone_hz: f32,
    /// The format of a call that this session's join starts; a meeting when `None`.
    /// A call that is already going on keeps its own.
    pub format: Option<CallFormat>,
}

/// Counts of what one remote participant's streams delivered.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RemoteStats {
    pub user_id: Option<Uuid>,
    pub feed_id: u64,
    pub video_packets_received: u64,
    /// Whole VP8 frames reassembled from the RTP packets.
    pub video_frames_received: u64,
    /// Frames the VP8 decoder turned into pictures.
    pub video_frames_decoded: u64,
    /// Lowest and highest test-pattern frame counter read from decoded pictures.
    pub frame_counter_min: Option<u32>,
    pub frame_counter_max: Option<u32>,
    /// Width and height of the last decoded picture, which tell the simulcast
    /// layer that arrived. `None` before the first picture.
    #[serde(default)]
    pub video_width: Option<u32>,
    #[serde(default)]
    pub video_height: Option<u32>,
    pub audio_packets_received: u64,
    /// 20 ms frames the Opus decoder played out of the jitter buffer.
    pub audio_frames_decoded: u64,
    /// Dominant frequency of the last measured decoded audio, in Hz, when it is a
    /// tone.
    pub tone_hz: Option<f32>,
    /// RTP packets missing from each stream's sequence numbers.
    #[serde(default)]
    pub video_packets_lost: u64,
    #[serde(default)]
    pub audio_packets_lost: u64,
    /// Video packets that arrived late but in time, mostly NACK retransmissions.
    #[serde(default)]
    pub video_packets_recovered: u64,
    /// PLIs this participant sent for the video.
    #[serde(default)]
    pub video_keyframe_requests: u64,
    /// Capture-to-decode delay of a clock pattern's frames, in milliseconds: the
    /// mean and the highest. `None` when the participant sends no clock pattern.
    #[serde(default)]
    pub latency_ms_mean: Option<f64>,
    #[serde(default)]
    pub latency_ms_max: Option<f64>,
}

/// One remote track: its kind and what its decoder thread measured.
struct RemoteTrack {
    kind: RtpCodecKind,
    stats: SharedStats,
}

/// Statistics by remote track id, and the maps from track id to subscriber `mid`
/// (from the offer's `a=msid` lines) and from `mid` to feed.
#[derive(Default)]
pub(super) struct Received {
    by_track: HashMap<String, RemoteTrack>,
    mids: HashMap<String, String>,
    streams: Vec<SubscribedStream>,
}

/// Maps each track id of a session description to its `mid`, from the `a=mid`
/// and the second field of the `a=msid` of each media section.
fn mids_by_track(sdp: &str) -> HashMap<String, String> {
    let mut mids = HashMap::new();
    for section in sdp.split("\nm=").skip(1) {
        let attribute = |name: &str| {
            section
                .lines()
                .find_map(|line| line.trim_end().strip_prefix(name).map(str::to_string))
        };
        let (Some(mid), Some(msid)) = (attribute("a=mid:"), attribute("a=msid:")) else {
            continue;
        };
        if let Some(track_id) = msid.split_whitespace().nth(1) {
            mids.insert(track_id.to_string(), mid);
        }
    }
    mids
}

#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error(transparent)]
    Signaling(#[from] SignalingError),
    #[error("WebRTC failed: {0}")]
    WebRtc(String),
    #[error("the server sent an unexpected reply to {0}")]
    UnexpectedReply(&'static str),
    #[error("the call's media failed: {0}")]
    Media(#[from] media::MediaError),
    #[error("failed to start the bridge to a TURN server over TCP: {0}")]
    TurnBridge(std::io::Error),
    #[error(
        "relay-only ICE needs a TURN server, but the server offers none; ask its admin to \
         set TURN_URL and TURN_SECRET, or call without --relay-only"
    )]
    NoTurnServer,
}

/// Returns whether `servers` include a TURN server, which relay-only ICE needs.
fn offers_turn(servers: &[IceServer]) -> bool {
    servers
        .iter()
        .flat_map(|server| &server.urls)
        .any(|url| url.starts_with("turn:") || url.starts_with("turns:"))
}

pub(super) fn webrtc_error(error: impl std::fmt::Display) -> CallError {
    CallError::WebRtc(error.to_string())
}

/// Gathering and connection state, for one peer connection.
struct Handler {
    gathered: watch::Sender<bool>,
    /// Each local candidate as it is gathered, then `None` when gathering
    /// completes, for trickle ICE.
    candidates: mpsc::UnboundedSender<Option<IceCandidate>>,
    ice_state: watch::Sender<RTCIceConnectionState>,
    tracks: Option<mpsc::UnboundedSender<Arc<dyn TrackRemote>>>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            let _ = self.gathered.send(true);
            let _ = self.candidates.send(None);
        }
    }

    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        match event.candidate.to_json() {
            // Both connections bundle every stream on the transport of the first
            // m-line, so the candidate belongs to m-line 0.
            Ok(init) => {
                let _ = self.candidates.send(Some(IceCandidate {
                    candidate: init.candidate,
                    sdp_mid: None,
                    sdp_m_line_index: Some(0),
                }));
            }
            Err(error) => {
                tracing::debug!(%error, "skipped a local candidate that does not serialize")
            }
        }
    }

    async fn on_ice_connection_state_change(&self, state: RTCIceConnectionState) {
        tracing::debug!(%state, "ICE connection state");
        self.ice_state.send_replace(state);
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        if let Some(tracks) = &self.tracks {
            let _ = tracks.send(track);
        }
    }
}

/// A joined call, which joins again by itself when its WebSocket closes.
pub struct CallSession {
    connection: Arc<Mutex<Connection>>,
    received: Arc<Mutex<Received>>,
    participants: Arc<Participants>,
    media: Arc<SessionMedia>,
    /// Set to the server's reason when it removed this participant from the call.
    removed: watch::Receiver<Option<String>>,
    stop: CancellationToken,
}

/// The media of a session, which outlives each join: the chosen devices, the
/// switches, the tile sizes and the playback.
pub(super) struct SessionMedia {
    setup: Mutex<MediaSetup>,
    switches: Arc<SendSwitches>,
    /// The microphone and camera state that the server shows the others, and the
    /// devices lost during the call; a new join restores it.
    pub(super) own: Arc<OwnMedia>,
    layout: watch::Sender<TileLayout>,
    /// The decoders always queue their audio, so that a speaker can be chosen
    /// later in the call.
    mix: Arc<PlaybackMix>,
    playback: tokio::sync::Mutex<Option<Playback>>,
    removed: watch::Sender<Option<String>>,
    /// The effects of Janus's feedback on the sent video.
    sent: Arc<SentVideo>,
    /// Whether a publishing connection's ICE has connected since the session began.
    published_media: Arc<AtomicBool>,
}

impl SessionMedia {
    fn setup(&self) -> MediaSetup {
        self.setup.lock().unwrap().clone()
    }

    fn sinks(&self) -> RemoteSinks {
        let setup = self.setup.lock().unwrap();
        RemoteSinks {
            output: setup.output.clone(),
            layout: self.layout.subscribe(),
            playback: Some(self.mix.clone()),
        }
    }

    /// Plays the mix through the speaker of `choice`, feeding `render`, the new
    /// microphone's echo canceller. The old speaker closes first, as some devices
    /// play one stream at a time.
    async fn replace_playback(
        &self,
        choice: &SpeakerChoice,
        render: Option<RenderProcessor>,
    ) -> Result<(), CallError> {
        let mut playback = self.playback.lock().await;
        playback.take();
        let reporter = self.own.reporter();
        let generation = reporter.generation();
        *playback = open_playback(choice, &self.mix, render, reporter).await?;
        self.own.playback_started(generation);
        Ok(())
    }
}

/// One join of the call: its WebSocket, its ids and the publishing connection.
/// A new join after the WebSocket closed replaces it.
#[derive(Clone)]
pub(super) struct Connection {
    pub(super) signaling: Arc<CallSignaling>,
    call_id: Uuid,
    feed_id: u64,
    format: CallFormat,
    /// The publishing side while the server lets this participant publish, and
    /// `None` in the audience of a presentation.
    publishing: Arc<tokio::sync::Mutex<Option<Publishing>>>,
    /// Stops the tasks of this join only.
    pub(super) stop: CancellationToken,
}

impl Connection {
    /// Stops publishing: closes the publishing connection and the sources.
    pub(super) async fn stop_publishing(&self) {
        if let Some(publishing) = self.publishing.lock().await.take() {
            publishing.stop.cancel();
            let _ = publishing.peer.close().await;
        }
    }
}

/// The publishing peer connection of one join, and the task that sends its media.
struct Publishing {
    peer: Peer,
    /// Hands new sources to the task that sends this join's media.
    sources: mpsc::UnboundedSender<EncodedStreams>,
    /// Stops the sending task and the publisher's ICE restarts.
    stop: CancellationToken,
}

/// The signaling, settings and media of a join, kept to start publishing later,
/// when a host invites the participant to speak.
#[derive(Clone)]
struct Stage {
    signaling: Arc<CallSignaling>,
    options: CallOptions,
    ice_servers: Vec<IceServer>,
    media: Arc<SessionMedia>,
    publishing: Arc<tokio::sync::Mutex<Option<Publishing>>>,
    /// Stops the tasks of the join.
    stop: CancellationToken,
}

/// The WebSocket URL, token, room and options of a join, kept for joining again.
#[derive(Clone)]
pub(super) struct JoinTarget {
    ws_url: String,
    token: String,
    pub(super) room_id: Uuid,
    options: CallOptions,
}

impl Drop for CallSession {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn codec(kind: RtpCodecKind) -> RTCRtpCodec {
    match kind {
        RtpCodecKind::Audio => RTCRtpCodec {
            mime_type: "audio/opus".into(),
            clock_rate: 48_000,
            channels: 2,
            sdp_fmtp_line: "minptime=10;useinbandfec=1".into(),
            rtcp_feedback: vec![],
        },
        _ => RTCRtpCodec {
            mime_type: "video/VP8".into(),
            clock_rate: 90_000,
            channels: 0,
            sdp_fmtp_line: String::new(),
            rtcp_feedback: vec![],
        },
    }
}

/// Registers Opus and VP8 without RTX for the subscribing connection, so that Janus
/// resends a lost packet on the stream it was lost from. With RTX, the resent
/// packet passes the crate's interceptors under the RTX stream's SSRC and is
/// unwrapped only after them, so the NACK generator never records its arrival and
/// keeps requesting it. In the loss test, fewer packets stayed lost without RTX (1 to 4 of about
/// 380, against 6 and 15 with it).
fn register_subscriber_codecs(media_engine: &mut MediaEngine) -> Result<(), CallError> {
    let video_feedback = [
        ("goog-remb", ""),
        ("ccm", "fir"),
        ("nack", ""),
        ("nack", "pli"),
    ]
    .into_iter()
    .map(|(typ, parameter)| RTCPFeedback {
        typ: typ.into(),
        parameter: parameter.into(),
    })
    .collect();
    for (kind, payload_type, rtcp_feedback) in [
        (RtpCodecKind::Audio, 111, Vec::new()),
        (RtpCodecKind::Video, 96, video_feedback),
    ] {
        let parameters = RTCRtpCodecParameters {
            rtp_codec: RTCRtpCodec {
                rtcp_feedback,
                ..codec(kind)
            },
            payload_type,
        };
        media_engine
            .register_codec(parameters, kind)
            .map_err(webrtc_error)?;
    }
    Ok(())
}

/// A new peer connection with the receivers of its gathering state, its local
/// candidates and its ICE state.
type BuiltPeer = (
    Peer,
    watch::Receiver<bool>,
    LocalCandidates,
    watch::Receiver<RTCIceConnectionState>,
);

/// A peer connection's local candidates as they are gathered, then `None` when
/// gathering completes.
type LocalCandidates = mpsc::UnboundedReceiver<Option<IceCandidate>>;

/// Builds a peer connection. The publishing one, without `tracks`, also offers the
/// `mid` and RTP stream id header extensions, which Janus reads to tell the
/// simulcast layers apart.
async fn build_peer(
    options: &CallOptions,
    ice_servers: &[IceServer],
    tracks: Option<mpsc::UnboundedSender<Arc<dyn TrackRemote>>>,
) -> Result<BuiltPeer, CallError> {
    let mut media_engine = MediaEngine::default();
    if tracks.is_none() {
        media_engine
            .register_default_codecs()
            .map_err(webrtc_error)?;
        configure_simulcast_extension_headers(&mut media_engine).map_err(webrtc_error)?;
    } else {
        register_subscriber_codecs(&mut media_engine)?;
    }
    let mut registry =
        register_default_interceptors(Registry::new(), &mut media_engine).map_err(webrtc_error)?;
    // The publisher acts on Janus's keyframe requests and reports, which the chain
    // would otherwise keep from the application. It sits above the RTCP reports
    // (10_000), so that it gets the packets after them. Its retransmissions carry
    // their layer's ids, without which Janus drops them. The subscriber's
    // shortened receiver reports make Janus keep packets for retransmission on
    // links with a round trip under a millisecond.
    if tracks.is_none() {
        registry = registry
            .with(Slot::from(FEEDBACK_SLOT), FeedbackMarker::default())
            .with(
                Slot::from(RTX_EXTENSIONS_SLOT),
                OutgoingRewriter::new(RtxExtensions::default()),
            );
    } else {
        registry = registry.with(Slot::from(DLSR_SLOT), OutgoingRewriter::new(DlsrShortener));
    }
    let servers = ice_servers
        .iter()
        .map(|server| RTCIceServer {
            urls: server.urls.clone(),
            username: server.username.clone().unwrap_or_default(),
            credential: server.credential.clone().unwrap_or_default(),
        })
        .collect();
    if options.relay_only && !offers_turn(ice_servers) {
        return Err(CallError::NoTurnServer);
    }
    let mut configuration = RTCConfigurationBuilder::new().with_ice_servers(servers);
    if options.relay_only {
        configuration = configuration.with_ice_transport_policy(RTCIceTransportPolicy::Relay);
    }
    // Loopback candidates, because test namespaces use 127/8 addresses on a veth,
    // and no mDNS, whose multicast socket fails where no multicast route exists.
    // An ICE restart binds new sockets, because the old ones may name an address
    // that a network change took away.
    let settings = SettingEngineBuilder::new()
        .with_include_loopback_candidate(true)
        .with_multicast_dns_mode(rtc::ice::mdns::MulticastDnsMode::Disabled)
        .with_ice_timeouts(
            Some(recovery::ICE_DISCONNECTED_TIMEOUT),
            Some(recovery::ICE_FAILED_TIMEOUT),
            Some(recovery::ICE_KEEPALIVE_INTERVAL),
        )
        .with_discard_local_candidates_during_ice_restart(true)
        .build();
    let (gathered, gathered_rx) = watch::channel(false);
    let (candidates, candidates_rx) = mpsc::unbounded_channel();
    let (ice_state, ice_state_rx) = watch::channel(RTCIceConnectionState::New);
    let handler = Arc::new(Handler {
        gathered,
        candidates,
        ice_state,
        tracks,
    });
    let peer = PeerConnectionBuilder::new()
        .with_configuration(configuration.build())
        .with_media_engine(media_engine)
        .with_setting_engine(settings)
        .with_interceptor_registry(registry)
        .with_handler(handler)
        .with_udp_addrs(vec![format!("{}:0", options.bind)])
        .build()
        .await
        .map_err(webrtc_error)?;
    Ok((Arc::new(peer), gathered_rx, candidates_rx, ice_state_rx))
}

impl Stage {
    /// Opens the sources of the session's setup, publishes them on a new peer
    /// connection and starts the task that sends them. A missing device fails
    /// before anything is offered to Janus.
    async fn start_publishing(&self) -> Result<Publishing, CallError> {
        let reporter = self.media.own.reporter();
        let generation = reporter.generation();
        let started = self.publish_sources(reporter).await;
        if started.is_err() {
            self.media.own.abandon(generation);
        }
        started
    }

    /// Moves this participant back to the audience after publishing failed with
    /// `error` in the role of an invited speaker, so that the hosts do not see a
    /// speaker without media. The session reports `error` in its media state.
    async fn step_down(&self, error: CallError) {
        tracing::warn!(%error, "failed to publish as an invited speaker, moving back to the audience");
        self.media.own.publish_failed(error);
        let step_down = CallRequest::MoveToAudience { user_id: None };
        if let Err(error) = self.signaling.request(step_down).await {
            tracing::warn!(%error, "failed to move back to the audience");
        }
    }

    async fn publish_sources(&self, reporter: FailureReporter) -> Result<Publishing, CallError> {
        let signaling = &self.signaling;
        let setup = self.media.setup();
        let generation = reporter.generation();
        let mut encoded =
            media::start_sources(&setup, self.media.switches.clone(), Some(reporter))?;
        self.media.own.sources_started(generation);
        if let Some(render) = encoded.render.take() {
            self.media
                .replace_playback(&setup.speaker, Some(render))
                .await?;
        }

        let (publisher, gathered, candidates, publisher_ice) =
            build_peer(&self.options, &self.ice_servers, None).await?;
        // A failed publish closes the publishing connection, so that failed
        // attempts to join again leave none open.
        let mut close_on_error = ClosePeerOnDrop(Some(publisher.clone()));
        let (audio, audio_ssrcs) = add_track(&publisher, RtpCodecKind::Audio, &[]).await?;
        let rids = Layer::ALL.map(Layer::rid);
        let (video, video_ssrcs) = add_track(&publisher, RtpCodecKind::Video, &rids).await?;
        let offer = publisher.create_offer(None).await.map_err(webrtc_error)?;
        let offer = local_description(&publisher, offer).await?;
        let CallReply::Published { jsep, .. } = signaling
            .request(CallRequest::Publish {
                jsep: offer,
                restart: false,
            })
            .await?
        else {
            return Err(CallError::UnexpectedReply("publish"));
        };
        publisher
            .set_remote_description(remote_description(&jsep)?)
            .await
            .map_err(webrtc_error)?;

        let stop = self.stop.child_token();
        // A failed publish stops the tasks it already started.
        let stop_on_error = stop.clone().drop_guard();
        tokio::spawn(trickle_candidates(
            signaling.clone(),
            PeerRole::Publisher,
            candidates,
            stop.clone(),
        ));
        tokio::spawn(recovery::mark_connected(
            publisher_ice.clone(),
            self.media.published_media.clone(),
            stop.clone(),
        ));
        tokio::spawn(recovery::keep_connected(
            PeerRole::Publisher,
            publisher_ice,
            PublisherRestart {
                signaling: signaling.clone(),
                peer: publisher.clone(),
                gathered,
            },
            stop.clone(),
        ));
        let audio_type = payload_type(&publisher, audio_ssrcs[0], RtpCodecKind::Audio).await?;
        let video_type = payload_type(&publisher, video_ssrcs[0], RtpCodecKind::Video).await?;
        let video_mid = sender_mid(&publisher, video_ssrcs[0]).await?;
        tokio::spawn(feedback::watch_feedback(
            video.clone() as Arc<dyn TrackLocal>,
            video_ssrcs.clone(),
            self.media.switches.clone(),
            self.media.sent.clone(),
            stop.clone(),
        ));
        let (sources, sources_rx) = mpsc::unbounded_channel();
        tokio::spawn(send_media(
            Outgoing {
                track: audio,
                ssrc: audio_ssrcs[0],
                payload_type: audio_type,
            },
            SimulcastOutgoing {
                track: video,
                ssrcs: video_ssrcs,
                payload_type: video_type,
                mid: Bytes::from(video_mid),
            },
            encoded,
            sources_rx,
            stop.clone(),
        ));
        stop_on_error.disarm();
        close_on_error.0 = None;
        Ok(Publishing {
            peer: publisher,
            sources,
            stop,
        })
    }
}

/// Publishes while the session's role lets it and stops when it no longer does:
/// a host's invitation to speak starts the camera and microphone, and a move back
/// to the audience closes them. When publishing fails after an invitation, the
/// session moves itself back to the audience. Runs until the join's `stop`.
async fn follow_role(stage: Stage, mut role: watch::Receiver<CallRole>) {
    loop {
        tokio::select! {
            () = stage.stop.cancelled() => return,
            changed = role.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
        let may_publish = role.borrow_and_update().may_publish();
        let mut publishing = stage.publishing.lock().await;
        if may_publish && publishing.is_none() {
            tracing::info!("invited to speak, publishing");
            match stage.start_publishing().await {
                Ok(started) => {
                    *publishing = Some(started);
                    stage.media.own.clear_publish_failure();
                    if let Err(error) = stage.media.own.configure_server(&stage.signaling).await {
                        tracing::warn!(%error, "failed to send the microphone and camera state");
                    }
                }
                Err(error) => stage.step_down(error).await,
            }
        } else if !may_publish && let Some(stopped) = publishing.take() {
            tracing::info!("moved to the audience, no longer publishing");
            stopped.stop.cancel();
            let _ = stopped.peer.close().await;
        }
    }
}

/// Closes its peer connection when dropped, unless it was emptied first.
struct ClosePeerOnDrop(Option<Peer>);

impl Drop for ClosePeerOnDrop {
    fn drop(&mut self) {
        if let Some(peer) = self.0.take() {
            tokio::spawn(async move {
                let _ = peer.close().await;
            });
        }
    }
}

/// Sets the local description and returns it, with the candidates gathered so
/// far. The others follow by trickle ICE.
async fn local_description(
    peer: &Peer,
    description: RTCSessionDescription,
) -> Result<Jsep, CallError> {
    peer.set_local_description(description)
        .await
        .map_err(webrtc_error)?;
    let local = describe_local(&**peer).await?;
    let candidates = local.sdp.matches("a=candidate:").count();
    tracing::debug!(candidates, "sending the local description");
    Ok(local)
}

/// Sends the local candidates of a connection to Janus as they are gathered
/// (trickle ICE), and `completed` when gathering completes, then ends. Runs after
/// the description was sent, so that Janus has the transport the candidates
/// belong to. An ICE restart sends its candidates in its description instead.
async fn trickle_candidates(
    signaling: Arc<CallSignaling>,
    target: PeerRole,
    mut candidates: LocalCandidates,
    stop: CancellationToken,
) {
    loop {
        let candidate = tokio::select! {
            () = stop.cancelled() => return,
            candidate = candidates.recv() => candidate,
        };
        let Some(candidate) = candidate else {
            return;
        };
        let completed = candidate.is_none();
        tracing::debug!(?target, ?candidate, "trickling a local candidate");
        let request = CallRequest::Trickle { target, candidate };
        if let Err(error) = signaling.request(request).await {
            tracing::warn!(%error, ?target, "failed to send a local ICE candidate");
        }
        if completed {
            return;
        }
    }
}

/// Returns the local description in effect, with the candidates gathered so far.
pub(super) async fn describe_local(peer: &dyn PeerConnection) -> Result<Jsep, CallError> {
    let local = peer
        .local_description()
        .await
        .ok_or_else(|| CallError::WebRtc("no local description after gathering".into()))?;
    let kind = if local.sdp_type == RTCSdpType::Offer {
        JsepKind::Offer
    } else {
        JsepKind::Answer
    };
    Ok(Jsep {
        kind,
        sdp: local.sdp,
    })
}

pub(super) fn remote_description(jsep: &Jsep) -> Result<RTCSessionDescription, CallError> {
    match jsep.kind {
        JsepKind::Offer => RTCSessionDescription::offer(jsep.sdp.clone()),
        JsepKind::Answer => RTCSessionDescription::answer(jsep.sdp.clone()),
    }
    .map_err(webrtc_error)
}

/// Adds a local track with one encoding per RID in `rids`, each on an SSRC of its
/// own, or with a single encoding when `rids` is empty. Returns the track and the
/// SSRCs in the order of `rids`.
async fn add_track(
    peer: &Peer,
    kind: RtpCodecKind,
    rids: &[&str],
) -> Result<(Arc<TrackLocalStaticSample>, Vec<u32>), CallError> {
    let rids: Vec<&str> = if rids.is_empty() {
        vec![""]
    } else {
        rids.to_vec()
    };
    let ssrcs: Vec<u32> = rids.iter().map(|_| rand::random::<u32>()).collect();
    let encodings = rids
        .iter()
        .zip(&ssrcs)
        .map(|(rid, ssrc)| RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                rid: rid.to_string(),
                ssrc: Some(*ssrc),
                ..Default::default()
            },
            codec: codec(kind),
            ..Default::default()
        })
        .collect();
    // Unique ids keep the publisher's logs readable. Subscribers never see them,
    // because Janus 1.1 names each subscribed track `janus<mid>` itself.
    let track = MediaStreamTrack::new(
        format!("roomler-{}", ssrcs[0]),
        format!("roomler-{kind}-{}", ssrcs[0]),
        format!("roomler-{kind}"),
        kind,
        encodings,
    );
    let track = Arc::new(TrackLocalStaticSample::new(Instant::now(), track).map_err(webrtc_error)?);
    peer.add_track(track.clone() as Arc<dyn TrackLocal>)
        .await
        .map_err(webrtc_error)?;
    Ok((track, ssrcs))
}

/// Returns the `mid` of the transceiver that sends `ssrc`, once the description
/// negotiated it.
async fn sender_mid(peer: &Peer, ssrc: u32) -> Result<String, CallError> {
    for transceiver in peer.get_transceivers().await {
        let Ok(Some(sender)) = transceiver.sender().await else {
            continue;
        };
        let parameters = sender.get_parameters().await.map_err(webrtc_error)?;
        let sends_ssrc = parameters
            .encodings
            .iter()
            .any(|encoding| encoding.rtp_coding_parameters.ssrc == Some(ssrc));
        if sends_ssrc && let Ok(Some(mid)) = transceiver.mid().await {
            return Ok(mid);
        }
    }
    Err(CallError::WebRtc(format!(
        "Janus's SDP answer negotiated no mid for the SSRC {ssrc}"
    )))
}

/// Returns the payload type that Janus's SDP answer negotiated for the sender of
/// `ssrc`. The crate lists senders in no fixed order, because its transceivers live
/// in a hash map, so each sender is found by its SSRC and each codec by its MIME
/// type. A packet with another sender's payload type is dropped as not negotiated.
async fn payload_type(peer: &Peer, ssrc: u32, kind: RtpCodecKind) -> Result<u8, CallError> {
    let mime_type = codec(kind).mime_type;
    for sender in peer.get_senders().await {
        let parameters = sender.get_parameters().await.map_err(webrtc_error)?;
        let sends_ssrc = parameters
            .encodings
            .iter()
            .any(|encoding| encoding.rtp_coding_parameters.ssrc == Some(ssrc));
        if !sends_ssrc {
            continue;
        }
        return parameters
            .rtp_parameters
            .codecs
            .iter()
            .find(|codec| codec.rtp_codec.mime_type.eq_ignore_ascii_case(&mime_type))
            .map(|codec| codec.payload_type)
            .ok_or_else(|| {
                CallError::WebRtc(format!(
                    "Janus's SDP answer rejected {mime_type} for SSRC {ssrc}"
                ))
            });
    }
    Err(CallError::WebRtc(format!(
        "no sender sends the {kind} SSRC {ssrc}"
    )))
}

impl CallSession {
    /// Joins the call of `room_id`, publishes the synthetic media and subscribes to
    /// every other participant that publishes, now and later. When the WebSocket
    /// closes later, the session joins again with new peer connections.
    pub async fn join(
        ws_url: &str,
        token: &str,
        room_id: Uuid,
        options: CallOptions,
    ) -> Result<Self, CallError> {
        let setup = MediaSetup::synthetic(options.tone_hz);
        Self::join_with(ws_url, token, room_id, options, setup).await
    }

    /// Joins like [`CallSession::join`], sending the sources of `setup` and handing
    /// pictures and audio levels to its output.
    pub async fn join_with(
        ws_url: &str,
        token: &str,
        room_id: Uuid,
        options: CallOptions,
        setup: MediaSetup,
    ) -> Result<Self, CallError> {
        let speaker = setup.speaker.clone();
        let (removed_tx, removed) = watch::channel(None);
        let switches = Arc::new(SendSwitches::default());
        let (own, failures) = OwnMedia::new(switches.clone());
        let media = Arc::new(SessionMedia {
            setup: Mutex::new(setup),
            switches,
            own: Arc::new(own),
            layout: watch::channel(TileLayout::default()).0,
            mix: Arc::new(PlaybackMix::default()),
            playback: tokio::sync::Mutex::new(None),
            removed: removed_tx,
            sent: Arc::new(SentVideo::default()),
            published_media: Arc::new(AtomicBool::new(false)),
        });
        // The speaker opens before the server counts the user in, so a missing one
        // fails the join early.
        media.replace_playback(&speaker, None).await?;
        let target = JoinTarget {
            ws_url: ws_url.to_string(),
            token: token.to_string(),
            room_id,
            options,
        };
        let received = Arc::new(Mutex::new(Received::default()));
        let participants = Arc::new(Participants::new(0, CallRole::default(), &[]));
        let stop = CancellationToken::new();
        let connection = Self::connect(&target, &received, &participants, &media, &stop).await?;
        let session = CallSession {
            connection: Arc::new(Mutex::new(connection)),
            received,
            participants,
            media,
            removed,
            stop,
        };
        tokio::spawn(own_media::follow_failures(
            session.media.own.clone(),
            session.connection.clone(),
            failures,
            session.stop.clone(),
        ));
        tokio::spawn(recovery::rejoin_on_close(
            target,
            session.connection.clone(),
            session.received.clone(),
            session.participants.clone(),
            session.media.clone(),
            session.stop.clone(),
        ));
        Ok(session)
    }

    /// Joins once: opens the WebSocket, publishes when the server lets this
    /// participant publish, and starts the subscribing task. Its tasks stop with
    /// `session_stop` or with the returned connection's `stop`.
    pub(super) async fn connect(
        target: &JoinTarget,
        received: &Arc<Mutex<Received>>,
        participants: &Arc<Participants>,
        session_media: &Arc<SessionMedia>,
        session_stop: &CancellationToken,
    ) -> Result<Connection, CallError> {
        let (signaling, notices) =
            CallSignaling::connect(&target.ws_url, &target.token, target.room_id).await?;
        let signaling = Arc::new(signaling);
        let options = target.options.clone();
        let join = CallRequest::Join {
            format: options.format,
        };
        let CallReply::Joined {
            call_id,
            feed_id,
            participants: participants_list,
            ice_servers,
            format,
            role,
        } = signaling.request(join).await?
        else {
            return Err(CallError::UnexpectedReply("join"));
        };

        let stop = session_stop.child_token();
        // A failed join stops the tasks it already started, and dropping its
        // WebSocket takes it out of the call on the server.
        let stop_on_error = stop.clone().drop_guard();
        let ice_servers = turn_tcp::bridge_tcp_servers(ice_servers, options.bind, &stop)
            .await
            .map_err(CallError::TurnBridge)?;
        let stage = Stage {
            signaling: signaling.clone(),
            options: options.clone(),
            ice_servers: ice_servers.clone(),
            media: session_media.clone(),
            publishing: Arc::new(tokio::sync::Mutex::new(None)),
            stop: stop.clone(),
        };
        // The audience of a presentation opens no camera or microphone at all. A
        // speaker whom the presentation remembers from an earlier join, whose
        // devices fail now, goes back to the audience instead of failing the join.
        if role.may_publish() {
            match stage.start_publishing().await {
                Ok(publishing) => *stage.publishing.lock().await = Some(publishing),
                Err(error) if format == CallFormat::Presentation && role == CallRole::Speaker => {
                    stage.step_down(error).await;
                }
                Err(error) => return Err(error),
            }
        }

        // Statistics start again with each join, because the subscriber's mids and
        // track ids start again with its new peer connection.
        *received.lock().unwrap() = Received::default();
        participants.reset(feed_id, role, &participants_list);
        tokio::spawn(follow_role(stage.clone(), participants.watch_own_role()));
        let live: Vec<u64> = participants_list
            .iter()
            .filter(|participant| !participant.streams.is_empty())
            .map(|participant| participant.feed_id)
            .collect();
        let (restart_requests, restarts) = mpsc::unbounded_channel();
        let subscriber = Subscriber {
            signaling: signaling.clone(),
            options,
            ice_servers,
            peer: None,
            feeds: HashSet::new(),
            received: received.clone(),
            participants: participants.clone(),
            restart_requests,
            restarts,
            stop: stop.clone(),
            session_stop: session_stop.clone(),
            own_feed: feed_id,
            sinks: session_media.sinks(),
            layout: session_media.layout.subscribe(),
            substreams: SubstreamRequests::default(),
            removed: session_media.removed.clone(),
        };
        if session_media.setup().subscribe {
            tokio::spawn(subscriber.run(live, notices));
        } else {
            // A send-only participant reads the notices only so that they do not
            // pile up, to follow its own role, and to hear when the server removes
            // it.
            tokio::spawn(drain_notices(
                notices,
                participants.clone(),
                session_media.removed.clone(),
                session_stop.clone(),
                stop.clone(),
            ));
        }
        stop_on_error.disarm();
        Ok(Connection {
            signaling,
            call_id,
            feed_id,
            format,
            publishing: stage.publishing,
            stop,
        })
    }

    /// Returns the id of the call, as the last join reported it.
    pub fn call_id(&self) -> Uuid {
        self.connection.lock().unwrap().call_id
    }

    /// Returns this participant's Janus publisher id, which changes with each join.
    pub fn feed_id(&self) -> u64 {
        self.connection.lock().unwrap().feed_id
    }

    fn signaling(&self) -> Arc<CallSignaling> {
        self.connection.lock().unwrap().signaling.clone()
    }

    /// Returns the other participants of the call, as the call events last
    /// described them.
    pub fn participants(&self) -> Vec<CallParticipant> {
        self.participants.snapshot()
    }

    /// Returns a receiver of the participant list that is notified on every change,
    /// for a call view that redraws its tiles. Drop each `Ref` that `borrow` or
    /// `wait_for` returns at once, because while one lives the session cannot apply
    /// call events, so it neither subscribes nor renegotiates.
    pub fn watch_participants(&self) -> watch::Receiver<Vec<CallParticipant>> {
        self.participants.subscribe()
    }

    /// Mutes or unmutes the microphone: nothing is sent while it is muted, and the
    /// server stops relaying the stream and notifies the others. Unmuting a
    /// microphone lost during the call fails with its error; a switch to another
    /// one comes first.
    pub async fn set_muted(&self, muted: bool) -> Result<(), CallError> {
        self.media.own.set_user_muted(muted)?;
        self.media.own.configure_server(&self.signaling()).await
    }

    /// Turns the camera off or on: nothing is sent while it is off, and the server
    /// notifies the others. Turning on a camera lost during the call fails with its
    /// error; a switch to another one comes first.
    pub async fn set_camera_off(&self, off: bool) -> Result<(), CallError> {
        self.media.own.set_user_camera_off(off)?;
        self.media.own.configure_server(&self.signaling()).await
    }

    /// Returns the microphone and camera state that the others see, and the devices
    /// lost during the call.
    pub fn media_state(&self) -> MediaState {
        self.media.own.snapshot()
    }

    /// Returns a receiver of [`CallSession::media_state`], notified on every change:
    /// a switch, a lost device, a failed publish after an invitation to speak.
    /// Drop each `Ref` that `borrow` returns at once, because while one lives the
    /// session cannot record changes.
    pub fn watch_media(&self) -> watch::Receiver<MediaState> {
        self.media.own.subscribe()
    }

    /// Switches to the camera, microphone and speaker of `setup` without leaving
    /// the call: the new devices open first, so a failure keeps the old camera and
    /// microphone. A later join uses them too. Working devices replace lost ones,
    /// and the camera and microphone come back as the user had them before the
    /// loss. In the audience only the speaker changes now, and the camera and
    /// microphone open once a host invites this participant to speak.
    pub async fn switch_media(&self, setup: &MediaSetup) -> Result<(), CallError> {
        let publishing = self.connection.lock().unwrap().publishing.clone();
        let publishing = publishing.lock().await;
        let Some(current) = publishing.as_ref() else {
            self.media.replace_playback(&setup.speaker, None).await?;
            *self.media.setup.lock().unwrap() = setup.clone();
            self.media.own.clear_publish_failure();
            return Ok(());
        };
        let reporter = self.media.own.reporter();
        let generation = reporter.generation();
        let switched = self.switch_sources(setup, current, reporter).await;
        if switched.is_err() {
            self.media.own.abandon(generation);
            return switched;
        }
        self.media.own.sources_started(generation);
        self.media.own.clear_publish_failure();
        self.media.own.configure_server(&self.signaling()).await
    }

    /// Opens the sources and speaker of `setup` and hands the sources to the task
    /// that sends `current`'s media.
    async fn switch_sources(
        &self,
        setup: &MediaSetup,
        current: &Publishing,
        reporter: FailureReporter,
    ) -> Result<(), CallError> {
        let mut encoded = media::start_sources(setup, self.media.switches.clone(), Some(reporter))?;
        self.media
            .replace_playback(&setup.speaker, encoded.render.take())
            .await?;
        *self.media.setup.lock().unwrap() = setup.clone();
        current
            .sources
            .send(encoded)
            .map_err(|_| CallError::WebRtc("the call has ended".into()))?;
        Ok(())
    }

    /// Returns the call's format, as the last join reported it.
    pub fn format(&self) -> CallFormat {
        self.connection.lock().unwrap().format
    }

    /// Returns this participant's role: in the audience of a presentation it
    /// receives only, and it publishes in every other role.
    pub fn role(&self) -> CallRole {
        self.participants.own_role()
    }

    /// Returns a receiver of this participant's role, notified when a host invites
    /// it to speak or moves it back to the audience.
    pub fn watch_role(&self) -> watch::Receiver<CallRole> {
        self.participants.watch_own_role()
    }

    /// Raises this participant's hand, in the audience of a presentation.
    pub async fn raise_hand(&self) -> Result<(), CallError> {
        self.signaling().request(CallRequest::RaiseHand).await?;
        Ok(())
    }

    /// Lowers this participant's hand, or as a host the hand of `user_id`.
    pub async fn lower_hand(&self, user_id: Option<Uuid>) -> Result<(), CallError> {
        self.signaling()
            .request(CallRequest::LowerHand { user_id })
            .await?;
        Ok(())
    }

    /// As a host, lets the audience member `user_id` publish. Their session starts
    /// publishing when the server's `role_changed` event reaches it.
    pub async fn invite_to_speak(&self, user_id: Uuid) -> Result<(), CallError> {
        self.signaling()
            .request(CallRequest::InviteToSpeak { user_id })
            .await?;
        Ok(())
    }

    /// Moves the speaker `user_id` back to the audience: as a host anyone who was
    /// invited, or this participant itself. The server stops their publishing.
    pub async fn move_to_audience(&self, user_id: Uuid) -> Result<(), CallError> {
        self.signaling()
            .request(CallRequest::MoveToAudience {
                user_id: Some(user_id),
            })
            .await?;
        Ok(())
    }

    /// Returns a receiver that contains the server's reason once it removed this
    /// participant from the call, e.g. because a moderator banned them from the
    /// room. The media has stopped by then.
    pub fn removed(&self) -> watch::Receiver<Option<String>> {
        self.removed.clone()
    }

    /// Decodes the video of these feeds only, at the full-size layer, or of every
    /// feed with `None`. The others are hidden, like in [`TileLayout::shown`].
    pub fn set_visible(&self, feeds: Option<HashSet<u64>>) {
        self.set_tile_layout(TileLayout::visible(feeds));
    }

    /// Sets the tile size of every remote feed: a large tile receives the
    /// full-size simulcast layer, a medium one the half size, a small one the
    /// lowest, and a hidden one the lowest without decoding it. A feed shown again
    /// starts at its next keyframe, and Janus switches layers at the next keyframe
    /// of the new one.
    pub fn set_tile_layout(&self, layout: TileLayout) {
        self.media.layout.send_replace(layout);
    }

    /// Returns the statistics of every remote participant since the last join, by
    /// feed.
    pub fn stats(&self) -> Vec<RemoteStats> {
        let received = self.received.lock().unwrap();
        let mut by_feed: HashMap<u64, RemoteStats> = HashMap::new();
        for (track_id, track) in &received.by_track {
            let Some(mid) = received.mids.get(track_id) else {
                continue;
            };
            let Some(stream) = received.streams.iter().find(|stream| &stream.mid == mid) else {
                continue;
            };
            let entry = by_feed
                .entry(stream.feed_id)
                .or_insert_with(|| RemoteStats {
                    user_id: stream.user_id,
                    feed_id: stream.feed_id,
                    ..RemoteStats::default()
                });
            let stats = track.stats.lock().unwrap().clone();
            if track.kind == RtpCodecKind::Audio {
                entry.audio_packets_lost += stats.packets_lost;
                entry.audio_packets_received += stats.packets;
                entry.audio_frames_decoded += stats.frames_decoded;
                entry.tone_hz = entry.tone_hz.or(stats.tone_hz);
                continue;
            }
            entry.video_packets_received += stats.packets;
            entry.video_packets_lost += stats.packets_lost;
            entry.video_packets_recovered += stats.packets_recovered;
            entry.video_keyframe_requests += stats.keyframe_requests;
            if stats.latency_frames > 0 {
                entry.latency_ms_mean = Some(stats.latency_ms_sum / stats.latency_frames as f64);
                entry.latency_ms_max = Some(
                    entry
                        .latency_ms_max
                        .unwrap_or(0.0)
                        .max(stats.latency_ms_max),
                );
            }
            entry.video_frames_received += stats.frames_received;
            entry.video_frames_decoded += stats.frames_decoded;
            entry.frame_counter_min = min_option(entry.frame_counter_min, stats.frame_counter_min);
            entry.frame_counter_max = entry.frame_counter_max.max(stats.frame_counter_max);
            if stats.width.is_some() {
                entry.video_width = stats.width;
                entry.video_height = stats.height;
            }
        }
        let mut list: Vec<RemoteStats> = by_feed.into_values().collect();
        list.sort_by_key(|stats| stats.feed_id);
        list
    }

    /// Returns whether this participant's media reached the media server: whether
    /// a publishing connection's ICE has connected since the session began. It
    /// stays false in the audience, which publishes nothing.
    pub fn media_published(&self) -> bool {
        self.media.published_media.load(Ordering::Relaxed)
    }

    /// Returns what Janus's feedback on the sent video did: keyframe requests, the
    /// reported loss, and the bitrate and simulcast layers it led to.
    pub fn sent_stats(&self) -> SentStats {
        let mut stats = self.media.sent.snapshot();
        stats.video_layers = self
            .media
            .switches
            .sent_layers()
            .iter()
            .map(|layer| layer.rid().to_string())
            .collect();
        stats
    }

    /// Leaves the call and closes both peer connections.
    pub async fn leave(self) -> Result<(), CallError> {
        self.stop.cancel();
        let connection = self.connection.lock().unwrap().clone();
        let result = connection.signaling.request(CallRequest::Leave).await;
        connection.stop_publishing().await;
        result.map(|_| ()).map_err(CallError::from)
    }
}

fn min_option(left: Option<u32>, right: Option<u32>) -> Option<u32> {
    match (left, right) {
        (Some(left), Some(right)) => Some(left.min(right)),
        (left, right) => left.or(right),
    }
}

async fn drain_notices(
    mut notices: mpsc::UnboundedReceiver<Notice>,
    participants: Arc<Participants>,
    removed: watch::Sender<Option<String>>,
    session_stop: CancellationToken,
    stop: CancellationToken,
) {
    loop {
        let notice = tokio::select! {
            () = stop.cancelled() => return,
            notice = notices.recv() => notice,
        };
        match notice {
            None => return,
            Some(Notice::Event(event)) => participants.apply(&event),
            Some(Notice::Signal(CallSignal::Removed { reason })) => {
                end_call(&removed, &session_stop, reason);
            }
            Some(_) => {}
        }
    }
}

/// Stops the session after the server removed this participant from the call, so
/// that it neither sends nor joins again.
fn end_call(removed: &watch::Sender<Option<String>>, stop: &CancellationToken, reason: String) {
    tracing::info!(%reason, "the server removed this participant from the call");
    let _ = removed.send(Some(reason));
    stop.cancel();
}

/// Opens the speaker of `choice` and starts playing `mix` through it. A speaker
/// that stops later goes to `failures`.
async fn open_playback(
    choice: &SpeakerChoice,
    mix: &Arc<PlaybackMix>,
    render: Option<RenderProcessor>,
    failures: FailureReporter,
) -> Result<Option<Playback>, CallError> {
    let SpeakerChoice::Device { name } = choice else {
        return Ok(None);
    };
    let name = name.clone();
    let speaker = tokio::task::spawn_blocking(move || CpalSpeaker::open(name.as_deref()))
        .await
        .map_err(|error| CallError::WebRtc(error.to_string()))?
        .map_err(media::MediaError::from)?;
    Ok(Some(start_playback(
        mix.clone(),
        Box::new(speaker),
        render,
        Some(failures),
    )?))
}

/// A local track with the SSRC and payload type it sends with.
struct Outgoing {
    track: Arc<TrackLocalStaticSample>,
    ssrc: u32,
    payload_type: u8,
}

impl Outgoing {
    async fn write(&self, sample: Sample) {
        let writer = self.track.sample_writer(self.ssrc, self.payload_type);
        if let Err(error) = writer.write_sample(&sample).await {
            tracing::debug!(%error, ssrc = self.ssrc, "failed to send a media sample");
        }
    }
}

/// The video track, which sends each simulcast layer on an SSRC of its own.
struct SimulcastOutgoing {
    track: Arc<TrackLocalStaticSample>,
    /// The SSRC of each layer, in [`Layer::ALL`] order.
    ssrcs: Vec<u32>,
    payload_type: u8,
    /// The transceiver's `mid`, for the header extension.
    mid: Bytes,
}

impl SimulcastOutgoing {
    /// Sends one layer's frame with the `mid` and RTP stream id header extensions.
    /// Janus learns each layer's SSRC from them, because the SDP of rid-based
    /// simulcast lists no SSRCs.
    async fn write(&self, layer: Layer, sample: Sample) {
        let Some(index) = Layer::ALL.iter().position(|known| *known == layer) else {
            return;
        };
        let ssrc = self.ssrcs[index];
        let writer = self
            .track
            .sample_writer(ssrc, self.payload_type)
            .with_extension(sdes_extension(
                rtc::sdp::extmap::SDES_MID_URI,
                self.mid.clone(),
            ))
            .with_extension(sdes_extension(
                rtc::sdp::extmap::SDES_RTP_STREAM_ID_URI,
                Bytes::from_static(layer.rid().as_bytes()),
            ));
        if let Err(error) = writer.write_sample(&sample).await {
            tracing::debug!(%error, ssrc, rid = layer.rid(), "failed to send a video sample");
        }
    }
}

/// The value of an RTP header extension that carries one SDES item as text, such
/// as the `mid` or the RTP stream id (RFC 8843 and RFC 8852).
struct SdesItem(Bytes);

impl MarshalSize for SdesItem {
    fn marshal_size(&self) -> usize {
        self.0.len()
    }
}

impl Marshal for SdesItem {
    fn marshal_to(&self, buf: &mut [u8]) -> rtc::shared::error::Result<usize> {
        let length = self.0.len();
        let target = buf
            .get_mut(..length)
            .ok_or(rtc::shared::error::Error::ErrBufferTooSmall)?;
        target.copy_from_slice(&self.0);
        Ok(length)
    }
}

fn sdes_extension(uri: &'static str, value: Bytes) -> HeaderExtension {
    HeaderExtension::Custom {
        uri: uri.into(),
        extension: Box::new(SdesItem(value)),
    }
}

/// Writes the encoded media to the publisher's tracks until `stop`. A source that
/// stops, e.g. a lost device, ends only its own stream, until a replacement
/// brings new sources.
async fn send_media(
    audio: Outgoing,
    video: SimulcastOutgoing,
    mut encoded: EncodedStreams,
    mut replacements: mpsc::UnboundedReceiver<EncodedStreams>,
    stop: CancellationToken,
) {
    // Each layer's RTP timestamps advance on their own.
    let mut previous_video: HashMap<Layer, Duration> = HashMap::new();
    let (mut audio_open, mut video_open) = (true, true);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            replacement = replacements.recv() => {
                // Dropping the old streams stops their threads and devices.
                let Some(replacement) = replacement else { return };
                encoded = replacement;
                (audio_open, video_open) = (true, true);
            }
            frame = encoded.audio.recv(), if audio_open => {
                let Some(EncodedAudio { data, skipped }) = frame else {
                    audio_open = false;
                    continue;
                };
                // NOTE: the crate skips one sequence number per frame that DTX
                // suppressed, so receivers count those frames as lost.
                let sample = Sample {
                    data,
                    duration: AUDIO_FRAME_DURATION,
                    prev_dropped_packets: skipped,
                    ..Sample::new(Instant::now())
                };
                audio.write(sample).await;
            }
            frame = encoded.video.recv(), if video_open => {
                let Some(EncodedVideo { data, timestamp, layer, .. }) = frame else {
                    video_open = false;
                    continue;
                };
                let previous = previous_video.insert(layer, timestamp);
                let sample = Sample {
                    data,
                    duration: video_frame_duration(previous, timestamp),
                    ..Sample::new(Instant::now())
                };
                video.write(layer, sample).await;
            }
        }
    }
}

struct Subscriber {
    signaling: Arc<CallSignaling>,
    options: CallOptions,
    ice_servers: Vec<IceServer>,
    peer: Option<(Peer, watch::Receiver<bool>)>,
    feeds: HashSet<u64>,
    received: Arc<Mutex<Received>>,
    participants: Arc<Participants>,
    /// ICE restarts that the subscribing connection's [`recovery::keep_connected`]
    /// requests, run by this task between Janus's renegotiations.
    restart_requests: mpsc::UnboundedSender<()>,
    restarts: mpsc::UnboundedReceiver<()>,
    stop: CancellationToken,
    /// Stops the whole session, e.g. after the server removed this participant.
    session_stop: CancellationToken,
    own_feed: u64,
    sinks: RemoteSinks,
    /// The tile sizes, which choose the simulcast layer of each subscribed feed.
    layout: TileLayouts,
    substreams: SubstreamRequests,
    removed: watch::Sender<Option<String>>,
}

/// The destinations of the decoder threads of remote tracks: pictures and levels,
/// and the played audio.
#[derive(Clone)]
struct RemoteSinks {
    output: Option<Arc<dyn MediaOutput>>,
    layout: TileLayouts,
    playback: Option<Arc<PlaybackMix>>,
}

impl Subscriber {
    async fn run(mut self, live: Vec<u64>, mut notices: mpsc::UnboundedReceiver<Notice>) {
        if !live.is_empty()
            && let Err(error) = self.subscribe(live).await
        {
            tracing::warn!(%error, "failed to subscribe to the call's participants");
        }
        self.request_substreams().await;
        loop {
            let notice = tokio::select! {
                () = self.stop.cancelled() => break,
                Some(()) = self.restarts.recv() => {
                    self.restart_ice().await;
                    continue;
                }
                Ok(()) = self.layout.changed() => {
                    self.request_substreams().await;
                    continue;
                }
                notice = notices.recv() => notice,
            };
            let Some(notice) = notice else { break };
            tracing::debug!(?notice, own_feed = self.own_feed, "call notice");
            if let Notice::Event(event) = &notice {
                self.participants.apply(event);
            }
            let result = match notice {
                Notice::Event(CallEvent::Published { feed_id, .. })
                    if feed_id != self.own_feed && !self.feeds.contains(&feed_id) =>
                {
                    self.subscribe(vec![feed_id]).await
                }
                Notice::Event(CallEvent::ParticipantLeft { feed_id, .. }) => {
                    self.feeds.remove(&feed_id);
                    Ok(())
                }
                // Janus drops the streams of a participant moved to the audience
                // from this subscription, so a later `published` subscribes anew.
                Notice::Event(CallEvent::RoleChanged { feed_id, role, .. })
                    if !role.may_publish() =>
                {
                    self.feeds.remove(&feed_id);
                    Ok(())
                }
                Notice::Signal(CallSignal::SubscriberOffer { jsep, streams }) => {
                    self.answer(jsep, streams).await
                }
                Notice::Signal(CallSignal::Removed { reason }) => {
                    end_call(&self.removed, &self.session_stop, reason);
                    Ok(())
                }
                _ => Ok(()),
            };
            if let Err(error) = result {
                tracing::warn!(%error, "a call subscription step failed");
            }
            // New streams start at Janus's default layer, which may not be the one
            // their tiles need.
            self.request_substreams().await;
        }
        if let Some((peer, _)) = &self.peer {
            let _ = peer.close().await;
        }
    }

    async fn subscribe(&mut self, feeds: Vec<u64>) -> Result<(), CallError> {
        let add = feeds
            .iter()
            .map(|feed_id| StreamRef {
                feed_id: *feed_id,
                mid: None,
            })
            .collect();
        let reply = self
            .signaling
            .request(CallRequest::Subscribe {
                add,
                remove: Vec::new(),
            })
            .await?;
        self.feeds.extend(feeds);
        let CallReply::Subscribed { jsep, streams } = reply else {
            return Err(CallError::UnexpectedReply("subscribe"));
        };
        match jsep {
            Some(jsep) => self.answer(jsep, streams).await,
            None => Ok(()),
        }
    }

    async fn answer(
        &mut self,
        offer: Jsep,
        streams: Vec<SubscribedStream>,
    ) -> Result<(), CallError> {
        {
            let mut received = self.received.lock().unwrap();
            let mids = mids_by_track(&offer.sdp);
            tracing::debug!(
                ?mids,
                ?streams,
                own_feed = self.own_feed,
                "subscriber offer"
            );
            // Janus renegotiates when a feed leaves, and the offer then lists only
            // what remains. The streams seen earlier stay, so that the statistics
            // still show participants who left.
            // NOTE: a mid that Janus reuses for a new feed keeps the old feed's
            // statistics under the new feed.
            for stream in streams {
                received.streams.retain(|known| known.mid != stream.mid);
                received.streams.push(stream);
            }
            received.mids.extend(mids);
        }
        let mut new_candidates = None;
        if self.peer.is_none() {
            let (tracks, tracks_rx) = mpsc::unbounded_channel();
            let (peer, gathered, candidates, ice_state) =
                build_peer(&self.options, &self.ice_servers, Some(tracks)).await?;
            new_candidates = Some(candidates);
            tokio::spawn(read_tracks(
                peer.clone(),
                tracks_rx,
                self.received.clone(),
                self.sinks.clone(),
                self.stop.clone(),
            ));
            tokio::spawn(recovery::keep_connected(
                PeerRole::Subscriber,
                ice_state,
                SubscriberRestart {
                    requests: self.restart_requests.clone(),
                },
                self.stop.clone(),
            ));
            self.peer = Some((peer, gathered));
        }
        let (peer, _) = self.peer.as_mut().unwrap();
        peer.set_remote_description(remote_description(&offer)?)
            .await
            .map_err(webrtc_error)?;
        let answer = peer.create_answer(None).await.map_err(webrtc_error)?;
        let answer = local_description(peer, answer).await?;
        self.signaling
            .request(CallRequest::Start { jsep: answer })
            .await?;
        // The first answer starts the gathering, whose candidates follow it. Later
        // answers renegotiate the same transport, which has them already.
        if let Some(candidates) = new_candidates {
            tokio::spawn(trickle_candidates(
                self.signaling.clone(),
                PeerRole::Subscriber,
                candidates,
                self.stop.clone(),
            ));
        }
        Ok(())
    }

    /// Requests from Janus the simulcast layer that each subscribed feed's tile
    /// size needs, where it differs from the last request.
    async fn request_substreams(&mut self) {
        let layout = self.layout.borrow_and_update().clone();
        let streams: Vec<SubscribedStream> = {
            let received = self.received.lock().unwrap();
            received
                .streams
                .iter()
                .filter(|stream| self.feeds.contains(&stream.feed_id))
                .cloned()
                .collect()
        };
        let changes = self.substreams.changes(&layout, &streams);
        if changes.is_empty() {
            return;
        }
        tracing::debug!(
            ?changes,
            own_feed = self.own_feed,
            "simulcast layer request"
        );
        let request = CallRequest::Configure {
            audio_muted: None,
            camera_off: None,
            substreams: changes.clone(),
        };
        match self.signaling.request(request).await {
            Ok(_) => self.substreams.record(&streams, &changes),
            Err(error) => {
                tracing::warn!(%error, own_feed = self.own_feed, "failed to request simulcast layers");
            }
        }
    }

    async fn restart_ice(&mut self) {
        let Some((peer, gathered)) = self.peer.as_mut() else {
            return;
        };
        if let Err(error) = recovery::restart_subscriber(&self.signaling, &**peer, gathered).await {
            tracing::warn!(%error, own_feed = self.own_feed, "subscriber ICE restart failed");
        }
    }
}

/// Hands the packets of each remote track to a decoder thread of its own, with
/// the statistics keyed by the track id, and the pictures and levels to `sinks`.
async fn read_tracks(
    peer: Peer,
    mut tracks: mpsc::UnboundedReceiver<Arc<dyn TrackRemote>>,
    received: Arc<Mutex<Received>>,
    sinks: RemoteSinks,
    stop: CancellationToken,
) {
    loop {
        let track = tokio::select! {
            () = stop.cancelled() => return,
            track = tracks.recv() => track,
        };
        let Some(track) = track else { return };
        let track_id = track.track_id().await.to_string();
        let kind = track.kind().await;
        tracing::debug!(%track_id, ?kind, "remote track");
        let stats = SharedStats::default();
        received.lock().unwrap().by_track.insert(
            track_id.clone(),
            RemoteTrack {
                kind,
                stats: stats.clone(),
            },
        );
        tokio::spawn(find_mid(
            peer.clone(),
            track.clone(),
            track_id.clone(),
            received.clone(),
        ));
        let remote = Some(RemoteOutput {
            output: sinks.output.clone(),
            feed: feed_lookup(received.clone(), track_id),
            layout: sinks.layout.clone(),
        });
        let wants_keyframe = Arc::new(AtomicBool::new(false));
        let decoder = if kind == RtpCodecKind::Audio {
            let playback = sinks.playback.as_ref().map(PlaybackMix::add_stream);
            spawn_audio_decoder(stats.clone(), remote, playback)
        } else {
            spawn_video_decoder(stats.clone(), remote, wants_keyframe.clone())
        };
        tokio::spawn(forward_packets(
            track,
            decoder,
            KeyframeRequests {
                wanted: wants_keyframe,
                stats,
                last: None,
                sender_ssrc: rand::random::<u32>().max(1),
            },
            stop.clone(),
        ));
    }
}

/// Returns a lookup of the feed that the track `track_id` carries, through its
/// subscriber `mid`.
fn feed_lookup(
    received: Arc<Mutex<Received>>,
    track_id: String,
) -> Arc<dyn Fn() -> Option<u64> + Send + Sync> {
    Arc::new(move || {
        let received = received.lock().unwrap();
        let mid = received.mids.get(&track_id)?;
        received
            .streams
            .iter()
            .find(|stream| &stream.mid == mid)
            .map(|stream| stream.feed_id)
    })
}

/// The keyframe requests of one remote video track: its decoder thread flags when
/// it waits for a keyframe, and the track's reader sends a PLI, at most one per
/// [`PLI_INTERVAL`].
struct KeyframeRequests {
    wanted: Arc<AtomicBool>,
    stats: SharedStats,
    last: Option<Instant>,
    /// A random nonzero SSRC that names this receiver.
    sender_ssrc: u32,
}

/// The shortest time between two PLIs of one track: Janus forwards each to the
/// publisher, whose keyframe takes a round trip and several packets.
const PLI_INTERVAL: Duration = Duration::from_millis(400);

impl KeyframeRequests {
    async fn send_if_wanted(&mut self, track: &Arc<dyn TrackRemote>, media_ssrc: u32) {
        if !self.wanted.load(Ordering::Relaxed)
            || self.last.is_some_and(|last| last.elapsed() < PLI_INTERVAL)
        {
            return;
        }
        self.last = Some(Instant::now());
        // Janus 1.1 finds the stream of an RTCP packet from a receiver that sends
        // nothing by the first packet's report block or NACK, not by a PLI's media
        // SSRC, and takes a lone PLI for the audio stream. A reception report that
        // names the video goes first, as in the compound packets browsers send.
        let report = ReceiverReport {
            ssrc: self.sender_ssrc,
            reports: vec![ReceptionReport {
                ssrc: media_ssrc,
                ..ReceptionReport::default()
            }],
            profile_extensions: Default::default(),
        };
        let pli = PictureLossIndication {
            sender_ssrc: self.sender_ssrc,
            media_ssrc,
        };
        match track
            .write_rtcp(vec![Box::new(report), Box::new(pli)])
            .await
        {
            Ok(()) => self.stats.lock().unwrap().keyframe_requests += 1,
            Err(error) => tracing::debug!(%error, media_ssrc, "failed to send a PLI"),
        }
    }
}

/// Sends the RTP packets of `track` to its decoder thread until the track ends,
/// and the PLIs that its decoder requests.
async fn forward_packets(
    track: Arc<dyn TrackRemote>,
    decoder: std::sync::mpsc::Sender<RtpUnit>,
    mut keyframes: KeyframeRequests,
    stop: CancellationToken,
) {
    loop {
        let event = tokio::select! {
            () = stop.cancelled() => return,
            event = track.poll() => event,
        };
        match event {
            None | Some(TrackRemoteEvent::OnEnded) => return,
            Some(TrackRemoteEvent::OnRtpPacket(packet)) => {
                keyframes.send_if_wanted(&track, packet.header.ssrc).await;
                let unit = RtpUnit {
                    sequence: packet.header.sequence_number,
                    timestamp: packet.header.timestamp,
                    marker: packet.header.marker,
                    payload: packet.payload,
                };
                if decoder.send(unit).is_err() {
                    return;
                }
            }
            Some(_) => {}
        }
    }
}

/// Records the `mid` of `track`. The track can arrive before its transceiver
/// names it, so this looks again for a while, unless the offer's `a=msid` lines
/// already named it.
async fn find_mid(
    peer: Peer,
    track: Arc<dyn TrackRemote>,
    track_id: String,
    received: Arc<Mutex<Received>>,
) {
    for _ in 0..MID_LOOKUPS {
        if let Some(mid) = track_mid(&peer, &track).await {
            tracing::debug!(%track_id, %mid, "remote track mid");
            received.lock().unwrap().mids.insert(track_id, mid);
            return;
        }
        if received.lock().unwrap().mids.contains_key(&track_id) {
            return;
        }
        tokio::time::sleep(MID_LOOKUP_INTERVAL).await;
    }
}

/// Looks up the `mid` of the transceiver receiving `track`, where the crate reports it.
async fn track_mid(peer: &Peer, track: &Arc<dyn TrackRemote>) -> Option<String> {
    for transceiver in peer.get_transceivers().await {
        let Ok(Some(receiver)) = transceiver.receiver().await else {
            continue;
        };
        if Arc::ptr_eq(receiver.track(), track)
            && let Ok(Some(mid)) = transceiver.mid().await
        {
            return Some(mid);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::media::{MediaError, VideoInput};
    use roomler_media::{DeviceKind, SourceError};

    #[tokio::test]
    async fn relay_only_needs_turn_server() {
        let options = CallOptions {
            bind: "127.0.0.1".parse().unwrap(),
            relay_only: true,
            tone_hz: 440.0,
            format: None,
        };
        let server = |url: &str| IceServer {
            urls: vec![url.to_string()],
            username: None,
            credential: None,
            expires_at: None,
        };
        let stun_only = [server("stun:127.0.0.1:3478")];
        let Err(error) = build_peer(&options, &stun_only, None).await else {
            panic!("relay-only ICE started without a TURN server");
        };
        assert!(matches!(error, CallError::NoTurnServer), "{error}");
        assert!(error.to_string().contains("TURN_URL"), "{error}");

        let with_turn = [IceServer {
            username: Some("1700000000:alice".into()),
            credential: Some("secret".into()),
            ..server("turn:127.0.0.1:3478?transport=udp")
        }];
        if let Err(error) = build_peer(&options, &with_turn, None).await {
            panic!("relay-only ICE with a TURN server failed: {error}");
        }
    }

    /// Joins with `setup` against an address where no server listens.
    async fn join_offline(setup: MediaSetup) -> CallError {
        let options = CallOptions {
            bind: "127.0.0.1".parse().unwrap(),
            relay_only: false,
            tone_hz: 440.0,
            format: None,
        };
        match CallSession::join_with(
            "ws://127.0.0.1:9/api/ws",
            "token",
            Uuid::nil(),
            options,
            setup,
        )
        .await
        {
            Ok(_) => panic!("joined without a server"),
            Err(error) => error,
        }
    }

    /// The camera opens only once the server lets the participant publish, and
    /// before anything is offered to Janus, so this checks the step that opens it.
    #[tokio::test]
    async fn missing_camera_fails_before_publishing() {
        let setup = MediaSetup {
            video: VideoInput::Camera {
                name: Some("No Such Camera".into()),
            },
            ..MediaSetup::synthetic(440.0)
        };
        let error = match media::start_sources(&setup, Arc::new(SendSwitches::default()), None) {
            Ok(_) => panic!("opened a camera that does not exist"),
            Err(error) => CallError::from(error),
        };
        assert!(
            matches!(
                error,
                CallError::Media(MediaError::Device(SourceError::NoDevice {
                    kind: DeviceKind::Camera,
                    ..
                }))
            ),
            "{error:?}"
        );
        assert!(error.to_string().contains("\"No Such Camera\""), "{error}");
    }

    #[tokio::test]
    async fn missing_speaker_fails_before_connecting() {
        let setup = MediaSetup {
            speaker: SpeakerChoice::Device {
                name: Some("No Such Speaker".into()),
            },
            ..MediaSetup::synthetic(440.0)
        };
        let error = join_offline(setup).await;
        assert!(
            matches!(
                error,
                CallError::Media(MediaError::Device(SourceError::NoDevice {
                    kind: DeviceKind::Speaker,
                    ..
                }))
            ),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn unreachable_server_fails_the_join() {
        let error = join_offline(MediaSetup::synthetic(440.0)).await;
        assert!(
            matches!(error, CallError::Signaling(SignalingError::Connect(_))),
            "{error:?}"
        );
    }

    #[test]
    fn mids_follow_msid_lines() {
        let sdp = "v=0\r\nm=audio 9 UDP 111\r\na=mid:0\r\na=msid:janus janus0\r\n\
                   m=video 9 UDP 96\r\na=mid:1\r\na=msid:janus janus1\r\n";
        let mids = mids_by_track(sdp);
        assert_eq!(mids.get("janus0").map(String::as_str), Some("0"));
        assert_eq!(mids.get("janus1").map(String::as_str), Some("1"));
    }
}
