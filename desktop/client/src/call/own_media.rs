//! The session's own media as the others see it: the user's mute and camera
//! switches, the devices that stopped during the call, and a publish that failed
//! after a host's invitation to speak.
//!
//! The source threads and the playback thread report a device that stops
//! delivering (see [`FailureReporter`]). A lost camera turns the camera off for
//! the others and a lost microphone mutes, through the same `configure` request as
//! the user's switches, so the others see the camera-off and muted marks instead
//! of a frozen picture and silence. Working devices from
//! [`CallSession::switch_media`](super::CallSession::switch_media) bring the media
//! back as the user had it before the loss. A lost speaker changes nothing on the
//! server. Every change reaches [`MediaState`], which a call view watches.

use std::sync::{Arc, Mutex, Weak};

use roomler_media::{DeviceKind, SourceError};
use roomler_shared::call::CallRequest;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::media::{DeviceFailure, FailureReporter, MediaError, SendSwitches};
use super::peer::{CallError, Connection};
use super::signaling::CallSignaling;

/// A problem with the session's own media, as [`MediaState`] lists it.
#[derive(Debug, Clone)]
pub enum MediaProblem {
    /// A device stopped delivering during the call, e.g. because it was unplugged.
    /// It stays listed until a switch to other devices replaces it.
    DeviceLost {
        kind: DeviceKind,
        error: SourceError,
    },
    /// Publishing failed after a host's invitation to speak, so the session moved
    /// itself back to the audience. It stays listed until the session publishes or
    /// switches devices.
    PublishFailed { error: Arc<CallError> },
}

impl PartialEq for MediaProblem {
    /// Compares failed publishes by identity, because [`CallError`] has no equality.
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (
                MediaProblem::DeviceLost { kind, error },
                MediaProblem::DeviceLost {
                    kind: other_kind,
                    error: other_error,
                },
            ) => kind == other_kind && error == other_error,
            (
                MediaProblem::PublishFailed { error },
                MediaProblem::PublishFailed { error: other },
            ) => Arc::ptr_eq(error, other),
            _ => false,
        }
    }
}

/// The session's own media as the others see it, and what went wrong with it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MediaState {
    /// Whether the others hear nothing: the user muted, or the microphone was lost.
    pub muted: bool,
    /// Whether the others see the camera-off mark: the user turned the camera off,
    /// or it was lost.
    pub camera_off: bool,
    /// The lost devices, at most one per kind, and a failed publish.
    pub problems: Vec<MediaProblem>,
}

impl MediaState {
    /// Returns the error of the lost device of `kind`, if it is lost.
    pub fn lost(&self, kind: DeviceKind) -> Option<&SourceError> {
        self.problems.iter().find_map(|problem| match problem {
            MediaProblem::DeviceLost { kind: lost, error } if *lost == kind => Some(error),
            _ => None,
        })
    }
}

/// A lost device and the sources or playback it belonged to.
#[derive(Debug)]
struct Lost {
    generation: u64,
    kind: DeviceKind,
    error: SourceError,
}

/// The user's switches and the problems, from which [`MediaState`] follows.
#[derive(Debug, Default)]
struct Inner {
    user_muted: bool,
    user_camera_off: bool,
    lost: Vec<Lost>,
    publish_failure: Option<Arc<CallError>>,
    /// The generation of the last [`FailureReporter`] handed out.
    generation: u64,
    /// The generation of the sources that send, and of the playback that plays.
    /// Failures of older ones are stale, because those were replaced.
    sources_generation: u64,
    playback_generation: u64,
}

impl Inner {
    fn state(&self) -> MediaState {
        let lost = |kind| self.lost.iter().any(|lost| lost.kind == kind);
        let mut problems: Vec<MediaProblem> = self
            .lost
            .iter()
            .map(|lost| MediaProblem::DeviceLost {
                kind: lost.kind,
                error: lost.error.clone(),
            })
            .collect();
        if let Some(error) = &self.publish_failure {
            problems.push(MediaProblem::PublishFailed {
                error: error.clone(),
            });
        }
        MediaState {
            muted: self.user_muted || lost(DeviceKind::Microphone),
            camera_off: self.user_camera_off || lost(DeviceKind::Camera),
            problems,
        }
    }

