//! The other participants of a joined call, kept current from the room's call
//! events, for a call view to draw one tile each.
//!
//! The list starts from the participants in the `join` reply and changes with
//! every `participant_joined`, `participant_left`, `published`, mute, camera,
//! speaking, hand and role event. The session's own participant is never in it, but
//! its role is kept beside the list, so that the session publishes exactly while
//! the server lets it.

use std::sync::atomic::{AtomicU64, Ordering};

use roomler_shared::call::{CallEvent, CallRole, Participant};
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
    #[serde(default)]
    pub role: CallRole,
    /// Whether the participant, an audience member, has a hand raised to speak.
    #[serde(default)]
    pub hand_raised: bool,
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
            role: participant.role,
            hand_raised: participant.hand_raised,
        }
    }
}

/// The participant list of one session, shared between the task that reads the
/// call events and the callers of [`CallSession::participants`](super::CallSession::participants).
pub(crate) struct Participants {
    own_feed: AtomicU64,
    list: watch::Sender<Vec<CallParticipant>>,
    /// The session's own role, from the `join` reply and its `role_changed` events.
    own_role: watch::Sender<CallRole>,
}

impl Participants {
    /// Starts the list from the `join` reply, which names only the others.
    pub(crate) fn new(own_feed: u64, own_role: CallRole, joined: &[Participant]) -> Self {
        let list = joined
            .iter()
            .map(CallParticipant::from_participant)
            .collect();
        Participants {
            own_feed: AtomicU64::new(own_feed),
            list: watch::Sender::new(list),
            own_role: watch::Sender::new(own_role),
        }
    }

    /// Starts the list again from the reply of a new `join`, which gave this session
    /// the feed `own_feed` and the role `own_role`.
    pub(crate) fn reset(&self, own_feed: u64, own_role: CallRole, joined: &[Participant]) {
        self.own_feed.store(own_feed, Ordering::Relaxed);
        let list = joined
            .iter()
            .map(CallParticipant::from_participant)
            .collect();
        self.list.send_replace(list);
        self.own_role.send_replace(own_role);
    }

    pub(crate) fn own_role(&self) -> CallRole {
        *self.own_role.borrow()
    }

    pub(crate) fn watch_own_role(&self) -> watch::Receiver<CallRole> {
        self.own_role.subscribe()
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
        if let CallEvent::RoleChanged { feed_id, role, .. } = event
            && *feed_id == own_feed
        {
            self.own_role.send_if_modified(|own| {
                let changed = own != role;
                *own = *role;
                changed
            });
            return;
        }
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
        CallEvent::HandRaised { user_id } => {
            update(list, *user_id, &|entry| entry.hand_raised = true)
        }
        CallEvent::HandLowered { user_id } => {
            update(list, *user_id, &|entry| entry.hand_raised = false)
        }
        CallEvent::RoleChanged { user_id, role, .. } => {
            let role = *role;
            update(list, *user_id, &|entry| {
                entry.role = role;
                entry.hand_raised = false;
                // The server unpublishes a participant it moves to the audience.
                if !role.may_publish() {
                    entry.publishing = false;
                    entry.speaking = false;
                }
            })
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
            role: CallRole::Speaker,
            hand_raised: false,
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
        let participants = Participants::new(OWN_FEED, CallRole::Speaker, &[muted]);
        let list = participants.snapshot();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].feed_id, 7);
        assert!(list[0].muted);
        assert!(list[0].publishing);
        assert!(!list[0].speaking);
    }

    #[test]
    fn own_join_is_left_out() {
        let participants = Participants::new(OWN_FEED, CallRole::Speaker, &[]);
        participants.apply(&CallEvent::ParticipantJoined {
            participant: participant(Uuid::now_v7(), OWN_FEED),
        });
        assert!(participants.snapshot().is_empty());
    }

    #[test]
    fn events_update_one_participant() {
        let alice = Uuid::now_v7();
        let bob = Uuid::now_v7();
        let participants = Participants::new(OWN_FEED, CallRole::Speaker, &[participant(alice, 7)]);
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
        let participants = Participants::new(OWN_FEED, CallRole::Speaker, &[participant(alice, 7)]);
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
        let participants = Participants::new(OWN_FEED, CallRole::Speaker, &[participant(alice, 7)]);
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
        let participants = Participants::new(OWN_FEED, CallRole::Speaker, &[participant(alice, 7)]);
        participants.reset(2, CallRole::Speaker, &[participant(alice, 9)]);
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
    fn hands_and_roles_update_entries() {
        let alice = Uuid::now_v7();
        let mut listener = participant(alice, 7);
        listener.role = CallRole::Audience;
        let participants = Participants::new(OWN_FEED, CallRole::Host, &[listener]);

        participants.apply(&CallEvent::HandRaised { user_id: alice });
        assert!(participants.snapshot()[0].hand_raised);
        participants.apply(&CallEvent::RoleChanged {
            user_id: alice,
            feed_id: 7,
            role: CallRole::Speaker,
        });
        participants.apply(&CallEvent::Published {
            user_id: alice,
            feed_id: 7,
            streams: vec![audio_stream()],
        });
        let entry = participants.snapshot()[0].clone();
        assert_eq!(entry.role, CallRole::Speaker);
        assert!(!entry.hand_raised);
        assert!(entry.publishing);

        participants.apply(&CallEvent::RoleChanged {
            user_id: alice,
            feed_id: 7,
            role: CallRole::Audience,
        });
        let entry = participants.snapshot()[0].clone();
        assert_eq!(entry.role, CallRole::Audience);
        assert!(!entry.publishing);
        assert_eq!(participants.own_role(), CallRole::Host);
    }

    #[test]
    fn own_role_follows_own_feed() {
        let participants = Participants::new(OWN_FEED, CallRole::Audience, &[]);
        let mut role = participants.watch_own_role();
        participants.apply(&CallEvent::RoleChanged {
            user_id: Uuid::now_v7(),
            feed_id: 9,
            role: CallRole::Speaker,
        });
        assert!(!role.has_changed().unwrap());

        participants.apply(&CallEvent::RoleChanged {
            user_id: Uuid::now_v7(),
            feed_id: OWN_FEED,
            role: CallRole::Speaker,
        });
        assert!(role.has_changed().unwrap());
        assert_eq!(*role.borrow_and_update(), CallRole::Speaker);
        assert!(participants.snapshot().is_empty());
    }

    #[test]
    fn call_end_empties_list() {
        let participants = Participants::new(
            OWN_FEED,
            CallRole::Speaker,
            &[participant(Uuid::now_v7(), 7)],
        );
        participants.apply(&CallEvent::Ended {
            call_id: Uuid::now_v7(),
        });
        assert!(participants.snapshot().is_empty());
    }
}
