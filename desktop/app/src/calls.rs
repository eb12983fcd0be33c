//! The commands of a room's call: device lists, the pre-join preview, joining and
//! leaving, the microphone and camera switches, and what the call view polls.
//!
//! Pictures do not cross the IPC as JSON. The engine hands every decoded picture to
//! a [`PictureBoard`], which keeps the newest one per tile. The call view fetches
//! `roomler-frame://localhost/<tile>?after=<seq>` (see [`FRAME_SCHEME`]) for each
//! visible tile at its own pace. So a tile that the page does not draw costs no
//! conversion, and a slow page skips pictures instead of queueing them. Each response
//! is a 16-byte header (width and height as little-endian u32, the picture's
//! sequence number as little-endian u64) and the picture as RGBA, which the page
//! puts into a canvas. `<tile>` is `local` for the self view or a feed id.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use roomler_client::call::{
    AudioInput, CallError, CallOptions, CallSession, DeviceFailure, FailureReporter, MediaOutput,
    MediaProblem, MediaSetup, MediaState, Preview, RemoteStats, SignalingError, SpeakerChoice,
    Tile, TileLayout, TileSize, VideoInput, start_preview,
};
use roomler_media::{AudioLevel, DeviceKind, SourceError, VideoFrame};
use serde::{Deserialize, Serialize};
use tauri::http::{Response, StatusCode};
use tauri::{AppHandle, Manager, State};
use uuid::Uuid;

use crate::dto::{CallFormat, CallRole};
use crate::error::{CommandError, ErrorCode};
use crate::state::AppState;

type CommandResult<T> = Result<T, CommandError>;

/// The URI scheme that serves the call's pictures.
pub const FRAME_SCHEME: &str = "roomler-frame";
/// Bytes before the RGBA data of a picture.
pub const FRAME_HEADER_BYTES: usize = 16;

/// A camera, microphone or speaker as the device pickers show it.
#[derive(Debug, Clone, Serialize, specta::Type)]
pub struct Device {
    /// The name to pass back when choosing the device.
    pub name: String,
    pub description: String,
    pub is_default: bool,
}

/// The devices of this computer. A list that the system could not read is empty,
/// with the reason in `problems`.
#[derive(Debug, Clone, Serialize, specta::Type)]
pub struct CallDevices {
    pub cameras: Vec<Device>,
    pub microphones: Vec<Device>,
    pub speakers: Vec<Device>,
    pub problems: Vec<String>,
}

/// The source of a call's video or audio.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum InputChoice {
    /// The test pattern or the test tone, for computers without the device.
    Synthetic,
    /// The device of this name, or the system's default one.
    Device { name: Option<String> },
}

/// The device that plays a call's audio.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum OutputChoice {
    /// No sound, for computers without a speaker.
    Off,
    /// The device of this name, or the system's default one.
    Device { name: Option<String> },
}

/// The camera, microphone and speaker chosen on the pre-join screen.
#[derive(Debug, Clone, Serialize, Deserialize, specta::Type)]
pub struct MediaChoice {
    pub camera: InputChoice,
    pub microphone: InputChoice,
    pub speaker: OutputChoice,
}

/// A participant of a call, as the tiles show them.
#[derive(Debug, Clone, Serialize, specta::Type)]
pub struct CallParticipant {
    pub user_id: Uuid,
    pub username: String,
    pub display_name: String,
    pub feed_id: u64,
    pub audio_muted: bool,
    pub camera_off: bool,
    pub role: CallRole,
    /// Whether the participant, an audience member, has a hand raised to speak.
    pub hand_raised: bool,
}

impl From<roomler_client::call::CallParticipant> for CallParticipant {
    fn from(participant: roomler_client::call::CallParticipant) -> Self {
        CallParticipant {
            user_id: participant.user_id,
            username: participant.username,
            display_name: participant.display_name,
            feed_id: participant.feed_id,
            audio_muted: participant.muted,
            camera_off: participant.camera_off,
            role: participant.role.into(),
            hand_raised: participant.hand_raised,
        }
    }
}

/// A kind of device, as a problem names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, specta::Type)]
#[serde(rename_all = "snake_case")]
pub enum MediaDevice {
    Camera,
    Microphone,
    Speaker,
}

impl From<DeviceKind> for MediaDevice {
    fn from(kind: DeviceKind) -> Self {
        match kind {
            DeviceKind::Camera => MediaDevice::Camera,
            DeviceKind::Microphone => MediaDevice::Microphone,
            DeviceKind::Speaker => MediaDevice::Speaker,
        }
    }
}

