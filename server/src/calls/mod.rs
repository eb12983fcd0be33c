//! Call control: each room's call is a Janus VideoRoom room that the server creates
//! when the first participant joins and destroys when the last one leaves.
//!
//! - [`janus`]: the Janus API client over WebSocket (sessions, handles, transactions).
//! - [`supervisor`]: the local Janus the server starts when no Janus URL is set.
//! - [`turn`]: TURN credentials handed out on join.
//! - `stage`: who may publish in a presentation: raised hands, invitations to speak
//!   and moves back to the audience.
//!
//! Clients send [`CallRequest`]s over their WebSocket; [`Calls::handle`] checks the
//! caller's membership on every step and relays the step to Janus. The Janus room's
//! `secret` and `pin`, the API secret and the admin key stay on the server: replies
//! carry only session descriptions, stream descriptions and feed ids.
//!
//! Each participant has one Janus session with a publisher handle and, once it
//! subscribes, a subscriber handle. Janus's own events on those handles become
//! [`CallSignal`]s for the participant's connection and [`CallEvent`]s for the room.
//!
//! With several replicas, each call lives on one of them, its host, and [`cluster`]
//! forwards the requests that reach the other replicas to it.

pub mod cluster;
pub mod janus;
mod stage;
pub mod supervisor;
pub mod turn;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use roomler_shared::call::{
    CallErrorCode, CallEvent, CallFormat, CallReply, CallRequest, CallRole, CallSignal,
    CallSummary, IceCandidate, Jsep, JsepKind, MediaKind, Participant, PeerRole, PublishedStream,
    StreamRef, SubscribedStream,
};
use roomler_shared::model::Role;
use roomler_shared::ws::{Control, ServerFrame};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use self::cluster::{Claim, Cluster};
use self::janus::{Handle, HandleEvents, JanusError, JanusLink, Session, VIDEOROOM};
use self::turn::TurnSettings;
use crate::AppState;
use crate::config::Settings;

/// Janus ids must stay below 2^53 so that JavaScript clients read them exactly.
const MAX_JANUS_ID: u64 = (1 << 53) - 1;
/// Janus's VideoRoom sends `talking` after this many packets above the threshold.
const AUDIO_ACTIVE_PACKETS: u32 = 50;
/// The average audio level (in -dBov, 0 loudest, 127 silence) that counts as talking.
const AUDIO_LEVEL_AVERAGE: u32 = 40;
/// Publisher bitrate cap Janus sends in REMB, in bits per second. The desktop
/// client's three VP8 simulcast layers take at most 1.8 Mbit/s together (a 640x480
/// camera), and Opus 32 kbit/s, so both fit under it.
const ROOM_BITRATE: u64 = 2_000_000;
/// How long a join waits for the local Janus to accept connections after its start.
const LOCAL_START_TIMEOUT: Duration = Duration::from_secs(15);

/// A failed call request: its code and a sentence for the user.
#[derive(Debug, Clone)]
pub struct CallFailure {
    pub code: CallErrorCode,
    pub message: String,
    /// The replica that hosts the call, when a join found it started there.
    moved_to: Option<Uuid>,
}

impl CallFailure {
    fn new(code: CallErrorCode, message: impl Into<String>) -> Self {
        CallFailure {
            code,
            message: message.into(),
            moved_to: None,
        }
    }

    /// Builds the failure of a join that lost the race to start the room's call to
    /// another replica.
    fn moved(room_id: Uuid, host: Uuid) -> Self {
        CallFailure {
            moved_to: Some(host),
            ..CallFailure::unreachable(room_id)
        }
    }

    fn unreachable(room_id: Uuid) -> Self {
        CallFailure::new(
            CallErrorCode::CallsUnavailable,
            format!(
                "The call of room {room_id} runs on another server replica, which this one \
                 could not reach; try again."
            ),
        )
    }

    fn janus(room_id: Uuid, step: &str, error: JanusError) -> Self {
        tracing::warn!(%room_id, step, %error, "a Janus step failed");
        // Janus rejects a request with this reason when it gathered no ICE candidate,
        // e.g. on a machine whose only interface is loopback. Trying again cannot help.
        if let JanusError::Rejected { reason, .. } = &error
            && reason.contains("Error setting ICE locally")
        {
            return CallFailure::new(
                CallErrorCode::MediaServerError,
                format!(
                    "The media server could not {step} in the call of room {room_id}: Janus \
                     found no network address for the media (it gathers none on loopback). \
                     Ask the server's admin to give Janus a non-loopback interface, or to \
                     set ROOMLER_JANUS_ICE_ENFORCE_LIST to one."
                ),
            );
        }
        CallFailure::new(
            CallErrorCode::MediaServerError,
            format!(
                "The media server failed to {step} in the call of room {room_id}; try again, \
                 and ask the server's admin to check Janus if it keeps failing."
            ),
        )
    }
}

type CallResult<T> = Result<T, CallFailure>;

/// A WebSocket connection of any replica: the replica that accepted it and its id
/// there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ConnectionKey {
    pub replica: Uuid,
    pub id: u64,
}

/// The connection a request came from.
#[derive(Clone)]
pub struct CallContext {
    pub user_id: Uuid,
    pub connection: ConnectionKey,
    /// Frames for this connection only: replies and signals about its peer
    /// connections.
    pub frames: mpsc::UnboundedSender<Control>,
}

/// One Janus instance the server may place calls on.
struct Instance {
    url: String,
    api_secret: Option<String>,
    admin_key: Option<String>,
    link: tokio::sync::Mutex<Option<Arc<JanusLink>>>,
    /// The local Janus to start before the first connection, if this is one.
    launch: Option<supervisor::Launch>,
    launched: std::sync::atomic::AtomicBool,
    /// A session with a VideoRoom handle for creating and destroying rooms.
    control: tokio::sync::Mutex<Option<(Session, Handle)>>,
    calls: AtomicUsize,
}