    /// Returns the current generation of the device of `kind`.
    fn current(&self, kind: DeviceKind) -> u64 {
        match kind {
            DeviceKind::Speaker => self.playback_generation,
            DeviceKind::Camera | DeviceKind::Microphone => self.sources_generation,
        }
    }

    fn lost_error(&self, kind: DeviceKind) -> Option<SourceError> {
        self.lost
            .iter()
            .find(|lost| lost.kind == kind)
            .map(|lost| lost.error.clone())
    }
}

/// The microphone and camera state that one join last sent its server.
struct Configured {
    signaling: Weak<CallSignaling>,
    muted: bool,
    camera_off: bool,
}

/// The state of the session's own media, shared by the session, its joins and the
/// task that follows device failures.
pub(super) struct OwnMedia {
    inner: Mutex<Inner>,
    state: watch::Sender<MediaState>,
    switches: Arc<SendSwitches>,
    failures: mpsc::UnboundedSender<DeviceFailure>,
    /// Held while a `configure` request is under way, so that the requests follow
    /// the state in order.
    configured: tokio::sync::Mutex<Option<Configured>>,
}

impl OwnMedia {
    /// Creates the state, which sets `switches`, and the receiver of the failures
    /// that its reporters send, for [`follow_failures`].
    pub(super) fn new(
        switches: Arc<SendSwitches>,
    ) -> (Self, mpsc::UnboundedReceiver<DeviceFailure>) {
        let (failures, received) = mpsc::unbounded_channel();
        let own = OwnMedia {
            inner: Mutex::new(Inner::default()),
            state: watch::Sender::new(MediaState::default()),
            switches,
            failures,
            configured: tokio::sync::Mutex::new(None),
        };
        (own, received)
    }

    pub(super) fn subscribe(&self) -> watch::Receiver<MediaState> {
        self.state.subscribe()
    }

    pub(super) fn snapshot(&self) -> MediaState {
        self.state.borrow().clone()
    }

    /// Returns the reporter for a new set of sources or a new playback.
    pub(super) fn reporter(&self) -> FailureReporter {
        let mut inner = self.inner.lock().unwrap();
        inner.generation += 1;
        FailureReporter::new(inner.generation, self.failures.clone())
    }

    /// Records that the sources of `generation` send from now on: the devices lost
    /// by earlier sources no longer count.
    pub(super) fn sources_started(&self, generation: u64) {
        self.update(|inner| {
            inner.sources_generation = generation;
            inner
                .lost
                .retain(|lost| lost.kind == DeviceKind::Speaker || lost.generation >= generation);
        });
    }

    /// Records that the playback of `generation` plays from now on, or that no
    /// speaker plays: a speaker lost earlier no longer counts.
    pub(super) fn playback_started(&self, generation: u64) {
        self.update(|inner| {
            inner.playback_generation = generation;
            inner
                .lost
                .retain(|lost| lost.kind != DeviceKind::Speaker || lost.generation >= generation);
        });
    }

    /// Forgets what the sources or playback of `generation` reported, because they
    /// closed before they took over.
    pub(super) fn abandon(&self, generation: u64) {
        self.update(|inner| inner.lost.retain(|lost| lost.generation != generation));
    }

    /// Records a device failure, and returns false when it is stale because its
    /// sources or playback were replaced.
    pub(super) fn device_failed(&self, failure: DeviceFailure) -> bool {
        let mut applied = true;
        self.update(|inner| {
            if failure.generation < inner.current(failure.kind) {
                applied = false;
                return;
            }
            inner.lost.retain(|lost| lost.kind != failure.kind);
            inner.lost.push(Lost {
                generation: failure.generation,
                kind: failure.kind,
                error: failure.error,
            });
        });
        applied
    }

    /// Records the user's microphone switch. Unmuting a lost microphone fails with
    /// its error, because nothing could be sent.
    pub(super) fn set_user_muted(&self, muted: bool) -> Result<(), CallError> {
        self.set_switch(DeviceKind::Microphone, muted, |inner| {
            inner.user_muted = muted;
        })
    }

    /// Records the user's camera switch. Turning a lost camera on fails with its
    /// error, because nothing could be sent.
    pub(super) fn set_user_camera_off(&self, off: bool) -> Result<(), CallError> {
        self.set_switch(DeviceKind::Camera, off, |inner| {
            inner.user_camera_off = off;
        })
    }