/// The kind of a problem of the user's own media.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, specta::Type)]
#[serde(rename_all = "snake_case")]
pub enum MediaProblemKind {
    /// The device stopped during the call, e.g. because it was unplugged.
    Lost,
    /// Publishing failed after a host's invitation to speak, so the user went back
    /// to the audience.
    PublishFailed,
}

/// A problem of the user's own media in a call, until other devices replace the
/// failed one.
#[derive(Debug, Clone, PartialEq, Serialize, specta::Type)]
pub struct CallMediaProblem {
    pub kind: MediaProblemKind,
    /// The device that failed, or null when publishing failed for another reason.
    pub device: Option<MediaDevice>,
    /// The failure, and the device to pick instead.
    pub message: String,
}

impl From<&MediaProblem> for CallMediaProblem {
    fn from(problem: &MediaProblem) -> Self {
        match problem {
            MediaProblem::DeviceLost { kind, error } => CallMediaProblem {
                kind: MediaProblemKind::Lost,
                device: Some((*kind).into()),
                message: device_advice(error),
            },
            MediaProblem::PublishFailed { error } => {
                let (device, message) = match &**error {
                    CallError::Media(roomler_client::call::media::MediaError::Device(error)) => (
                        source_kind(error).map(MediaDevice::from),
                        device_advice(error),
                    ),
                    other => (None, other.to_string()),
                };
                CallMediaProblem {
                    kind: MediaProblemKind::PublishFailed,
                    device,
                    message,
                }
            }
        }
    }
}

/// The user's own microphone and camera as the others see them, and the problems
/// of the user's devices.
#[derive(Debug, Clone, PartialEq, Serialize, specta::Type)]
pub struct CallMediaState {
    /// Whether the others hear nothing: the user muted, or the microphone was lost.
    pub muted: bool,
    /// Whether the others see the camera as off: the user turned it off, or the
    /// camera was lost.
    pub camera_off: bool,
    pub problems: Vec<CallMediaProblem>,
}

impl From<&MediaState> for CallMediaState {
    fn from(state: &MediaState) -> Self {
        CallMediaState {
            muted: state.muted,
            camera_off: state.camera_off,
            problems: state.problems.iter().map(CallMediaProblem::from).collect(),
        }
    }
}

/// The call the user just joined.
#[derive(Debug, Clone, Serialize, specta::Type)]
pub struct JoinedCall {
    pub room_id: Uuid,
    pub call_id: Uuid,
    /// The user's own feed.
    pub feed_id: u64,
    /// The other participants when the user joined; `call-participants` events
    /// carry every later list.
    pub participants: Vec<CallParticipant>,
    pub format: CallFormat,
    /// The user's own role; a `role_changed` event with the user's feed changes it.
    pub role: CallRole,
    /// The user's own media; `call-media` events carry every later state.
    pub media: CallMediaState,
}

/// The audio level of one tile: `local` or a feed id, as in the picture URLs.
#[derive(Debug, Clone, Serialize, specta::Type)]
pub struct TileLevel {
    pub tile: String,
    /// Level in dBov: 0 is full scale, -127 silence.
    pub dbov: f32,
}

/// Counts of what one remote participant's streams delivered so far, for the
/// quality indicator.
#[derive(Debug, Clone, Serialize, specta::Type)]
pub struct TileStats {
    pub feed_id: u64,
    pub video_packets_received: u64,
    pub video_frames_received: u64,
    pub video_frames_decoded: u64,
    pub audio_packets_received: u64,
    pub audio_frames_decoded: u64,
}

impl From<RemoteStats> for TileStats {
    fn from(stats: RemoteStats) -> Self {
        TileStats {
            feed_id: stats.feed_id,
            video_packets_received: stats.video_packets_received,
            video_frames_received: stats.video_frames_received,
            video_frames_decoded: stats.video_frames_decoded,
            audio_packets_received: stats.audio_packets_received,
            audio_frames_decoded: stats.audio_frames_decoded,
        }
    }
}

/// A room's call as the room list shows it.
#[derive(Debug, Clone, Serialize, specta::Type)]
pub struct RoomCall {
    pub room_id: Uuid,
    pub call: crate::dto::CallSummary,
}

/// Names a tile as the picture URLs and [`TileLevel`] do.
pub fn tile_name(tile: Tile) -> String {
    match tile {
        Tile::Local => "local".into(),
        Tile::Remote { feed_id } => feed_id.to_string(),
    }
}