impl Instance {
    async fn link(&self) -> Result<Arc<JanusLink>, JanusError> {
        let mut link = self.link.lock().await;
        if let Some(open) = link.as_ref().filter(|link| !link.is_closed()) {
            return Ok(open.clone());
        }
        let Some(launch) = &self.launch else {
            let open = JanusLink::connect(&self.url, self.api_secret.clone()).await?;
            *link = Some(open.clone());
            return Ok(open);
        };
        if !self.launched.swap(true, Ordering::SeqCst)
            && let Err(error) = launch.start()
        {
            self.launched.store(false, Ordering::SeqCst);
            return Err(JanusError::Connect {
                url: self.url.clone(),
                reason: format!("{error:#}"),
            });
        }
        // Janus takes a moment to open its port after a (re)start.
        let deadline = tokio::time::Instant::now() + LOCAL_START_TIMEOUT;
        loop {
            match JanusLink::connect(&self.url, self.api_secret.clone()).await {
                Ok(open) => {
                    *link = Some(open.clone());
                    return Ok(open);
                }
                Err(error) if tokio::time::Instant::now() >= deadline => return Err(error),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// Sends a synchronous VideoRoom request on the control handle.
    async fn control(&self, mut body: Value) -> Result<Value, JanusError> {
        if let Some(key) = &self.admin_key {
            body["admin_key"] = json!(key);
        }
        let link = self.link().await?;
        let mut control = self.control.lock().await;
        let stale = control
            .as_ref()
            .is_none_or(|(session, _)| !Arc::ptr_eq(session.link(), &link));
        if stale {
            let session = link.create_session().await?;
            let (handle, _events) = session.attach(VIDEOROOM).await?;
            *control = Some((session, handle));
        }
        let (_, handle) = control.as_ref().unwrap();
        handle.request(body).await
    }
}

/// A participant's Janus objects.
struct Peer {
    session: Session,
    publisher: Handle,
    private_id: Option<u64>,
    /// The streams of the last publish, which others see once the connection is up.
    published: Vec<PublishedStream>,
    subscriber: Option<Handle>,
    subscribed: Vec<SubscribedStream>,
}

struct Member {
    info: Mutex<Participant>,
    connection: ConnectionKey,
    frames: mpsc::UnboundedSender<Control>,
    peer: tokio::sync::Mutex<Peer>,
    /// Stops the task that reads the participant's Janus events.
    stop: CancellationToken,
}

struct Call {
    id: Uuid,
    started_at: OffsetDateTime,
    format: CallFormat,
    /// The user whose join started the call, a host of a presentation.
    starter: Uuid,
    /// The audience members of a presentation whom a host invited to speak. They
    /// stay speakers when they join again, e.g. after a reconnection.
    speakers: HashSet<Uuid>,
    instance: usize,
    janus_room: u64,
    pin: String,
    members: HashMap<Uuid, Arc<Member>>,
}

impl Call {
    /// Returns the role a user joins with: every participant of a meeting speaks,
    /// and a presentation has hosts, invited speakers and the audience.
    fn role_of(&self, user_id: Uuid, room_role: Role) -> CallRole {
        match self.format {
            CallFormat::Meeting => CallRole::Speaker,
            CallFormat::Presentation if self.is_host(user_id, room_role) => CallRole::Host,
            CallFormat::Presentation if self.speakers.contains(&user_id) => CallRole::Speaker,
            CallFormat::Presentation => CallRole::Audience,
        }
    }

    /// Returns whether the user hosts this presentation: they started it, or they
    /// own or moderate the room now.
    fn is_host(&self, user_id: Uuid, room_role: Role) -> bool {
        self.format == CallFormat::Presentation
            && (user_id == self.starter || room_role.can_moderate())
    }

    /// Counts the participants who may publish, whom `call_max_participants` limits.
    fn publisher_count(&self) -> usize {
        self.members
            .values()
            .filter(|member| member.info.lock().unwrap().role.may_publish())
            .count()
    }
}

/// The caller of a request, as the store describes them now.
struct Caller {
    username: String,
    display_name: String,
    room_role: Role,
}

type CallSlot = Arc<tokio::sync::Mutex<Option<Call>>>;

/// Every call of this server process.
pub struct Calls {
    turn: TurnSettings,
    max_participants: u32,
    instances: Vec<Instance>,
    /// The Janus room secret; one per process is enough, since it never leaves the
    /// server and every room is destroyed with it when its call ends.
    secret: String,
    rooms: Mutex<HashMap<Uuid, CallSlot>>,
    /// The calls this process hosts, kept apart from their locks so that room lists
    /// read them while a call waits for Janus.
    hosted: Mutex<HashMap<Uuid, CallSummary>>,
    /// This process's id among the replicas.
    replica: Uuid,
    /// The calls of other replicas, when replicas share a Redis.
    cluster: Option<Arc<Cluster>>,
}

impl Calls {
    /// The call control the settings describe: the configured Janus instances, or a
    /// local Janus when none is configured and the program exists, or none.
    pub fn from_settings(
        settings: &Settings,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<Self> {
        let mut instances: Vec<Instance> = settings
            .janus_urls
            .iter()
            .map(|url| {
                Instance::new(
                    url,
                    &settings.janus_api_secret,
                    &settings.janus_admin_key,
                    None,
                )
            })
            .collect();
        if instances.is_empty() {
            match supervisor::find_binary(&settings.janus_binary) {
                Some(binary) => {
                    let launch = supervisor::Launch::prepare(binary, settings, shutdown.clone())?;
                    let local = launch.janus.clone();
                    instances.push(Instance::new(
                        &local.url,
                        &Some(local.api_secret),
                        &Some(local.admin_key),
                        Some(launch),
                    ));
                }
                None => tracing::info!(
                    janus_binary = %settings.janus_binary,
                    "calls are off: no Janus URL is set and no Janus program was found"
                ),
            }
        }
        let turn = TurnSettings {
            urls: settings.turn_urls(),
            secret: settings.turn_secret.clone(),
            username: settings.turn_username.clone(),
            password: settings.turn_password.clone(),
            ttl: Duration::from_secs(settings.turn_ttl_secs),
        };
        let replica = Uuid::new_v4();
        let cluster = match (&settings.ws_scaleout_enabled, &settings.ws_scaleout_host) {
            (true, Some(host)) => Some(Arc::new(Cluster::new(host, replica, shutdown.clone())?)),
            _ => None,
        };
        Ok(Calls {
            turn,
            max_participants: settings.call_max_participants,
            instances,
            secret: random_secret(),
            rooms: Mutex::new(HashMap::new()),
            hosted: Mutex::new(HashMap::new()),
            replica,
            cluster,
        })
    }

    /// This process's id among the replicas.
    pub fn replica(&self) -> Uuid {
        self.replica
    }

    /// Starts the tasks that join this replica's calls to the other replicas', if
    /// replicas share a Redis: the call channels and the leases of hosted calls.
    pub fn start_cluster(&self, state: &AppState) {
        if let Some(cluster) = &self.cluster {
            tokio::spawn(cluster.clone().run(state.clone()));
            tokio::spawn(keep_leases(state.clone()));
        }
    }

    /// Returns the calls going on in `rooms`, for the room list: those hosted here,
    /// and those that other replicas host.
    pub async fn summaries(&self, rooms: &[Uuid]) -> HashMap<Uuid, CallSummary> {
        let mut summaries: HashMap<Uuid, CallSummary> = {
            let hosted = self.hosted.lock().unwrap();
            rooms
                .iter()
                .filter_map(|room_id| Some((*room_id, hosted.get(room_id)?.clone())))
                .collect()
        };
        if let Some(cluster) = &self.cluster {
            let elsewhere: Vec<Uuid> = rooms
                .iter()
                .filter(|room_id| !summaries.contains_key(room_id))
                .copied()
                .collect();
            summaries.extend(cluster.summaries(&elsewhere).await);
        }
        summaries
    }

    /// Returns the rooms whose calls this process hosts.
    fn hosted_rooms(&self) -> Vec<Uuid> {
        self.hosted.lock().unwrap().keys().copied().collect()
    }

    /// Returns whether this process hosts a call in the room.
    pub(crate) fn hosts(&self, room_id: Uuid) -> bool {
        self.hosted.lock().unwrap().contains_key(&room_id)
    }

    /// Records the call's summary for room lists, here and, with several replicas,
    /// in Redis. Called under the call's lock, so summaries never go back in time.
    async fn record_summary(&self, room_id: Uuid, call: &Call) {
        let summary = CallSummary {
            call_id: call.id,
            format: call.format,
            participant_count: call.members.len() as u32,
            started_at: call.started_at,
        };
        self.hosted.lock().unwrap().insert(room_id, summary.clone());
        if let Some(cluster) = &self.cluster {
            cluster.refresh(room_id, &summary).await;
        }
    }

    /// Registers a WebSocket connection of this process, whose requests may go to
    /// the replica that hosts a call, and which `close` closes so that its client
    /// joins again when that host stops.
    pub fn connected(&self, context: &CallContext, close: tokio_util::sync::CancellationToken) {
        if let Some(cluster) = &self.cluster {
            cluster.connected(context.clone(), close);
        }
    }

    /// Runs one call request of a connection, here or on the replica that hosts the
    /// room's call, and sends the reply on the connection's frames.
    pub async fn dispatch(&self, state: &AppState, context: &CallContext, routed: Routed) {
        if let Some(cluster) = &self.cluster
            && !self.hosts(routed.room_id)
            && routed.hops < cluster::MAX_HOPS
            && let Some(host) = cluster.remote_host(routed.room_id).await
        {
            forward(cluster, host, context, routed).await;
            return;
        }
        let Routed {
            request_id,
            room_id,
            request,
            hops,
        } = routed;
        let join = matches!(request, CallRequest::Join { .. }).then(|| request.clone());
        let result = self.handle(state, context, room_id, request).await;
        if let (Err(failure), Some(request), Some(cluster)) = (&result, join, &self.cluster)
            && let Some(host) = failure.moved_to
            && hops < cluster::MAX_HOPS
        {
            let routed = Routed {
                request_id,
                room_id,
                request,
                hops,
            };
            forward(cluster, host, context, routed).await;
            return;
        }
        let _ = context
            .frames
            .send(reply_frame(request_id, room_id, result));
    }

    /// Counts the calls going on and their participants, for `/metrics`.
    pub async fn counts(&self) -> (usize, usize) {
        let slots: Vec<CallSlot> = self.rooms.lock().unwrap().values().cloned().collect();
        let (mut calls, mut participants) = (0, 0);
        for slot in slots {
            if let Some(call) = slot.lock().await.as_ref() {
                calls += 1;
                participants += call.members.len();
            }
        }
        (calls, participants)
    }

    fn slot(&self, room_id: Uuid) -> CallSlot {
        self.rooms
            .lock()
            .unwrap()
            .entry(room_id)
            .or_default()
            .clone()
    }

    /// Drops the room's slot after its call ended, unless a join started the next
    /// call in it meanwhile or waits for it.
    fn drop_slot(&self, room_id: Uuid, slot: &CallSlot) {
        let mut rooms = self.rooms.lock().unwrap();
        // Two references, the map's and the caller's, mean that no request uses the
        // slot, and no request can take it while the map is locked.
        let idle = Arc::strong_count(slot) == 2 && slot.try_lock().is_ok_and(|call| call.is_none());
        if idle
            && rooms
                .get(&room_id)
                .is_some_and(|kept| Arc::ptr_eq(kept, slot))
        {
            rooms.remove(&room_id);
        }
    }

    /// Runs one call request of `context`'s user in `room_id`.
    #[tracing::instrument(name = "call", skip_all, fields(%room_id, user_id = %context.user_id,
        action = request.action()))]
    pub async fn handle(
        &self,
        state: &AppState,
        context: &CallContext,
        room_id: Uuid,
        request: CallRequest,
    ) -> CallResult<CallReply> {
        let caller = authorize(state, context.user_id, room_id).await?;
        match request {
            CallRequest::Join { format } => {
                self.join(state, context, room_id, caller, format).await
            }
            CallRequest::Leave => {
                self.leave(state, room_id, context.user_id, Some(context.connection))
                    .await?;
                Ok(CallReply::Left)
            }
            CallRequest::RaiseHand => self.raise_hand(state, context, room_id).await,
            CallRequest::LowerHand { user_id } => {
                let target = user_id.unwrap_or(context.user_id);
                self.lower_hand(state, context, room_id, caller.room_role, target)
                    .await
            }
            CallRequest::InviteToSpeak { user_id } => {
                self.invite_to_speak(state, context, room_id, caller.room_role, user_id)
                    .await
            }
            CallRequest::MoveToAudience { user_id } => {
                let target = user_id.unwrap_or(context.user_id);
                self.move_to_audience(state, context, room_id, caller.room_role, target)
                    .await
            }
            request => {
                let member = self.member(room_id, context).await?;
                self.relay(state, room_id, &caller, context.user_id, &member, request)
                    .await
            }
        }
    }

    async fn member(&self, room_id: Uuid, context: &CallContext) -> CallResult<Arc<Member>> {
        let slot = self.slot(room_id);
        let call = slot.lock().await;
        call.as_ref()
            .and_then(|call| call.members.get(&context.user_id))
            .filter(|member| member.connection == context.connection)
            .cloned()
            .ok_or_else(|| {
                CallFailure::new(
                    CallErrorCode::NotInCall,
                    format!(
                        "You are not in the call of room {room_id} on this connection; send \
                         join first."
                    ),
                )
            })
    }

    async fn join(
        &self,
        state: &AppState,
        context: &CallContext,
        room_id: Uuid,
        caller: Caller,
        format: Option<CallFormat>,
    ) -> CallResult<CallReply> {
        if self.instances.is_empty() {
            return Err(CallFailure::new(
                CallErrorCode::CallsUnavailable,
                format!(
                    "Calls are not available on this server, so room {room_id} has no call; \
                     ask its admin to set ROOMLER_JANUS_URLS or install Janus."
                ),
            ));
        }
        let slot = self.slot(room_id);
        let mut guard = slot.lock().await;

        // A second join of the same user replaces the first, e.g. after a reconnection.
        let previous = guard
            .as_mut()
            .and_then(|call| call.members.remove(&context.user_id));
        if let Some(previous) = previous {
            let _ = previous.frames.send(Control::CallSignal {
                room_id,
                signal: CallSignal::Removed {
                    reason: "you joined this call again from another connection".into(),
                },
            });
            close_member(&previous).await;
        }

        // A format given to a call that is already going on is ignored, because two
        // people who join at the same moment cannot know whose join starts it.
        let started = guard.is_none();
        if started {
            // With several replicas, the lease decides which one hosts the call.
            if let Some(cluster) = &self.cluster
                && let Some(Claim::Held(host)) = cluster.claim(room_id).await
            {
                return Err(CallFailure::moved(room_id, host));
            }
            let format = format.unwrap_or_default();
            let created = self.create_call(room_id, context.user_id, format).await;
            match created {
                Ok(call) => *guard = Some(call),
                Err(failure) => {
                    self.forget_call(room_id).await;
                    return Err(failure);
                }
            }
        }
        let call = guard.as_mut().unwrap();
        let role = call.role_of(context.user_id, caller.room_role);
        // NOTE: the limit counts only those who may publish, so a presentation's
        // audience is limited by the room's membership alone.
        if role.may_publish() && call.publisher_count() >= self.max_participants as usize {
            return Err(CallFailure::new(
                CallErrorCode::Forbidden,
                format!(
                    "The call of room {room_id} is full ({} participants); try again later.",
                    self.max_participants
                ),
            ));
        }

        let feed_id = random_id();
        let joined = self
            .join_janus(call, room_id, feed_id, context.user_id)
            .await;
        let (peer, events) = match joined {
            Ok(joined) => joined,
            Err(failure) => {
                if call.members.is_empty() {
                    let call = guard.take().unwrap();
                    self.forget_call(room_id).await;
                    self.destroy_call(room_id, call).await;
                }
                return Err(failure);
            }
        };
        let info = Participant {
            user_id: context.user_id,
            username: caller.username,
            display_name: caller.display_name,
            feed_id,
            audio_muted: false,
            camera_off: false,
            streams: Vec::new(),
            role,
            hand_raised: false,
        };
        let member = Arc::new(Member {
            info: Mutex::new(info.clone()),
            connection: context.connection,
            frames: context.frames.clone(),
            peer: tokio::sync::Mutex::new(peer),
            stop: CancellationToken::new(),
        });
        let others: Vec<Participant> = call
            .members
            .values()
            .map(|member| member.info.lock().unwrap().clone())
            .collect();
        call.members.insert(context.user_id, member.clone());
        let call_id = call.id;
        let call_format = call.format;
        self.record_summary(room_id, call).await;
        drop(guard);

        tokio::spawn(watch_publisher(
            state.clone(),
            room_id,
            context.user_id,
            member.clone(),
            events,
        ));
        if started {
            tracing::info!(%call_id, format = call_format.as_str(), "call started");
            let event = CallEvent::Started {
                call_id,
                format: call_format,
            };
            broadcast(state, room_id, event).await;
        }
        tracing::info!(%call_id, feed_id, ?role, "participant joined");
        broadcast(
            state,
            room_id,
            CallEvent::ParticipantJoined { participant: info },
        )
        .await;
        Ok(CallReply::Joined {
            call_id,
            feed_id,
            participants: others,
            ice_servers: self
                .turn
                .ice_servers(context.user_id, OffsetDateTime::now_utc()),
            format: call_format,
            role,
        })
    }

    fn pick_instance(&self) -> usize {
        (0..self.instances.len())
            .min_by_key(|index| self.instances[*index].calls.load(Ordering::Relaxed))
            .unwrap_or(0)
    }

    async fn create_call(
        &self,
        room_id: Uuid,
        starter: Uuid,
        format: CallFormat,
    ) -> CallResult<Call> {
        let instance = self.pick_instance();
        let janus_room = random_id();
        let pin = random_secret();
        let body = json!({
            "request": "create",
            "room": janus_room,
            "description": room_id.to_string(),
            "secret": self.secret,
            "pin": pin,
            "is_private": true,
            "permanent": false,
            "publishers": self.max_participants,
            "bitrate": ROOM_BITRATE,
            "fir_freq": 10,
            "audiocodec": "opus",
            "videocodec": "vp8",
            "audiolevel_event": true,
            "audio_active_packets": AUDIO_ACTIVE_PACKETS,
            "audio_level_average": AUDIO_LEVEL_AVERAGE,
            "notify_joining": false,
        });
        self.instances[instance]
            .control(body)
            .await
            .map_err(|error| CallFailure::janus(room_id, "create the call", error))?;
        self.instances[instance]
            .calls
            .fetch_add(1, Ordering::Relaxed);
        Ok(Call {
            id: Uuid::now_v7(),
            started_at: OffsetDateTime::now_utc(),
            format,
            starter,
            speakers: HashSet::new(),
            instance,
            janus_room,
            pin,
            members: HashMap::new(),
        })
    }

    /// Forgets a call that ends here, and releases its lease. Called under the
    /// call's lock, so a join that starts the room's next call claims it afresh.
    async fn forget_call(&self, room_id: Uuid) {
        self.hosted.lock().unwrap().remove(&room_id);
        if let Some(cluster) = &self.cluster {
            cluster.release(room_id).await;
        }
    }

    /// Ends the room's call here because another replica holds its lease, e.g. after
    /// Redis lost the lease while this replica could not reach it. Every participant's
    /// connection closes, so that its client joins the call on the other replica.
    async fn evict(&self, room_id: Uuid, host: Uuid) {
        let slot = self.slot(room_id);
        let mut guard = slot.lock().await;
        let Some(call) = guard.take() else {
            return;
        };
        self.hosted.lock().unwrap().remove(&room_id);
        tracing::warn!(%room_id, %host, call_id = %call.id, "another replica hosts this call now; ending it here");
        for member in call.members.values() {
            close_member(member).await;
            if let Some(cluster) = &self.cluster {
                cluster.close(member.connection).await;
            }
        }
        drop(guard);
        self.destroy_call(room_id, call).await;
    }

    async fn destroy_call(&self, room_id: Uuid, call: Call) {
        let instance = &self.instances[call.instance];
        instance.calls.fetch_sub(1, Ordering::Relaxed);
        let body = json!({"request": "destroy", "room": call.janus_room, "secret": self.secret});
        if let Err(error) = instance.control(body).await {
            tracing::warn!(%room_id, %error, "failed to destroy a call's Janus room");
        }
    }

    async fn join_janus(
        &self,
        call: &Call,
        room_id: Uuid,
        feed_id: u64,
        user_id: Uuid,
    ) -> CallResult<(Peer, HandleEvents)> {
        let janus_error = |error| CallFailure::janus(room_id, "join you to the call", error);
        let link = self.instances[call.instance]
            .link()
            .await
            .map_err(janus_error)?;
        let session = link.create_session().await.map_err(janus_error)?;
        let (publisher, events) = session.attach(VIDEOROOM).await.map_err(janus_error)?;
        let body = json!({
            "request": "join",
            "ptype": "publisher",
            "room": call.janus_room,
            "pin": call.pin,
            "id": feed_id,
            "display": user_id.to_string(),
        });
        let reply = match publisher.message(body, None).await {
            Ok(reply) => reply,
            Err(error) => {
                let _ = session.destroy().await;
                return Err(janus_error(error));
            }
        };
        Ok((
            Peer {
                session,
                publisher,
                private_id: reply.data["private_id"].as_u64(),
                published: Vec::new(),
                subscriber: None,
                subscribed: Vec::new(),
            },
            events,
        ))
    }

    /// Removes the user from the room's call, from any connection when
    /// `connection` is `None`, and ends the call when nobody is left.
    pub async fn leave(
        &self,
        state: &AppState,
        room_id: Uuid,
        user_id: Uuid,
        connection: Option<ConnectionKey>,
    ) -> CallResult<()> {
        let slot = self.slot(room_id);
        let mut guard = slot.lock().await;
        let Some(call) = guard.as_mut() else {
            return Err(not_in_call(room_id));
        };
        let owned = call
            .members
            .get(&user_id)
            .is_some_and(|member| connection.is_none_or(|key| key == member.connection));
        if !owned {
            return Err(not_in_call(room_id));
        }
        let member = call.members.remove(&user_id).unwrap();
        close_member(&member).await;
        let feed_id = member.info.lock().unwrap().feed_id;
        let call_id = call.id;
        let ended = call.members.is_empty();
        if ended {
            self.forget_call(room_id).await;
        } else {
            self.record_summary(room_id, call).await;
        }
        let finished = if ended { guard.take() } else { None };
        drop(guard);

        tracing::info!(%call_id, feed_id, "participant left");
        broadcast(
            state,
            room_id,
            CallEvent::ParticipantLeft { user_id, feed_id },
        )
        .await;
        if let Some(call) = finished {
            self.destroy_call(room_id, call).await;
            self.drop_slot(room_id, &slot);
            tracing::info!(%call_id, "call ended");
            broadcast(state, room_id, CallEvent::Ended { call_id }).await;
        }
        Ok(())
    }

    /// Removes `user_id` from the call of `room_id`, if they are in it, telling
    /// their connection why: they left the room, or a moderator removed or banned
    /// them, so they may no longer see or hear the call. The call may be hosted by
    /// another replica.
    pub async fn remove(&self, state: &AppState, room_id: Uuid, user_id: Uuid, reason: &str) {
        match &self.cluster {
            Some(cluster) if !self.hosts(room_id) => {
                cluster.remove_everywhere(room_id, user_id, reason).await;
            }
            _ => self.remove_here(state, room_id, user_id, reason).await,
        }
    }

    /// Removes `user_id` from the call of `room_id` that this replica hosts.
    pub(crate) async fn remove_here(
        &self,
        state: &AppState,
        room_id: Uuid,
        user_id: Uuid,
        reason: &str,
    ) {
        let frames = {
            let slot = self.slot(room_id);
            let guard = slot.lock().await;
            guard
                .as_ref()
                .and_then(|call| call.members.get(&user_id))
                .map(|member| member.frames.clone())
        };
        let Some(frames) = frames else {
            return;
        };
        let _ = frames.send(Control::CallSignal {
            room_id,
            signal: CallSignal::Removed {
                reason: reason.to_string(),
            },
        });
        if let Err(failure) = self.leave(state, room_id, user_id, None).await {
            tracing::debug!(%room_id, %user_id, message = failure.message, "the user had already left the call");
        }
        tracing::info!(%room_id, %user_id, reason, "removed a participant from the call");
    }

    /// Ends the calls of a WebSocket of this process that closed, here and on the
    /// replicas that host them.
    pub async fn connection_closed(&self, state: &AppState, user_id: Uuid, connection: u64) {
        let connection = ConnectionKey {
            replica: self.replica,
            id: connection,
        };
        self.disconnect(state, user_id, connection).await;
        if let Some(cluster) = &self.cluster {
            cluster.disconnected(connection).await;
        }
    }

    /// Removes the connection's user from every call hosted here that it joined on
    /// that connection.
    pub(crate) async fn disconnect(
        &self,
        state: &AppState,
        user_id: Uuid,
        connection: ConnectionKey,
    ) {
        let rooms: Vec<Uuid> = self.rooms.lock().unwrap().keys().copied().collect();
        for room_id in rooms {
            let slot = self.slot(room_id);
            let joined = slot.lock().await.as_ref().is_some_and(|call| {
                call.members
                    .get(&user_id)
                    .is_some_and(|member| member.connection == connection)
            });
            if joined {
                let _ = self.leave(state, room_id, user_id, Some(connection)).await;
            }
        }
    }

    async fn relay(
        &self,
        state: &AppState,
        room_id: Uuid,
        caller: &Caller,
        user_id: Uuid,
        member: &Arc<Member>,
        request: CallRequest,
    ) -> CallResult<CallReply> {
        match request {
            CallRequest::Publish { jsep, restart } => {
                self.publish(state, room_id, caller, member, jsep, restart)
                    .await
            }
            CallRequest::Subscribe { add, remove } => {
                self.subscribe(state, room_id, member, add, remove).await
            }
            CallRequest::Start { jsep } => start(room_id, member, jsep).await,
            CallRequest::RestartSubscriber => restart_subscriber(room_id, member).await,
            CallRequest::Configure {
                audio_muted,
                camera_off,
                substreams,
            } => {
                configure(state, room_id, user_id, member, audio_muted, camera_off).await?;
                if !substreams.is_empty() {
                    let peer = member.peer.lock().await;
                    let subscriber = peer.subscriber.as_ref().ok_or_else(|| {
                        invalid(room_id, "substreams need a subscription; subscribe first")
                    })?;
                    let streams: Vec<Value> = substreams
                        .iter()
                        .map(|choice| json!({"mid": choice.mid, "substream": choice.substream}))
                        .collect();
                    subscriber
                        .message(json!({"request": "configure", "streams": streams}), None)
                        .await
                        .map_err(|error| {
                            CallFailure::janus(room_id, "change the simulcast layer", error)
                        })?;
                }
                Ok(CallReply::Configured)
            }
            CallRequest::Trickle { target, candidate } => {
                trickle(room_id, member, target, candidate).await
            }
            CallRequest::Join { .. }
            | CallRequest::Leave
            | CallRequest::RaiseHand
            | CallRequest::LowerHand { .. }
            | CallRequest::InviteToSpeak { .. }
            | CallRequest::MoveToAudience { .. } => unreachable!("handled by the caller"),
        }
    }

    async fn publish(
        &self,
        state: &AppState,
        room_id: Uuid,
        caller: &Caller,
        member: &Arc<Member>,
        jsep: Jsep,
        restart: bool,
    ) -> CallResult<CallReply> {
        if jsep.kind != JsepKind::Offer {
            return Err(invalid(room_id, "publish needs an SDP offer"));
        }
        let mut peer = member.peer.lock().await;
        // The role is read under the peer lock, which `move_to_audience` takes to
        // unpublish after it changed the role, so a publish cannot slip past a move.
        // A member who became a moderator since joining hosts a presentation.
        let (user_id, role) = {
            let info = member.info.lock().unwrap();
            (info.user_id, info.role)
        };
        if !role.may_publish() && !caller.room_role.can_moderate() {
            return Err(stage::audience_may_not_publish(room_id));
        }
        let body = if !peer.published.is_empty() || restart {
            json!({"request": "configure"})
        } else {
            json!({"request": "publish"})
        };
        let reply = peer
            .publisher
            .message(body, Some(json!(jsep)))
            .await
            .map_err(|error| CallFailure::janus(room_id, "publish your media", error))?;
        let answer = parse_jsep(room_id, reply.jsep)?;
        let streams = parse_published(&reply.data["streams"]);
        if !streams.is_empty() {
            peer.published = streams;
        }
        let streams = peer.published.clone();
        drop(peer);
        // A renegotiation of a live connection changes what others may subscribe to
        // at once; a first publish waits for Janus's `webrtcup`.
        let live = !member.info.lock().unwrap().streams.is_empty();
        if live {
            announce_streams(state, room_id, user_id, member, streams.clone()).await;
        }
        Ok(CallReply::Published {
            jsep: answer,
            streams,
        })
    }

    async fn subscribe(
        &self,
        state: &AppState,
        room_id: Uuid,
        member: &Arc<Member>,
        add: Vec<StreamRef>,
        remove: Vec<StreamRef>,
    ) -> CallResult<CallReply> {
        if add.is_empty() && remove.is_empty() {
            return Err(invalid(room_id, "subscribe needs streams to add or remove"));
        }
        let (janus_room, pin, feeds) = {
            let slot = self.slot(room_id);
            let call = slot.lock().await;
            let call = call.as_ref().ok_or_else(|| not_in_call(room_id))?;
            let feeds: HashMap<u64, Uuid> = call
                .members
                .iter()
                .map(|(user_id, member)| (member.info.lock().unwrap().feed_id, *user_id))
                .collect();
            (call.janus_room, call.pin.clone(), feeds)
        };
        let own_feed = member.info.lock().unwrap().feed_id;
        if let Some(stream) = add
            .iter()
            .find(|stream| !feeds.contains_key(&stream.feed_id) || stream.feed_id == own_feed)
        {
            return Err(invalid(
                room_id,
                &format!(
                    "feed {} is not another participant of this call; subscribe to the \
                     feed_id of a participant from join or participant_joined",
                    stream.feed_id
                ),
            ));
        }
        let to_janus = |streams: &[StreamRef]| -> Vec<Value> {
            streams
                .iter()
                .map(|stream| match &stream.mid {
                    Some(mid) => json!({"feed": stream.feed_id, "mid": mid}),
                    None => json!({"feed": stream.feed_id}),
                })
                .collect()
        };

        let mut peer = member.peer.lock().await;
        let reply = match &peer.subscriber {
            None => {
                if add.is_empty() {
                    return Err(invalid(room_id, "nothing is subscribed yet to remove"));
                }
                let (handle, events) = peer.session.attach(VIDEOROOM).await.map_err(|error| {
                    CallFailure::janus(room_id, "open your subscription", error)
                })?;
                let mut body = json!({
                    "request": "join",
                    "ptype": "subscriber",
                    "room": janus_room,
                    "pin": pin,
                    "streams": to_janus(&add),
                });
                if let Some(private_id) = peer.private_id {
                    body["private_id"] = json!(private_id);
                }
                let reply = handle
                    .message(body, None)
                    .await
                    .map_err(|error| subscribe_failure(room_id, error))?;
                peer.subscriber = Some(handle);
                tokio::spawn(watch_subscriber(
                    state.clone(),
                    room_id,
                    member.clone(),
                    feeds.clone(),
                    events,
                ));
                reply
            }
            Some(handle) => {
                let mut body = json!({"request": "update"});
                if !add.is_empty() {
                    body["subscribe"] = json!(to_janus(&add));
                }
                if !remove.is_empty() {
                    body["unsubscribe"] = json!(to_janus(&remove));
                }
                handle
                    .message(body, None)
                    .await
                    .map_err(|error| subscribe_failure(room_id, error))?
            }
        };
        let streams = parse_subscribed(&reply.data["streams"], &feeds);
        peer.subscribed = streams.clone();
        let jsep = match reply.jsep {
            Some(jsep) => Some(parse_jsep(room_id, Some(jsep))?),
            None => None,
        };
        Ok(CallReply::Subscribed { jsep, streams })
    }
}

impl Instance {
    fn new(
        url: &str,
        api_secret: &Option<String>,
        admin_key: &Option<String>,
        launch: Option<supervisor::Launch>,
    ) -> Self {
        Instance {
            url: url.to_string(),
            api_secret: api_secret.clone(),
            admin_key: admin_key.clone(),
            link: tokio::sync::Mutex::new(None),
            launch,
            launched: std::sync::atomic::AtomicBool::new(false),
            control: tokio::sync::Mutex::new(None),
            calls: AtomicUsize::new(0),
        }
    }
}

/// Checks that the user may take part in the room's call, on every step: a member
/// of the room, whatever the role. Returns the user's names and room role.
async fn authorize(state: &AppState, user_id: Uuid, room_id: Uuid) -> CallResult<Caller> {
    let internal = |error: crate::store::StoreError| {
        tracing::error!(%error, "failed to check a call participant");
        CallFailure::new(
            CallErrorCode::CallsUnavailable,
            format!("The server failed to check your membership of room {room_id}; try again."),
        )
    };
    let not_found = || {
        CallFailure::new(
            CallErrorCode::RoomNotFound,
            format!("Room {room_id} does not exist or you may not see it."),
        )
    };
    let room = state
        .store
        .room_by_id(room_id)
        .await
        .map_err(internal)?
        .ok_or_else(not_found)?;
    let membership = state
        .store
        .membership(room_id, user_id)
        .await
        .map_err(internal)?;
    let Some(membership) = membership else {
        let visible = crate::http::rooms::can_see(state, user_id, &room)
            .await
            .unwrap_or(false);
        if !visible {
            return Err(not_found());
        }
        return Err(CallFailure::new(
            CallErrorCode::NotAMember,
            format!(
                "You are not a member of room {} ({room_id}); join the room before its call.",
                room.path
            ),
        ));
    };
    let user = state
        .store
        .user_by_id(user_id)
        .await
        .map_err(internal)?
        .ok_or_else(not_found)?;
    Ok(Caller {
        username: user.username,
        display_name: user.display_name,
        room_role: membership.role,
    })
}

/// VideoRoom's error code for a feed that does not exist or has no media yet.
const JANUS_NO_SUCH_FEED: i64 = 428;

fn subscribe_failure(room_id: Uuid, error: JanusError) -> CallFailure {
    if let JanusError::Rejected {
        code: JANUS_NO_SUCH_FEED,
        ..
    } = error
    {
        return invalid(
            room_id,
            "a requested feed is not sending media yet; subscribe to it after its \
             published event",
        );
    }
    CallFailure::janus(room_id, "subscribe to the streams", error)
}

/// Records the participant's streams as live and tells the room.
async fn announce_streams(
    state: &AppState,
    room_id: Uuid,
    user_id: Uuid,
    member: &Member,
    streams: Vec<PublishedStream>,
) {
    let feed_id = {
        let mut info = member.info.lock().unwrap();
        info.streams = streams.clone();
        info.feed_id
    };
    broadcast(
        state,
        room_id,
        CallEvent::Published {
            user_id,
            feed_id,
            streams,
        },
    )
    .await;
}

fn not_in_call(room_id: Uuid) -> CallFailure {
    CallFailure::new(
        CallErrorCode::NotInCall,
        format!("You are not in the call of room {room_id}; send join first."),
    )
}

fn invalid(room_id: Uuid, what: &str) -> CallFailure {
    CallFailure::new(
        CallErrorCode::InvalidRequest,
        format!("Invalid call request for room {room_id}: {what}."),
    )
}

fn random_id() -> u64 {
    rand::rng().random_range(1..=MAX_JANUS_ID)
}

fn random_secret() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

async fn close_member(member: &Member) {
    member.stop.cancel();
    let peer = member.peer.lock().await;
    peer.publisher.forget();
    if let Some(subscriber) = &peer.subscriber {
        subscriber.forget();
    }
    if let Err(error) = peer.session.destroy().await {
        tracing::debug!(%error, "failed to destroy a participant's Janus session");
    }
}

async fn start(room_id: Uuid, member: &Member, jsep: Jsep) -> CallResult<CallReply> {
    if jsep.kind != JsepKind::Answer {
        return Err(invalid(
            room_id,
            "start needs the SDP answer to the subscriber offer",
        ));
    }
    let peer = member.peer.lock().await;
    let subscriber = peer
        .subscriber
        .as_ref()
        .ok_or_else(|| invalid(room_id, "nothing is subscribed yet; subscribe first"))?;
    subscriber
        .message(json!({"request": "start"}), Some(json!(jsep)))
        .await
        .map_err(|error| CallFailure::janus(room_id, "start your subscription", error))?;
    Ok(CallReply::Started)
}

async fn restart_subscriber(room_id: Uuid, member: &Member) -> CallResult<CallReply> {
    let mut peer = member.peer.lock().await;
    let subscriber = peer
        .subscriber
        .as_ref()
        .ok_or_else(|| invalid(room_id, "nothing is subscribed yet; subscribe first"))?;
    let reply = subscriber
        .message(json!({"request": "configure", "restart": true}), None)
        .await
        .map_err(|error| CallFailure::janus(room_id, "restart your subscription", error))?;
    let jsep = parse_jsep(room_id, reply.jsep)?;
    let streams = peer.subscribed.clone();
    peer.subscribed = streams.clone();
    Ok(CallReply::Subscribed {
        jsep: Some(jsep),
        streams,
    })
}

async fn configure(
    state: &AppState,
    room_id: Uuid,
    user_id: Uuid,
    member: &Member,
    audio_muted: Option<bool>,
    camera_off: Option<bool>,
) -> CallResult<()> {
    if audio_muted.is_none() && camera_off.is_none() {
        return Ok(());
    }
    let streams = member.peer.lock().await.published.clone();
    let (was_muted, was_off) = {
        let info = member.info.lock().unwrap();
        (info.audio_muted, info.camera_off)
    };
    // Janus stops relaying a stream whose `send` is false, so a muted participant's
    // audio stops at the server even if the client keeps sending it.
    let mut changes = Vec::new();
    for stream in &streams {
        let send = match stream.kind {
            MediaKind::Audio => audio_muted.map(|muted| !muted),
            MediaKind::Video => camera_off.map(|off| !off),
        };
        if let Some(send) = send {
            changes.push(json!({"mid": stream.mid, "send": send}));
        }
    }
    if !changes.is_empty() {
        let peer = member.peer.lock().await;
        peer.publisher
            .message(json!({"request": "configure", "streams": changes}), None)
            .await
            .map_err(|error| CallFailure::janus(room_id, "change what you send", error))?;
    }
    {
        let mut info = member.info.lock().unwrap();
        if let Some(muted) = audio_muted {
            info.audio_muted = muted;
        }
        if let Some(off) = camera_off {
            info.camera_off = off;
        }
    }
    match audio_muted {
        Some(true) if !was_muted => broadcast(state, room_id, CallEvent::Muted { user_id }).await,
        Some(false) if was_muted => broadcast(state, room_id, CallEvent::Unmuted { user_id }).await,
        _ => {}
    }
    match camera_off {
        Some(true) if !was_off => broadcast(state, room_id, CallEvent::CameraOff { user_id }).await,
        Some(false) if was_off => broadcast(state, room_id, CallEvent::CameraOn { user_id }).await,
        _ => {}
    }
    Ok(())
}

async fn trickle(
    room_id: Uuid,
    member: &Member,
    target: PeerRole,
    candidate: Option<IceCandidate>,
) -> CallResult<CallReply> {
    let peer = member.peer.lock().await;
    let handle = match target {
        PeerRole::Publisher => &peer.publisher,
        PeerRole::Subscriber => peer
            .subscriber
            .as_ref()
            .ok_or_else(|| invalid(room_id, "nothing is subscribed yet; subscribe first"))?,
    };
    let candidate = match candidate {
        Some(candidate) => janus_candidate(&candidate),
        None => json!({"completed": true}),
    };
    handle
        .trickle(candidate)
        .await
        .map_err(|error| CallFailure::janus(room_id, "pass on your ICE candidate", error))?;
    Ok(CallReply::Trickled)
}

/// Writes a candidate as Janus's `trickle` reads it: with the `sdpMid` and
/// `sdpMLineIndex` names of the W3C `RTCIceCandidateInit`.
fn janus_candidate(candidate: &IceCandidate) -> Value {
    let mut value = json!({"candidate": candidate.candidate});
    if let Some(mid) = &candidate.sdp_mid {
        value["sdpMid"] = json!(mid);
    }
    if let Some(index) = candidate.sdp_m_line_index {
        value["sdpMLineIndex"] = json!(index);
    }
    value
}

fn parse_jsep(room_id: Uuid, jsep: Option<Value>) -> CallResult<Jsep> {
    let jsep = jsep.ok_or_else(|| {
        CallFailure::new(
            CallErrorCode::MediaServerError,
            format!("The media server sent no session description for room {room_id}; try again."),
        )
    })?;
    serde_json::from_value(jsep).map_err(|error| {
        CallFailure::new(
            CallErrorCode::MediaServerError,
            format!("The media server sent an invalid session description ({error}); try again."),
        )
    })
}

fn media_kind(value: &Value) -> Option<MediaKind> {
    match value.as_str()? {
        "audio" => Some(MediaKind::Audio),
        "video" => Some(MediaKind::Video),
        _ => None,
    }
}

/// The publisher's streams from a VideoRoom `configured` event.
fn parse_published(streams: &Value) -> Vec<PublishedStream> {
    let Some(streams) = streams.as_array() else {
        return Vec::new();
    };
    streams
        .iter()
        .filter(|stream| stream["disabled"] != true)
        .filter_map(|stream| {
            Some(PublishedStream {
                mid: stream["mid"].as_str()?.to_string(),
                kind: media_kind(&stream["type"])?,
                codec: stream["codec"].as_str().map(str::to_string),
                simulcast: stream["simulcast"].as_bool().unwrap_or(false)
                    || stream["simulcast"].is_array(),
            })
        })
        .collect()
}

/// The subscriber's streams from a VideoRoom `attached` or `updated` event.
fn parse_subscribed(streams: &Value, feeds: &HashMap<u64, Uuid>) -> Vec<SubscribedStream> {
    let Some(streams) = streams.as_array() else {
        return Vec::new();
    };
    streams
        .iter()
        .filter(|stream| stream["active"] != false)
        .filter_map(|stream| {
            let feed_id = stream["feed_id"].as_u64()?;
            Some(SubscribedStream {
                mid: stream["mid"].as_str()?.to_string(),
                feed_id,
                feed_mid: stream["feed_mid"].as_str()?.to_string(),
                kind: media_kind(&stream["type"])?,
                user_id: feeds.get(&feed_id).copied(),
            })
        })
        .collect()
}

/// Refreshes the leases and summaries of the calls this replica hosts until
/// shutdown, and ends those whose lease another replica took.
async fn keep_leases(state: AppState) {
    let Some(cluster) = state.calls.cluster.clone() else {
        return;
    };
    let mut tick = tokio::time::interval(cluster::LEASE_REFRESH);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = state.shutdown.cancelled() => return,
        }
        let hosted: Vec<(Uuid, CallSummary)> = state
            .calls
            .hosted
            .lock()
            .unwrap()
            .iter()
            .map(|(room_id, summary)| (*room_id, summary.clone()))
            .collect();
        for (room_id, summary) in hosted {
            if let Some(Claim::Held(host)) = cluster.refresh(room_id, &summary).await {
                state.calls.evict(room_id, host).await;
            }
        }
    }
}

