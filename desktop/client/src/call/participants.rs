//! The other participants of a joined call, kept current from the room's call
//! events, for a call view to draw one tile each.
//!
//! The list starts from the participants in the `join` reply and changes with
//! every `participant_joined`, `participant_left`, `published`, mute, camera and
//! speaking event. The session's own participant is never in it.

use std::sync::atomic::{AtomicU64, Ordering};

use roomler_shared::call::{CallEvent, Participant};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use uuid::Uuid;

/// Another participant of the call, as the last call event described it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallParticipant {
    pub user_id: Uuid,
    pub username: String,
    pub display_name: String,
    /// The participant's Janus publisher id, which the statistics of its streams
    /// carry too.
    pub feed_id: u64,
    pub muted: bool,
    pub camera_off: bool,
    /// Whether Janus's audio level detection last reported the participant speaking.
    pub speaking: bool,
    /// Whether the participant's streams are live, so that this session receives
    /// them.
    pub publishing: bool,
}

impl CallParticipant {
    fn from_participant(participant: &Participant) -> Self {
        CallParticipant {
            user_id: participant.user_id,
            username: participant.username.clone(),
            display_name: participant.display_name.clone(),
            feed_id: participant.feed_id,
            muted: participant.audio_muted,
            camera_off: participant.camera_off,
            speaking: false,
            publishing: !participant.streams.is_empty(),
        }
    }
}

/// The participant list of one session, shared between the task that reads the
/// call events and the callers of [`CallSession::participants`](super::CallSession::participants).
pub(crate) struct Participants {
    own_feed: AtomicU64,
    list: watch::Sender<Vec<CallParticipant>>,
}

impl Participants {
    /// Starts the list from the `join` reply, which names only the others.
    pub(crate) fn new(own_feed: u64, joined: &[Participant]) -> Self {
        let list = joined
            .iter()
            .map(CallParticipant::from_participant)
            .collect();
        Participants {
            own_feed: AtomicU64::new(own_feed),
            list: watch::Sender::new(list),
        }
    }

    /// Starts the list again from the reply of a new `join`, which gave this session
    /// the feed `own_feed`.
    pub(crate) fn reset(&self, own_feed: u64, joined: &[Participant]) {
        self.own_feed.store(own_feed, Ordering::Relaxed);
        let list = joined
            .iter()
            .map(CallParticipant::from_participant)
            .collect();
        self.list.send_replace(list);
    }

    pub(crate) fn snapshot(&self) -> Vec<CallParticipant> {
        self.list.borrow().clone()
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<Vec<CallParticipant>> {
        self.list.subscribe()
    }

    /// Applies one call event, and notifies the receivers only when the list changed.
    pub(crate) fn apply(&self, event: &CallEvent) {
        let own_feed = self.own_feed.load(Ordering::Relaxed);
        self.list
            .send_if_modified(|list| apply_event(list, own_feed, event));
    }
}

/// Applies `event` to `list` and returns whether anything changed.
fn apply_event(list: &mut Vec<CallParticipant>, own_feed: u64, event: &CallEvent) -> bool {
    let update =
        |list: &mut Vec<CallParticipant>, user_id: Uuid, change: &dyn Fn(&mut CallParticipant)| {
            let Some(entry) = list.iter_mut().find(|entry| entry.user_id == user_id) else {
                return false;
            };
            let before = entry.clone();
            change(entry);
            *entry != before
        };
    match event {
        CallEvent::ParticipantJoined { participant } => {
            if participant.feed_id == own_feed {
                return false;
            }
            // A user who joins again from another connection gets a new feed, and
            // the server sends no `participant_left` for the old one.
            list.retain(|entry| entry.user_id != participant.user_id);
            list.push(CallParticipant::from_participant(participant));
            true
        }
        CallEvent::ParticipantLeft { user_id, feed_id } => {
            let before = list.len();
            list.retain(|entry| !(entry.user_id == *user_id && entry.feed_id == *feed_id));
            list.len() != before
        }
        CallEvent::Published {
            user_id, streams, ..
        } => {
            let publishing = !streams.is_empty();
            update(list, *user_id, &|entry| entry.publishing = publishing)
        }
        CallEvent::Muted { user_id } => update(list, *user_id, &|entry| entry.muted = true),
        CallEvent::Unmuted { user_id } => update(list, *user_id, &|entry| entry.muted = false),
        CallEvent::CameraOff { user_id } => {
            update(list, *user_id, &|entry| entry.camera_off = true)
        }
        CallEvent::CameraOn { user_id } => {
            update(list, *user_id, &|entry| entry.camera_off = false)
        }
        CallEvent::Speaking { user_id, speaking } => {
            let speaking = *speaking;
            update(list, *user_id, &|entry| entry.speaking = speaking)
        }
        CallEvent::Ended { .. } => {
            let changed = !list.is_empty();
            list.clear();
            changed
        }
        CallEvent::Started { .. } => false,
    }
}

#[cfg(test)]
mod tests {
    use roomler_shared::call::{MediaKind, PublishedStream};