/// Reads a tile's name back; `None` for anything else.
pub fn parse_tile(name: &str) -> Option<Tile> {
    match name {
        "local" => Some(Tile::Local),
        _ => name.parse().ok().map(|feed_id| Tile::Remote { feed_id }),
    }
}

#[derive(Debug)]
struct Stored {
    seq: u64,
    picture: Arc<VideoFrame>,
}

/// The newest picture and audio level of every tile. The media threads write it;
/// the frame scheme and [`call_levels`] read it.
#[derive(Debug, Default)]
pub struct PictureBoard {
    pictures: Mutex<HashMap<Tile, Stored>>,
    levels: Mutex<HashMap<Tile, f32>>,
    next_seq: std::sync::atomic::AtomicU64,
}

impl PictureBoard {
    /// Returns the newest picture of `tile` if it is newer than `after`, as the frame
    /// scheme sends it: the header, then RGBA.
    pub fn encoded_after(&self, tile: Tile, after: u64) -> Option<Vec<u8>> {
        let (seq, picture) = {
            let pictures = self.pictures.lock().unwrap();
            let stored = pictures.get(&tile).filter(|stored| stored.seq > after)?;
            (stored.seq, stored.picture.clone())
        };
        let pixels = picture.width as usize * picture.height as usize;
        let mut body = Vec::with_capacity(FRAME_HEADER_BYTES + pixels * 4);
        body.extend_from_slice(&picture.width.to_le_bytes());
        body.extend_from_slice(&picture.height.to_le_bytes());
        body.extend_from_slice(&seq.to_le_bytes());
        picture.write_rgba(&mut body);
        Some(body)
    }

    pub fn levels(&self) -> Vec<TileLevel> {
        let mut levels: Vec<TileLevel> = self
            .levels
            .lock()
            .unwrap()
            .iter()
            .map(|(tile, dbov)| TileLevel {
                tile: tile_name(*tile),
                dbov: *dbov,
            })
            .collect();
        levels.sort_by(|left, right| left.tile.cmp(&right.tile));
        levels
    }

    /// Forgets every tile, e.g. after leaving a call.
    pub fn clear(&self) {
        self.pictures.lock().unwrap().clear();
        self.levels.lock().unwrap().clear();
    }
}

impl MediaOutput for PictureBoard {
    fn picture(&self, tile: Tile, picture: Arc<VideoFrame>) {
        let seq = self
            .next_seq
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        self.pictures
            .lock()
            .unwrap()
            .insert(tile, Stored { seq, picture });
    }

    fn level(&self, tile: Tile, level: AudioLevel) {
        self.levels.lock().unwrap().insert(tile, level.dbov());
    }
}

/// The call state of the app: at most one preview and one call at a time.
#[derive(Default)]
pub struct Calls {
    board: Arc<PictureBoard>,
    preview: Mutex<Option<Preview>>,
    /// The number of previews started, so that a device lost by a replaced preview
    /// is ignored.
    preview_generation: AtomicU64,
    active: tokio::sync::Mutex<Option<(Uuid, CallSession)>>,
}

impl Calls {
    pub fn board(&self) -> &Arc<PictureBoard> {
        &self.board
    }

    fn setup(&self, choice: &MediaChoice) -> MediaSetup {
        MediaSetup {
            video: match &choice.camera {
                InputChoice::Synthetic => VideoInput::TestPattern,
                InputChoice::Device { name } => VideoInput::Camera { name: name.clone() },
            },
            audio: match &choice.microphone {
                // A quiet A: audible on a speaker without being unpleasant.
                InputChoice::Synthetic => AudioInput::Tone { hz: 440.0 },
                InputChoice::Device { name } => AudioInput::Microphone { name: name.clone() },
            },
            speaker: match &choice.speaker {
                OutputChoice::Off => SpeakerChoice::Off,
                OutputChoice::Device { name } => SpeakerChoice::Device { name: name.clone() },
            },
            output: Some(self.board.clone() as Arc<dyn MediaOutput>),
            pre_encoded: None,
            subscribe: true,
        }
    }

    /// Leaves the running call, if any.
    pub async fn leave(&self) {
        if let Some((room_id, session)) = self.active.lock().await.take()
            && let Err(error) = session.leave().await
        {
            tracing::info!(%error, %room_id, "leaving the call failed; the server drops it with the connection");
        }
        self.board.clear();
    }
}