/// A call request on its way to the replica that hosts the room's call.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Routed {
    pub request_id: u64,
    pub room_id: Uuid,
    pub request: CallRequest,
    /// How many times replicas passed it on.
    pub hops: u8,
}

/// Passes a request on to `host`, or replies with an error when it could not.
async fn forward(cluster: &Cluster, host: Uuid, context: &CallContext, mut routed: Routed) {
    let (request_id, room_id) = (routed.request_id, routed.room_id);
    routed.hops += 1;
    if !cluster.forward(host, context, routed).await {
        let failure = CallFailure::unreachable(room_id);
        let _ = context
            .frames
            .send(reply_frame(request_id, room_id, Err(failure)));
    }
}

/// Builds the frame that replies to a request.
fn reply_frame(request_id: u64, room_id: Uuid, result: CallResult<CallReply>) -> Control {
    match result {
        Ok(reply) => Control::CallReply {
            request_id,
            room_id,
            reply,
        },
        Err(failure) => Control::CallError {
            request_id,
            room_id,
            code: failure.code,
            message: failure.message,
        },
    }
}

/// Sends `event` to every member of the room, on every replica.
pub async fn broadcast(state: &AppState, room_id: Uuid, event: CallEvent) {
    let members = match state.store.members(room_id).await {
        Ok(members) => members,
        Err(error) => {
            tracing::warn!(%room_id, %error, "failed to read the members for a call event");
            return;
        }
    };
    let frame = ServerFrame::Control(Control::CallEvent { room_id, event });
    let Ok(text) = serde_json::to_string(&frame) else {
        return;
    };
    let recipients: Arc<[Uuid]> = members.iter().map(|member| member.user.id).collect();
    state.bus.publish_frame(recipients, text.into()).await;
}