    fn set_switch(
        &self,
        kind: DeviceKind,
        off: bool,
        change: impl FnOnce(&mut Inner),
    ) -> Result<(), CallError> {
        let mut inner = self.inner.lock().unwrap();
        if !off && let Some(error) = inner.lost_error(kind) {
            return Err(CallError::Media(MediaError::Device(error)));
        }
        change(&mut inner);
        self.publish(&inner);
        Ok(())
    }

    /// Records why publishing failed after a host's invitation to speak.
    pub(super) fn publish_failed(&self, error: CallError) {
        self.update(|inner| inner.publish_failure = Some(Arc::new(error)));
    }

    /// Forgets a failed publish, after publishing started or the user chose other
    /// devices.
    pub(super) fn clear_publish_failure(&self) {
        self.update(|inner| inner.publish_failure = None);
    }

    fn update(&self, change: impl FnOnce(&mut Inner)) {
        let mut inner = self.inner.lock().unwrap();
        change(&mut inner);
        self.publish(&inner);
    }

    /// Sets the switches that the source threads read and notifies the watchers,
    /// under the lock of `inner`, so that both follow the changes in order.
    fn publish(&self, inner: &Inner) {
        let state = inner.state();
        self.switches.set_microphone_on(!state.muted);
        self.switches.set_camera_on(!state.camera_off);
        self.state.send_if_modified(|current| {
            let changed = *current != state;
            *current = state;
            changed
        });
    }

    /// Sends the server of `signaling`'s join a `configure` request with the
    /// microphone and camera state, where it differs from what this join last sent.
    /// A new join starts unmuted with the camera on.
    pub(super) async fn configure_server(
        &self,
        signaling: &Arc<CallSignaling>,
    ) -> Result<(), CallError> {
        let mut configured = self.configured.lock().await;
        let (was_muted, was_off) = match configured.as_ref() {
            Some(last) if std::ptr::eq(last.signaling.as_ptr(), Arc::as_ptr(signaling)) => {
                (last.muted, last.camera_off)
            }
            _ => (false, false),
        };
        let (muted, camera_off) = {
            let state = self.state.borrow();
            (state.muted, state.camera_off)
        };
        let request = CallRequest::Configure {
            audio_muted: (muted != was_muted).then_some(muted),
            camera_off: (camera_off != was_off).then_some(camera_off),
            substreams: Vec::new(),
        };
        if muted != was_muted || camera_off != was_off {
            signaling.request(request).await?;
        }
        *configured = Some(Configured {
            signaling: Arc::downgrade(signaling),
            muted,
            camera_off,
        });
        Ok(())
    }
}