fn device_list(
    kind: &str,
    listed: Result<Vec<roomler_media::source::DeviceInfo>, SourceError>,
    problems: &mut Vec<String>,
) -> Vec<Device> {
    match listed {
        Ok(devices) => devices
            .into_iter()
            .map(|device| Device {
                name: device.name,
                description: device.description,
                is_default: device.is_default,
            })
            .collect(),
        Err(error) => {
            problems.push(format!("The {kind} list is not available: {error}."));
            Vec::new()
        }
    }
}

/// Maps a call failure to the error the UI shows.
fn call_error(error: CallError) -> CommandError {
    match error {
        CallError::Signaling(SignalingError::Rejected { code, message, .. }) => CommandError {
            code: ErrorCode::Rejected,
            message,
            server_code: Some(code.as_str().to_string()),
            retryable: false,
        },
        CallError::Signaling(
            error @ (SignalingError::Connect(_)
            | SignalingError::Closed
            | SignalingError::Timeout { .. }),
        ) => CommandError {
            code: ErrorCode::Network,
            message: format!("{error}; check the connection to the server and join again"),
            server_code: None,
            retryable: true,
        },
        CallError::Media(roomler_client::call::media::MediaError::Device(error)) => {
            CommandError::invalid_input(device_advice(&error))
        }
        other => CommandError::new(ErrorCode::Internal, other.to_string()),
    }
}

/// Returns the kind of device that `error` is about, if it names one.
fn source_kind(error: &SourceError) -> Option<DeviceKind> {
    match error {
        SourceError::NoDevice { kind, .. }
        | SourceError::DeviceLost { kind, .. }
        | SourceError::Unsupported { kind, .. }
        | SourceError::Backend { kind, .. } => Some(*kind),
        SourceError::Ended => None,
    }
}

/// Returns the message for a device that failed to open or stopped, with what to
/// do about it.
fn device_advice(error: &SourceError) -> String {
    let instead = match source_kind(error) {
        Some(DeviceKind::Camera) => "pick another camera, or the test pattern",
        Some(DeviceKind::Microphone) => "pick another microphone, or the test tone",
        Some(DeviceKind::Speaker) => "pick another speaker, or no sound",
        _ => "pick another device",
    };
    format!("{error}; {instead}")
}

/// Lists the cameras, microphones and speakers.
#[tauri::command]
#[specta::specta]
pub async fn call_devices() -> CommandResult<CallDevices> {
    tauri::async_runtime::spawn_blocking(|| {
        let mut problems = Vec::new();
        let cameras = device_list("camera", roomler_media::list_cameras(), &mut problems);
        let microphones = device_list(
            "microphone",
            roomler_media::list_microphones(),
            &mut problems,
        );
        let speakers = device_list("speaker", roomler_media::list_speakers(), &mut problems);
        CallDevices {
            cameras,
            microphones,
            speakers,
            problems,
        }
    })
    .await
    .map_err(|error| CommandError::new(ErrorCode::Internal, error.to_string()))
}

/// Starts the camera preview and the microphone meter of the pre-join screen of
/// `room_id`, or restarts them with other devices. The self view is the `local`
/// tile. A device that stops during the preview is sent as a `call-media` event.
#[tauri::command]
#[specta::specta]
pub async fn start_call_preview(
    app: AppHandle,
    state: State<'_, AppState>,
    room_id: Uuid,
    media: MediaChoice,
) -> CommandResult<()> {
    let calls = state.calls();
    // The old preview lets go of its devices before the new one opens them.
    calls.preview.lock().unwrap().take();
    calls.board.clear();
    let generation = calls.preview_generation.fetch_add(1, Ordering::Relaxed) + 1;
    let (sender, failures) = tokio::sync::mpsc::unbounded_channel();
    let reporter = FailureReporter::new(generation, sender);
    let setup = calls.setup(&media);
    let preview =
        tauri::async_runtime::spawn_blocking(move || start_preview(&setup, Some(reporter)))
            .await
            .map_err(|error| CommandError::new(ErrorCode::Internal, error.to_string()))?
            .map_err(|error| call_error(CallError::Media(error)))?;
    *calls.preview.lock().unwrap() = Some(preview);
    tauri::async_runtime::spawn(forward_preview_failures(app, room_id, failures));
    Ok(())
}

/// Sends the pre-join screen of `room_id` each device that stops during its
/// preview, until the preview ends or another replaces it.
async fn forward_preview_failures(
    app: AppHandle,
    room_id: Uuid,
    mut failures: tokio::sync::mpsc::UnboundedReceiver<DeviceFailure>,
) {
    let mut lost = PreviewProblems::default();
    while let Some(failure) = failures.recv().await {
        let app_state = app.state::<AppState>();
        let calls = app_state.calls();
        let current = calls.preview_generation.load(Ordering::Relaxed) == failure.generation
            && calls.preview.lock().unwrap().is_some();
        if !current {
            return;
        }
        tracing::info!(kind = %failure.kind, %room_id, "the {} stopped during the pre-join preview", failure.kind);
        let media = lost.add(failure);
        crate::events::emit(&app, &crate::events::CallMedia { room_id, media });
    }
}