fn signal(member: &Member, room_id: Uuid, signal: CallSignal) {
    let _ = member.frames.send(Control::CallSignal { room_id, signal });
}

/// Core Janus events that concern either handle.
fn core_signal(value: &Value, target: PeerRole) -> Option<CallSignal> {
    match value["janus"].as_str()? {
        "webrtcup" => Some(CallSignal::WebrtcUp { target }),
        "hangup" => Some(CallSignal::Hangup {
            target,
            reason: value["reason"].as_str().unwrap_or("hangup").to_string(),
        }),
        "slowlink" => Some(CallSignal::Slowlink {
            target,
            uplink: value["uplink"].as_bool().unwrap_or(false),
            lost: value["lost"].as_u64().unwrap_or(0),
        }),
        _ => None,
    }
}

async fn watch_publisher(
    state: AppState,
    room_id: Uuid,
    user_id: Uuid,
    member: Arc<Member>,
    mut events: HandleEvents,
) {
    loop {
        let value = tokio::select! {
            value = events.recv() => value,
            () = member.stop.cancelled() => return,
        };
        let Some(value) = value else { return };
        if let Some(core) = core_signal(&value, PeerRole::Publisher) {
            if matches!(core, CallSignal::WebrtcUp { .. }) {
                let streams = member.peer.lock().await.published.clone();
                announce_streams(&state, room_id, user_id, &member, streams).await;
            }
            signal(&member, room_id, core);
            continue;
        }
        let data = &value["plugindata"]["data"];
        let speaking = match data["videoroom"].as_str() {
            Some("talking") => true,
            Some("stopped-talking") => false,
            _ => continue,
        };
        broadcast(&state, room_id, CallEvent::Speaking { user_id, speaking }).await;
    }
}