/// Records each device failure that the session's sources and playback report, and
/// sends the new state to the server of the current join, until `stop`.
pub(super) async fn follow_failures(
    own: Arc<OwnMedia>,
    connection: Arc<Mutex<Connection>>,
    mut failures: mpsc::UnboundedReceiver<DeviceFailure>,
    stop: CancellationToken,
) {
    loop {
        let failure = tokio::select! {
            () = stop.cancelled() => return,
            failure = failures.recv() => failure,
        };
        let Some(failure) = failure else { return };
        let kind = failure.kind;
        if !own.device_failed(failure) {
            tracing::debug!(%kind, "a replaced device stopped");
            continue;
        }
        tracing::info!(%kind, "the {kind} was lost during the call");
        let signaling = connection.lock().unwrap().signaling.clone();
        // After a failed request, the next join sends its server the whole state.
        if let Err(error) = own.configure_server(&signaling).await {
            tracing::warn!(%error, %kind, "failed to send the server the state after losing the {kind}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lost(kind: DeviceKind) -> SourceError {
        SourceError::DeviceLost {
            kind,
            name: format!("Test {kind}"),
            reason: "unplugged".into(),
        }
    }

    fn failure(reporter: &FailureReporter, kind: DeviceKind) -> DeviceFailure {
        DeviceFailure {
            generation: reporter.generation(),
            kind,
            error: lost(kind),
        }
    }

    #[test]
    fn lost_camera_turns_camera_off_until_replaced() {
        let switches = Arc::new(SendSwitches::default());
        let (own, _failures) = OwnMedia::new(switches.clone());
        let first = own.reporter();
        own.sources_started(first.generation());

        assert!(own.device_failed(failure(&first, DeviceKind::Camera)));
        let state = own.snapshot();
        assert!(state.camera_off);
        assert!(!state.muted);
        assert!(state.lost(DeviceKind::Camera).is_some());
        assert!(!switches.camera_on());
        assert!(switches.microphone_on());

        let second = own.reporter();
        own.sources_started(second.generation());
        let state = own.snapshot();
        assert!(!state.camera_off);
        assert!(state.problems.is_empty(), "{:?}", state.problems);
        assert!(switches.camera_on());
    }

    #[test]
    fn replacement_keeps_user_switches() {
        let (own, _failures) = OwnMedia::new(Arc::new(SendSwitches::default()));
        let first = own.reporter();
        own.sources_started(first.generation());
        own.set_user_muted(true).unwrap();
        assert!(own.device_failed(failure(&first, DeviceKind::Microphone)));
        assert!(own.device_failed(failure(&first, DeviceKind::Camera)));

        let second = own.reporter();
        own.sources_started(second.generation());
        let state = own.snapshot();
        assert!(state.muted, "the user had muted before the loss");
        assert!(
            !state.camera_off,
            "the user had the camera on before the loss"
        );
    }

    #[test]
    fn stale_failures_are_ignored() {
        let (own, _failures) = OwnMedia::new(Arc::new(SendSwitches::default()));
        let first = own.reporter();
        own.sources_started(first.generation());
        let second = own.reporter();
        own.sources_started(second.generation());
        assert!(!own.device_failed(failure(&first, DeviceKind::Camera)));
        assert!(!own.snapshot().camera_off);

        // A speaker's failure counts against the playback, not the sources.
        let speaker = own.reporter();
        own.playback_started(speaker.generation());
        assert!(own.device_failed(failure(&speaker, DeviceKind::Speaker)));
        let state = own.snapshot();
        assert!(state.lost(DeviceKind::Speaker).is_some());
        assert!(!state.muted);
        assert!(!state.camera_off);
        let third = own.reporter();
        own.sources_started(third.generation());
        assert!(own.snapshot().lost(DeviceKind::Speaker).is_some());
    }

    #[test]
    fn pending_sources_failure_survives_takeover() {
        let (own, _failures) = OwnMedia::new(Arc::new(SendSwitches::default()));
        let first = own.reporter();
        own.sources_started(first.generation());
        // The new sources fail before they take over from the old ones.
        let second = own.reporter();
        assert!(own.device_failed(failure(&second, DeviceKind::Camera)));
        own.sources_started(second.generation());
        assert!(own.snapshot().camera_off);

        // A switch whose sources never took over leaves nothing behind.
        let third = own.reporter();
        assert!(own.device_failed(failure(&third, DeviceKind::Microphone)));
        own.abandon(third.generation());
        assert!(!own.snapshot().muted);
        assert!(own.snapshot().camera_off);
    }

    #[test]
    fn lost_device_cannot_be_switched_on() {
        let (own, _failures) = OwnMedia::new(Arc::new(SendSwitches::default()));
        let first = own.reporter();
        own.sources_started(first.generation());
        assert!(own.device_failed(failure(&first, DeviceKind::Microphone)));
        let error = own.set_user_muted(false).unwrap_err();
        assert!(
            matches!(
                &error,
                CallError::Media(MediaError::Device(SourceError::DeviceLost {
                    kind: DeviceKind::Microphone,
                    ..
                }))
            ),
            "{error:?}"
        );
        assert!(own.snapshot().muted);
        // Muting is always allowed, and the camera is unaffected.
        own.set_user_muted(true).unwrap();
        own.set_user_camera_off(true).unwrap();
        own.set_user_camera_off(false).unwrap();
    }

    #[test]
    fn publish_failure_is_listed_until_cleared() {
        let (own, _failures) = OwnMedia::new(Arc::new(SendSwitches::default()));
        let mut watcher = own.subscribe();
        own.publish_failed(CallError::UnexpectedReply("publish"));
        assert!(watcher.has_changed().unwrap());
        let state = watcher.borrow_and_update().clone();
        assert!(matches!(
            state.problems.as_slice(),
            [MediaProblem::PublishFailed { .. }]
        ));
        own.clear_publish_failure();
        assert!(own.snapshot().problems.is_empty());
    }
}