/// The devices that one preview lost, as the pre-join screen shows them.
#[derive(Debug, Default)]
struct PreviewProblems {
    state: MediaState,
}

impl PreviewProblems {
    /// Records that the device of `failure` stopped, replacing an earlier failure
    /// of the same kind, and returns the state to show.
    fn add(&mut self, failure: DeviceFailure) -> CallMediaState {
        let kind = failure.kind;
        self.state.problems.retain(|problem| {
            !matches!(problem, MediaProblem::DeviceLost { kind: earlier, .. } if *earlier == kind)
        });
        self.state.problems.push(MediaProblem::DeviceLost {
            kind,
            error: failure.error,
        });
        match kind {
            DeviceKind::Camera => self.state.camera_off = true,
            DeviceKind::Microphone => self.state.muted = true,
            DeviceKind::Speaker => {}
        }
        CallMediaState::from(&self.state)
    }
}

/// Stops the preview and lets go of its devices.
#[tauri::command]
#[specta::specta]
pub fn stop_call_preview(state: State<'_, AppState>) {
    state.calls().preview.lock().unwrap().take();
}

/// Joins the call of `room_id` with the chosen devices, leaving any other call.
/// `format` applies when this join starts the call, a meeting when absent. In the
/// audience of a presentation the devices stay closed until a host invites the
/// user to speak.
#[tauri::command]
#[specta::specta]
pub async fn join_call(
    app: tauri::AppHandle,
    state: State<'_, AppState>,
    room_id: Uuid,
    media: MediaChoice,
    format: Option<CallFormat>,
) -> CommandResult<JoinedCall> {
    let engine = state.engine()?;
    let calls = state.calls();
    calls.preview.lock().unwrap().take();
    calls.leave().await;
    let token = engine
        .api()
        .token()
        .ok_or_else(|| CommandError::from(roomler_client::ClientError::NotLoggedIn))?
        .to_string();
    let ws_url = engine.api().ws_url(None);
    let options = CallOptions {
        bind: std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        relay_only: false,
        tone_hz: 440.0,
        format: format.map(Into::into),
    };
    let session = CallSession::join_with(&ws_url, &token, room_id, options, calls.setup(&media))
        .await
        .map_err(call_error)?;
    let mut media_state = session.watch_media();
    let joined = JoinedCall {
        room_id,
        call_id: session.call_id(),
        feed_id: session.feed_id(),
        participants: session
            .participants()
            .into_iter()
            .map(CallParticipant::from)
            .collect(),
        format: session.format().into(),
        role: session.role().into(),
        media: CallMediaState::from(&*media_state.borrow_and_update()),
    };
    let mut removed = session.removed();
    let call_id = session.call_id();
    let participants = session.watch_participants();
    *calls.active.lock().await = Some((room_id, session));
    tauri::async_runtime::spawn(forward_participants(
        app.clone(),
        room_id,
        call_id,
        participants,
    ));
    tauri::async_runtime::spawn(forward_media(app.clone(), room_id, call_id, media_state));
    tauri::async_runtime::spawn(async move {
        let Ok(reason) = removed
            .wait_for(Option::is_some)
            .await
            .map(|reason| reason.clone())
        else {
            return;
        };
        let state = app.state::<AppState>();
        let calls = state.calls();
        let mut active = calls.active.lock().await;
        if active
            .as_ref()
            .is_some_and(|(_, session)| session.call_id() == call_id)
        {
            active.take();
            calls.board.clear();
        }
        drop(active);
        let reason = reason.unwrap_or_default();
        crate::events::emit(&app, &crate::events::CallEnded { room_id, reason });
    });
    Ok(joined)
}

/// Switches the call to other devices; the old ones stay when the new ones fail to
/// open.
#[tauri::command]
#[specta::specta]
pub async fn switch_call_media(
    state: State<'_, AppState>,
    media: MediaChoice,
) -> CommandResult<()> {
    let setup = state.calls().setup(&media);
    with_session(&state, async |session| session.switch_media(&setup).await).await
}