async fn watch_subscriber(
    _state: AppState,
    room_id: Uuid,
    member: Arc<Member>,
    feeds: HashMap<u64, Uuid>,
    mut events: HandleEvents,
) {
    loop {
        let value = tokio::select! {
            value = events.recv() => value,
            () = member.stop.cancelled() => return,
        };
        let Some(value) = value else { return };
        if let Some(core) = core_signal(&value, PeerRole::Subscriber) {
            signal(&member, room_id, core);
            continue;
        }
        // Janus renegotiates on its own when a subscribed feed goes away.
        let Some(jsep) = value.get("jsep").filter(|jsep| !jsep.is_null()) else {
            continue;
        };
        let Ok(jsep) = serde_json::from_value::<Jsep>(jsep.clone()) else {
            continue;
        };
        let streams = parse_subscribed(&value["plugindata"]["data"]["streams"], &feeds);
        member.peer.lock().await.subscribed = streams.clone();
        signal(
            &member,
            room_id,
            CallSignal::SubscriberOffer { jsep, streams },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn janus_ice_failure_names_the_cause() {
        let rejected = |reason: &str| JanusError::Rejected {
            request: "message".into(),
            code: 490,
            reason: reason.into(),
        };
        let failure = CallFailure::janus(
            Uuid::nil(),
            "publish your media",
            rejected("Error setting ICE locally"),
        );
        assert!(failure.message.contains("loopback"), "{}", failure.message);
        assert!(
            !failure.message.contains("try again"),
            "{}",
            failure.message
        );

        let other = CallFailure::janus(Uuid::nil(), "publish your media", rejected("Unknown"));
        assert!(other.message.contains("try again"), "{}", other.message);
    }

    #[test]
    fn published_streams_parse() {
        let streams = json!([
            {"type": "audio", "mindex": 0, "mid": "0", "codec": "opus"},
            {"type": "video", "mindex": 1, "mid": "1", "codec": "vp8", "simulcast": true},
            {"type": "data", "mindex": 2, "mid": "2"}
        ]);
        let parsed = parse_published(&streams);
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].kind, MediaKind::Audio);
        assert!(parsed[1].simulcast);
    }

    #[test]
    fn subscribed_streams_name_the_user() {
        let user = Uuid::now_v7();
        let feeds = HashMap::from([(7, user)]);
        let streams = json!([
            {"type": "audio", "mid": "0", "feed_id": 7, "feed_mid": "0", "active": true},
            {"type": "video", "mid": "1", "feed_id": 7, "feed_mid": "1", "active": false}
        ]);
        let parsed = parse_subscribed(&streams, &feeds);
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed[0].user_id, Some(user));
    }

    #[test]
    fn candidates_reach_janus_with_w3c_names() {
        let candidate = IceCandidate {
            candidate: "candidate:1 1 udp 2130706431 127.0.0.3 40000 typ host".into(),
            sdp_mid: Some("0".into()),
            sdp_m_line_index: Some(0),
        };
        let value = janus_candidate(&candidate);
        assert_eq!(value["candidate"], candidate.candidate.as_str());
        assert_eq!(value["sdpMid"], "0");
        assert_eq!(value["sdpMLineIndex"], 0);
        let without_mid = IceCandidate {
            sdp_mid: None,
            ..candidate
        };
        assert!(janus_candidate(&without_mid).get("sdpMid").is_none());
    }

    #[test]
    fn random_ids_fit_in_javascript_numbers() {
        for _ in 0..1000 {
            let id = random_id();
            assert!(id >= 1);
            assert!(id <= MAX_JANUS_ID);
        }
    }
}