    use super::*;

    const OWN_FEED: u64 = 1;

    fn participant(user_id: Uuid, feed_id: u64) -> Participant {
        Participant {
            user_id,
            username: format!("user{feed_id}"),
            display_name: format!("User {feed_id}"),
            feed_id,
            audio_muted: false,
            camera_off: false,
            streams: Vec::new(),
        }
    }

    fn audio_stream() -> PublishedStream {
        PublishedStream {
            mid: "0".into(),
            kind: MediaKind::Audio,
            codec: Some("opus".into()),
            simulcast: false,
        }
    }

    #[test]
    fn join_reply_starts_list() {
        let alice = Uuid::now_v7();
        let mut muted = participant(alice, 7);
        muted.audio_muted = true;
        muted.streams = vec![audio_stream()];
        let participants = Participants::new(OWN_FEED, &[muted]);
        let list = participants.snapshot();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].feed_id, 7);
        assert!(list[0].muted);
        assert!(list[0].publishing);
        assert!(!list[0].speaking);
    }

    #[test]
    fn own_join_is_left_out() {
        let participants = Participants::new(OWN_FEED, &[]);
        participants.apply(&CallEvent::ParticipantJoined {
            participant: participant(Uuid::now_v7(), OWN_FEED),
        });
        assert!(participants.snapshot().is_empty());
    }

    #[test]
    fn events_update_one_participant() {
        let alice = Uuid::now_v7();
        let bob = Uuid::now_v7();
        let participants = Participants::new(OWN_FEED, &[participant(alice, 7)]);
        participants.apply(&CallEvent::ParticipantJoined {
            participant: participant(bob, 8),
        });
        participants.apply(&CallEvent::Published {
            user_id: bob,
            feed_id: 8,
            streams: vec![audio_stream()],
        });
        participants.apply(&CallEvent::Muted { user_id: bob });
        participants.apply(&CallEvent::CameraOff { user_id: bob });
        participants.apply(&CallEvent::Speaking {
            user_id: bob,
            speaking: true,
        });

        let list = participants.snapshot();
        let alice_entry = list.iter().find(|entry| entry.user_id == alice).unwrap();
        let bob_entry = list.iter().find(|entry| entry.user_id == bob).unwrap();
        assert!(!alice_entry.publishing);
        assert!(!alice_entry.muted);
        assert!(bob_entry.publishing);
        assert!(bob_entry.muted);
        assert!(bob_entry.camera_off);
        assert!(bob_entry.speaking);

        participants.apply(&CallEvent::Unmuted { user_id: bob });
        participants.apply(&CallEvent::CameraOn { user_id: bob });
        let list = participants.snapshot();
        let bob_entry = list.iter().find(|entry| entry.user_id == bob).unwrap();
        assert!(!bob_entry.muted);
        assert!(!bob_entry.camera_off);
    }

    #[test]
    fn leave_removes_only_that_feed() {
        let alice = Uuid::now_v7();
        let participants = Participants::new(OWN_FEED, &[participant(alice, 7)]);
        // Alice joins again from another connection with feed 9, then her old
        // feed's leave arrives late: the new feed stays.
        participants.apply(&CallEvent::ParticipantJoined {
            participant: participant(alice, 9),
        });
        participants.apply(&CallEvent::ParticipantLeft {
            user_id: alice,
            feed_id: 7,
        });
        let list = participants.snapshot();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].feed_id, 9);

        participants.apply(&CallEvent::ParticipantLeft {
            user_id: alice,
            feed_id: 9,
        });
        assert!(participants.snapshot().is_empty());
    }

    #[test]
    fn receivers_see_changes_only() {
        let alice = Uuid::now_v7();
        let participants = Participants::new(OWN_FEED, &[participant(alice, 7)]);
        let mut receiver = participants.subscribe();
        receiver.mark_unchanged();

        participants.apply(&CallEvent::Unmuted { user_id: alice });
        assert!(!receiver.has_changed().unwrap());

        participants.apply(&CallEvent::Muted { user_id: alice });
        assert!(receiver.has_changed().unwrap());
        assert!(receiver.borrow_and_update()[0].muted);
    }

    #[test]
    fn reset_replaces_list_and_own_feed() {
        let alice = Uuid::now_v7();
        let participants = Participants::new(OWN_FEED, &[participant(alice, 7)]);
        participants.reset(2, &[participant(alice, 9)]);
        let list = participants.snapshot();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].feed_id, 9);

        // The new own feed is left out.
        participants.apply(&CallEvent::ParticipantJoined {
            participant: participant(Uuid::now_v7(), 2),
        });
        assert_eq!(participants.snapshot().len(), 1);
    }

    #[test]
    fn call_end_empties_list() {
        let participants = Participants::new(OWN_FEED, &[participant(Uuid::now_v7(), 7)]);
        participants.apply(&CallEvent::Ended {
            call_id: Uuid::now_v7(),
        });
        assert!(participants.snapshot().is_empty());
    }
}