/// Leaves the call, if the user is in one.
#[tauri::command]
#[specta::specta]
pub async fn leave_call(state: State<'_, AppState>) -> CommandResult<()> {
    state.calls().leave().await;
    Ok(())
}

async fn with_session<T>(
    state: &AppState,
    action: impl AsyncFnOnce(&CallSession) -> Result<T, CallError>,
) -> CommandResult<T> {
    let active = state.calls().active.lock().await;
    let (_, session) = active
        .as_ref()
        .ok_or_else(|| CommandError::invalid_input("you are not in a call; join one first"))?;
    action(session).await.map_err(call_error)
}

/// Mutes or unmutes the microphone.
#[tauri::command]
#[specta::specta]
pub async fn set_call_muted(state: State<'_, AppState>, muted: bool) -> CommandResult<()> {
    with_session(&state, async |session| session.set_muted(muted).await).await
}

/// Turns the camera off or on.
#[tauri::command]
#[specta::specta]
pub async fn set_call_camera_off(state: State<'_, AppState>, off: bool) -> CommandResult<()> {
    with_session(&state, async |session| session.set_camera_off(off).await).await
}

/// Raises the user's hand, in the audience of a presentation.
#[tauri::command]
#[specta::specta]
pub async fn raise_call_hand(state: State<'_, AppState>) -> CommandResult<()> {
    with_session(&state, async |session| session.raise_hand().await).await
}

/// Lowers the user's own hand, or as a host the hand of `user_id`.
#[tauri::command]
#[specta::specta]
pub async fn lower_call_hand(
    state: State<'_, AppState>,
    user_id: Option<Uuid>,
) -> CommandResult<()> {
    with_session(&state, async |session| session.lower_hand(user_id).await).await
}

/// As a host, lets the audience member `user_id` speak.
#[tauri::command]
#[specta::specta]
pub async fn invite_to_speak(state: State<'_, AppState>, user_id: Uuid) -> CommandResult<()> {
    with_session(&state, async |session| {
        session.invite_to_speak(user_id).await
    })
    .await
}

/// Moves the speaker `user_id` back to the audience, as a host or for oneself.
#[tauri::command]
#[specta::specta]
pub async fn move_to_audience(state: State<'_, AppState>, user_id: Uuid) -> CommandResult<()> {
    with_session(&state, async |session| {
        session.move_to_audience(user_id).await
    })
    .await
}

/// Sets the tiles on screen: `large` receive the full-size simulcast layer, `medium`
/// the half-size one, `small` the lowest one, and every other feed is hidden and
/// not decoded.
#[tauri::command]
#[specta::specta]
pub async fn set_visible_tiles(
    state: State<'_, AppState>,
    large: Vec<u64>,
    medium: Vec<u64>,
    small: Vec<u64>,
) -> CommandResult<()> {
    let sized = |feeds: Vec<u64>, size: TileSize| feeds.into_iter().map(move |feed| (feed, size));
    let layout = TileLayout::shown(
        sized(large, TileSize::Large)
            .chain(sized(medium, TileSize::Medium))
            .chain(sized(small, TileSize::Small)),
    );
    with_session(&state, async |session| {
        session.set_tile_layout(layout);
        Ok(())
    })
    .await
}

/// Returns the audio level of every tile that has one, for the meters and the
/// active speaker.
#[tauri::command]
#[specta::specta]
pub fn call_levels(state: State<'_, AppState>) -> Vec<TileLevel> {
    state.calls().board.levels()
}

/// Returns what each remote participant's streams delivered so far.
#[tauri::command]
#[specta::specta]
pub async fn call_stats(state: State<'_, AppState>) -> CommandResult<Vec<TileStats>> {
    with_session(&state, async |session| {
        Ok(session.stats().into_iter().map(TileStats::from).collect())
    })
    .await
}

/// Returns the calls going on in the user's rooms, for the room list.
#[tauri::command]
#[specta::specta]
pub fn room_calls(state: State<'_, AppState>) -> CommandResult<Vec<RoomCall>> {
    let engine = state.engine()?;
    let mut calls: Vec<RoomCall> = engine
        .calls()
        .into_iter()
        .map(|(room_id, call)| RoomCall {
            room_id,
            call: call.into(),
        })
        .collect();
    calls.sort_by_key(|call| call.room_id);
    Ok(calls)
}

/// Serves one request of the frame scheme: the newest picture of the tile in the
/// path, if newer than `after`; 204 when there is none yet.
pub fn frame_response(board: &PictureBoard, path: &str, query: Option<&str>) -> Response<Vec<u8>> {
    let tile = path.trim_start_matches('/');
    let Some(tile) = parse_tile(tile) else {
        return plain(
            StatusCode::NOT_FOUND,
            format!("no tile {tile:?}; ask for `local` or a feed id"),
        );
    };
    let after = query
        .and_then(|query| {
            query
                .split('&')
                .find_map(|pair| pair.strip_prefix("after="))
        })
        .and_then(|after| after.parse().ok())
        .unwrap_or(0);
    match board.encoded_after(tile, after) {
        Some(body) => Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "application/octet-stream")
            .header("access-control-allow-origin", "*")
            .header("cache-control", "no-store")
            .body(body)
            .unwrap(),
        None => Response::builder()
            .status(StatusCode::NO_CONTENT)
            .header("access-control-allow-origin", "*")
            .body(Vec::new())
            .unwrap(),
    }
}

fn plain(status: StatusCode, text: String) -> Response<Vec<u8>> {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain; charset=utf-8")
        .header("access-control-allow-origin", "*")
        .body(text.into_bytes())
        .unwrap()
}

/// Sends the UI each new participant list of the call `call_id`, with the user's own
/// feed, until the session ends. The session keeps the list current across new
/// joins, whose own feed the UI must not show as another participant.
async fn forward_participants(
    app: AppHandle,
    room_id: Uuid,
    call_id: Uuid,
    mut list: tokio::sync::watch::Receiver<Vec<roomler_client::call::CallParticipant>>,
) {
    while list.changed().await.is_ok() {
        // The session cannot apply call events while a borrow lives, so the list
        // is copied at once.
        let participants: Vec<CallParticipant> = list
            .borrow_and_update()
            .iter()
            .cloned()
            .map(CallParticipant::from)
            .collect();
        let state = app.state::<AppState>();
        let feed_id = match state.calls().active.lock().await.as_ref() {
            Some((_, session)) if session.call_id() == call_id => session.feed_id(),
            _ => return,
        };
        crate::events::emit(
            &app,
            &crate::events::CallParticipants {
                room_id,
                feed_id,
                participants,
            },
        );
    }
}

/// Sends the UI each new state of the user's own media in the call `call_id`, until
/// the session ends.
async fn forward_media(
    app: AppHandle,
    room_id: Uuid,
    call_id: Uuid,
    mut media: tokio::sync::watch::Receiver<MediaState>,
) {
    while media.changed().await.is_ok() {
        // The session cannot record changes while a borrow lives.
        let state = CallMediaState::from(&*media.borrow_and_update());
        let app_state = app.state::<AppState>();
        let current = app_state
            .calls()
            .active
            .lock()
            .await
            .as_ref()
            .is_some_and(|(_, session)| session.call_id() == call_id);
        if !current {
            return;
        }
        crate::events::emit(
            &app,
            &crate::events::CallMedia {
                room_id,
                media: state,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn picture(width: u32, height: u32) -> Arc<VideoFrame> {
        Arc::new(VideoFrame::black(width, height, Duration::ZERO))
    }

    fn lost(kind: DeviceKind, reason: &str) -> DeviceFailure {
        DeviceFailure {
            generation: 1,
            kind,
            error: SourceError::DeviceLost {
                kind,
                name: format!("Test {kind}"),
                reason: reason.into(),
            },
        }
    }

    #[test]
    fn preview_problems_keep_one_per_device() {
        let mut problems = PreviewProblems::default();
        let state = problems.add(lost(DeviceKind::Camera, "unplugged"));
        assert!(state.camera_off);
        assert!(!state.muted);
        assert_eq!(state.problems.len(), 1);

        problems.add(lost(DeviceKind::Microphone, "unplugged"));
        let state = problems.add(lost(DeviceKind::Camera, "driver reset"));
        assert!(state.muted);
        let devices: Vec<_> = state
            .problems
            .iter()
            .map(|problem| problem.device)
            .collect();
        assert_eq!(
            devices,
            [Some(MediaDevice::Microphone), Some(MediaDevice::Camera)]
        );
        assert!(
            state.problems[1].message.contains("driver reset"),
            "{}",
            state.problems[1].message
        );
    }

    #[test]
    fn tile_names_round_trip() {
        for tile in [Tile::Local, Tile::Remote { feed_id: 42 }] {
            assert_eq!(parse_tile(&tile_name(tile)), Some(tile));
        }
        assert_eq!(parse_tile("camera"), None);
    }

    #[test]
    fn frame_scheme_serves_newest_picture_once() {
        let board = PictureBoard::default();
        let empty = frame_response(&board, "/7", None);
        assert_eq!(empty.status(), StatusCode::NO_CONTENT);

        board.picture(Tile::Remote { feed_id: 7 }, picture(4, 2));
        board.picture(Tile::Remote { feed_id: 7 }, picture(8, 6));
        let response = frame_response(&board, "/7", Some("after=0"));
        assert_eq!(response.status(), StatusCode::OK);
        let body = response.body();
        assert_eq!(body.len(), FRAME_HEADER_BYTES + 8 * 6 * 4);
        assert_eq!(u32::from_le_bytes(body[0..4].try_into().unwrap()), 8);
        assert_eq!(u32::from_le_bytes(body[4..8].try_into().unwrap()), 6);
        let seq = u64::from_le_bytes(body[8..16].try_into().unwrap());
        assert_eq!(&body[16..20], &[0, 0, 0, 255]);

        // Asking again after that picture gets nothing until a new one arrives.
        let query = format!("after={seq}");
        let again = frame_response(&board, "/7", Some(&query));
        assert_eq!(again.status(), StatusCode::NO_CONTENT);
        board.picture(Tile::Remote { feed_id: 7 }, picture(8, 6));
        assert_eq!(
            frame_response(&board, "/7", Some(&query)).status(),
            StatusCode::OK
        );
        // Another tile's pictures are its own.
        assert_eq!(
            frame_response(&board, "/local", None).status(),
            StatusCode::NO_CONTENT
        );
    }

    #[test]
    fn frame_scheme_rejects_unknown_tiles() {
        let response = frame_response(&PictureBoard::default(), "/camera", None);
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let text = String::from_utf8(response.body().clone()).unwrap();
        assert!(text.contains("\"camera\""), "{text}");
    }

    #[test]
    fn levels_name_their_tiles() {
        let board = PictureBoard::default();
        board.level(Tile::Local, AudioLevel::from_dbov(-20.0));
        board.level(Tile::Remote { feed_id: 3 }, AudioLevel::from_dbov(-40.0));
        let levels = board.levels();
        assert_eq!(levels.len(), 2);
        assert_eq!(levels[0].tile, "3");
        assert!((levels[0].dbov + 40.0).abs() < 0.5);
        assert_eq!(levels[1].tile, "local");
        board.clear();
        assert!(board.levels().is_empty());
    }

    #[test]
    fn device_failures_say_what_to_do() {
        let message = device_advice(&SourceError::NoDevice {
            kind: DeviceKind::Camera,
            requested: Some("Front".into()),
        });
        assert!(message.contains("\"Front\""), "{message}");
        assert!(message.contains("test pattern"), "{message}");
    }

    #[test]
    fn lost_device_problem_says_what_to_do() {
        let state = MediaState {
            muted: true,
            camera_off: false,
            problems: vec![MediaProblem::DeviceLost {
                kind: DeviceKind::Microphone,
                error: SourceError::DeviceLost {
                    kind: DeviceKind::Microphone,
                    name: "Headset".into(),
                    reason: "no samples for 2 s".into(),
                },
            }],
        };
        let sent = CallMediaState::from(&state);
        assert!(sent.muted);
        let [problem] = sent.problems.as_slice() else {
            panic!("{:?}", sent.problems);
        };
        assert_eq!(problem.kind, MediaProblemKind::Lost);
        assert_eq!(problem.device, Some(MediaDevice::Microphone));
        assert!(
            problem.message.contains("\"Headset\""),
            "{}",
            problem.message
        );
        assert!(
            problem.message.contains("no samples"),
            "{}",
            problem.message
        );
        assert!(
            problem.message.contains("pick another microphone"),
            "{}",
            problem.message
        );
    }

    #[test]
    fn failed_publish_names_the_device() {
        let error = CallError::Media(roomler_client::call::media::MediaError::Device(
            SourceError::NoDevice {
                kind: DeviceKind::Camera,
                requested: Some("Front".into()),
            },
        ));
        let problem = CallMediaProblem::from(&MediaProblem::PublishFailed {
            error: Arc::new(error),
        });
        assert_eq!(problem.kind, MediaProblemKind::PublishFailed);
        assert_eq!(problem.device, Some(MediaDevice::Camera));
        assert!(
            problem.message.contains("test pattern"),
            "{}",
            problem.message
        );

        let other = CallMediaProblem::from(&MediaProblem::PublishFailed {
            error: Arc::new(CallError::WebRtc("ICE failed".into())),
        });
        assert_eq!(other.device, None);
        assert!(other.message.contains("ICE failed"), "{}", other.message);
    }
}
