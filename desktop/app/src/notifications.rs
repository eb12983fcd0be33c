//! Native notifications for new messages that concern the user: direct messages, replies
//! to the user's messages, and mentions of the user, `@room` or `@here`. The level chosen
//! in Settings ([`NotificationLevel`]) turns them off or extends them to every message.
//!
//! The live sync hands every `message.created` event to a [`Notifier`], whose task decides
//! with [`reason`] and shows the notification. A click on it shows the main window and
//! sends `open-room` with the room's id.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use roomler_client::Engine;
use roomler_shared::model::{Mention, Message, Room, RoomKind};
use roomler_shared::ws::{Event, EventKind};
use tauri::AppHandle;
use tauri::async_runtime::JoinHandle;
use tauri_plugin_notification::NotificationExt;
use time::OffsetDateTime;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::events::{OpenRoom, emit};
use crate::notification_level::{NotificationLevel, NotificationSettings};

/// Messages older than this when they arrive are counted as unread but not notified: a
/// catch-up after a night offline replays every message of the night.
pub const MAX_MESSAGE_AGE: Duration = Duration::from_secs(5 * 60);
/// Maximum length of a notification body in characters. Longer ones end in an ellipsis.
const BODY_MAX_CHARS: usize = 200;
/// Events waiting for the notifier task. Beyond this, new events are dropped and counted.
const QUEUE_CAPACITY: usize = 256;
/// Key of the room id in a notification's extra payload, read back when it is clicked.
const ROOM_ID_KEY: &str = "room_id";

/// The reason a message notifies the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// A message in a direct conversation.
    Direct,
    /// A reply to one of the user's messages.
    Reply,
    /// A mention of the user, `@room` or `@here`.
    Mention,
    /// Any other message, which notifies only at [`NotificationLevel::All`].
    Message,
}

/// Decides whether `message` notifies the user `me` at `level`, and why. `room_kind` is
/// `None` when the room is not in the cache, so at [`NotificationLevel::Mentions`] only
/// replies and mentions count. At [`NotificationLevel::Off`], and for the user's own
/// messages, deleted ones and those older than [`MAX_MESSAGE_AGE`] at `now`, nothing does.
pub fn reason(
    message: &Message,
    room_kind: Option<RoomKind>,
    me: Uuid,
    now: OffsetDateTime,
    level: NotificationLevel,
) -> Option<Reason> {
    if level == NotificationLevel::Off || message.author.id == me || message.deleted {
        return None;
    }
    if now - message.created_at > MAX_MESSAGE_AGE {
        return None;
    }
    if room_kind == Some(RoomKind::Direct) {
        return Some(Reason::Direct);
    }
    if message
        .reply_to
        .as_ref()
        .is_some_and(|parent| parent.author.id == me)
    {
        return Some(Reason::Reply);
    }
    // `@here` reaches the members who are online, and an app that receives live events is.
    let mentioned = message.mentions.iter().any(|mention| match mention {
        Mention::User { user_id, .. } => *user_id == me,
        Mention::Room | Mention::Here => true,
    });
    if mentioned {
        return Some(Reason::Mention);
    }
    (level == NotificationLevel::All).then_some(Reason::Message)
}

/// The title and body of a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub title: String,
    pub body: String,
    pub room_id: Uuid,
}

/// Writes the notification for `message`. `room` is the cached room, when there is one.
pub fn compose(message: &Message, reason: Reason, room: Option<&Room>) -> Notice {
    let author = &message.author.display_name;
    let place = room
        .map(|room| room.path.as_str())
        .filter(|path| !path.is_empty())
        .unwrap_or("a room");
    let title = match reason {
        Reason::Direct => author.clone(),
        Reason::Reply => format!("{author} replied to you in {place}"),
        Reason::Mention => format!("{author} mentioned you in {place}"),
        Reason::Message => format!("{author} in {place}"),
    };
    let body = if message.body.trim().is_empty() && !message.attachments.is_empty() {
        match message.attachments.len() {
            1 => "Sent a file".to_string(),
            count => format!("Sent {count} files"),
        }
    } else {
        shorten(message.body.trim(), BODY_MAX_CHARS)
    };
    Notice {
        title,
        body,
        room_id: message.room_id,
    }
}

fn shorten(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

/// The live sync's end of the queue to the notifier task. [`Notifier::offer`] never
/// blocks, because it runs inside the engine's receive loop.
pub(crate) struct Notifier {
    queue: mpsc::Sender<Event>,
    dropped: AtomicU64,
}

impl Notifier {
    /// Queues `event` when it is a new message.
    pub fn offer(&self, event: &Event) {
        if event.kind != EventKind::MessageCreated {
            return;
        }
        if self.queue.try_send(event.clone()).is_err() {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            // The first drop and every hundredth one are logged.
            if dropped % 100 == 1 {
                tracing::warn!(
                    dropped,
                    "the notification queue is full; skipping notifications"
                );
            }
        }
    }
}

/// Starts the notifier task of a session.
pub(crate) fn spawn(
    app: AppHandle,
    engine: Arc<Engine>,
    settings: NotificationSettings,
    shutdown: CancellationToken,
) -> (Notifier, JoinHandle<()>) {
    let (queue, mut events) = mpsc::channel::<Event>(QUEUE_CAPACITY);
    let task = tauri::async_runtime::spawn(async move {
        loop {
            let event = tokio::select! {
                () = shutdown.cancelled() => break,
                event = events.recv() => event,
            };
            let Some(event) = event else {
                break;
            };
            consider(&app, &engine, settings.level(), event);
        }
    });
    let notifier = Notifier {
        queue,
        dropped: AtomicU64::new(0),
    };
    (notifier, task)
}

fn consider(app: &AppHandle, engine: &Engine, level: NotificationLevel, event: Event) {
    if level == NotificationLevel::Off {
        return;
    }
    let message: Message = match serde_json::from_value(event.data) {
        Ok(message) => message,
        Err(error) => {
            tracing::debug!(seq = event.seq, %error, "a message.created event has no message");
            return;
        }
    };
    let room = match engine.cache().find_room(&message.room_id.to_string()) {
        Ok(room) => room,
        Err(error) => {
            tracing::warn!(room_id = %message.room_id, %error, "failed to read the room from the cache");
            None
        }
    };
    let now = OffsetDateTime::now_utc();
    let kind = room.as_ref().map(|room| room.kind);
    let Some(reason) = reason(&message, kind, engine.user_id(), now, level) else {
        return;
    };
    let notice = compose(&message, reason, room.as_ref());
    tracing::debug!(room_id = %notice.room_id, message_id = %message.id, ?reason, "notifying");
    show(app, notice);
}

fn show(app: &AppHandle, notice: Notice) {
    let result = app
        .notification()
        .builder()
        .title(notice.title)
        .body(notice.body)
        .extra(ROOM_ID_KEY, notice.room_id.to_string())
        .auto_cancel()
        .show();
    if let Err(error) = result {
        tracing::warn!(room_id = %notice.room_id, %error, "failed to show a notification");
    }
}

/// Makes a click on a notification show the main window and send `open-room`.
///
/// NOTE: on Linux the click arrives only when the notification server implements the
/// `default` action of the Desktop Notifications Specification and the session bus is
/// reachable. Without one, notifications still show but clicks are not reported.
pub fn handle_clicks(app: &AppHandle) {
    let handle = app.clone();
    let registered = app.notification().on_action(move |performed| {
        if performed.action_id() != "tap" {
            return;
        }
        crate::show_main_window(&handle);
        let room_id = performed
            .notification()
            .and_then(|notification| notification.extra().get(ROOM_ID_KEY))
            .and_then(|value| value.as_str())
            .and_then(|text| text.parse::<Uuid>().ok());
        match room_id {
            Some(room_id) => {
                tracing::info!(%room_id, "a notification was clicked; opening its room");
                emit(&handle, &OpenRoom { room_id });
            }
            None => tracing::debug!("a clicked notification carries no room id"),
        }
    });
    if let Err(error) = registered {
        tracing::warn!(%error, "failed to listen for notification clicks");
    }
}

#[cfg(test)]
mod tests {
    use roomler_shared::model::{Attachment, ReplyPreview, UserRef};
    use time::macros::datetime;

    use super::*;

    const NOW: OffsetDateTime = datetime!(2026-05-01 12:00:00 UTC);
    const MENTIONS: NotificationLevel = NotificationLevel::Mentions;

    fn user(name: &str) -> UserRef {
        UserRef {
            id: Uuid::new_v4(),
            username: name.into(),
            display_name: format!("{name} display"),
        }
    }

    fn message(author: &UserRef, body: &str) -> Message {
        Message {
            id: Uuid::new_v4(),
            room_id: Uuid::new_v4(),
            seq: 1,
            author: author.clone(),
            body: body.into(),
            html: String::new(),
            mentions: Vec::new(),
            reply_to: None,
            reply_count: 0,
            reactions: Vec::new(),
            attachments: Vec::new(),
            client_id: None,
            pinned: None,
            deleted: false,
            created_at: NOW - Duration::from_secs(3),
            edited_at: None,
        }
    }

    fn reply_to(author: &UserRef) -> Option<ReplyPreview> {
        Some(ReplyPreview {
            id: Uuid::new_v4(),
            author: author.clone(),
            excerpt: "earlier".into(),
            deleted: false,
        })
    }

    #[test]
    fn plain_message_stays_silent() {
        let (me, bob) = (user("me"), user("bob"));
        let message = message(&bob, "hello all");
        assert_eq!(
            reason(&message, Some(RoomKind::Public), me.id, NOW, MENTIONS),
            None
        );
        assert_eq!(reason(&message, None, me.id, NOW, MENTIONS), None);
    }

    #[test]
    fn mention_of_me_notifies() {
        let (me, bob) = (user("me"), user("bob"));
        let mut message = message(&bob, "@me look");
        message.mentions = vec![Mention::User {
            user_id: me.id,
            username: me.username.clone(),
        }];
        assert_eq!(
            reason(&message, Some(RoomKind::Public), me.id, NOW, MENTIONS),
            Some(Reason::Mention)
        );
    }

    #[test]
    fn mention_of_other_stays_silent() {
        let (me, bob, carol) = (user("me"), user("bob"), user("carol"));
        let mut message = message(&bob, "@carol look");
        message.mentions = vec![Mention::User {
            user_id: carol.id,
            username: carol.username.clone(),
        }];
        assert_eq!(
            reason(&message, Some(RoomKind::Private), me.id, NOW, MENTIONS),
            None
        );
    }

    #[test]
    fn room_and_here_mentions_notify() {
        let (me, bob) = (user("me"), user("bob"));
        for mention in [Mention::Room, Mention::Here] {
            let mut message = message(&bob, "everyone");
            message.mentions = vec![mention.clone()];
            assert_eq!(
                reason(&message, Some(RoomKind::Public), me.id, NOW, MENTIONS),
                Some(Reason::Mention),
                "{mention:?}"
            );
        }
    }

    #[test]
    fn reply_to_me_notifies() {
        let (me, bob) = (user("me"), user("bob"));
        let mut message = message(&bob, "agreed");
        message.reply_to = reply_to(&me);
        assert_eq!(
            reason(&message, Some(RoomKind::Public), me.id, NOW, MENTIONS),
            Some(Reason::Reply)
        );
        // The room need not be cached for a reply to count.
        assert_eq!(
            reason(&message, None, me.id, NOW, MENTIONS),
            Some(Reason::Reply)
        );
    }

    #[test]
    fn reply_to_other_stays_silent() {
        let (me, bob, carol) = (user("me"), user("bob"), user("carol"));
        let mut message = message(&bob, "agreed");
        message.reply_to = reply_to(&carol);
        assert_eq!(
            reason(&message, Some(RoomKind::Public), me.id, NOW, MENTIONS),
            None
        );
    }

    #[test]
    fn direct_message_notifies() {
        let (me, bob) = (user("me"), user("bob"));
        let message = message(&bob, "got a minute?");
        assert_eq!(
            reason(&message, Some(RoomKind::Direct), me.id, NOW, MENTIONS),
            Some(Reason::Direct)
        );
    }

    #[test]
    fn own_message_stays_silent() {
        let me = user("me");
        let mut message = message(&me, "@room note to self");
        message.mentions = vec![Mention::Room];
        message.reply_to = reply_to(&me);
        assert_eq!(
            reason(&message, Some(RoomKind::Direct), me.id, NOW, MENTIONS),
            None
        );
    }

    #[test]
    fn deleted_message_stays_silent() {
        let (me, bob) = (user("me"), user("bob"));
        let mut message = message(&bob, "");
        message.deleted = true;
        assert_eq!(
            reason(&message, Some(RoomKind::Direct), me.id, NOW, MENTIONS),
            None
        );
    }

    #[test]
    fn replayed_old_message_stays_silent() {
        let (me, bob) = (user("me"), user("bob"));
        let mut message = message(&bob, "from last night");
        message.created_at = NOW - MAX_MESSAGE_AGE - Duration::from_secs(1);
        assert_eq!(
            reason(&message, Some(RoomKind::Direct), me.id, NOW, MENTIONS),
            None
        );
        message.created_at = NOW - MAX_MESSAGE_AGE + Duration::from_secs(1);
        assert_eq!(
            reason(&message, Some(RoomKind::Direct), me.id, NOW, MENTIONS),
            Some(Reason::Direct)
        );
    }

    #[test]
    fn off_silences_everything() {
        let (me, bob) = (user("me"), user("bob"));
        let mut mention = message(&bob, "@me look");
        mention.mentions = vec![Mention::User {
            user_id: me.id,
            username: me.username.clone(),
        }];
        let mut reply = message(&bob, "agreed");
        reply.reply_to = reply_to(&me);
        let direct = message(&bob, "got a minute?");
        let off = NotificationLevel::Off;

        assert_eq!(
            reason(&mention, Some(RoomKind::Public), me.id, NOW, off),
            None
        );
        assert_eq!(
            reason(&reply, Some(RoomKind::Public), me.id, NOW, off),
            None
        );
        assert_eq!(
            reason(&direct, Some(RoomKind::Direct), me.id, NOW, off),
            None
        );
    }

    #[test]
    fn all_notifies_plain_messages() {
        let (me, bob) = (user("me"), user("bob"));
        let all = NotificationLevel::All;
        let plain = message(&bob, "hello all");
        assert_eq!(
            reason(&plain, Some(RoomKind::Public), me.id, NOW, all),
            Some(Reason::Message)
        );
        assert_eq!(reason(&plain, None, me.id, NOW, all), Some(Reason::Message));

        // The more specific reason still wins, for the notification's title.
        let direct = message(&bob, "got a minute?");
        assert_eq!(
            reason(&direct, Some(RoomKind::Direct), me.id, NOW, all),
            Some(Reason::Direct)
        );
    }

    #[test]
    fn all_skips_own_deleted_and_old() {
        let (me, bob) = (user("me"), user("bob"));
        let all = NotificationLevel::All;
        let own = message(&me, "note to self");
        assert_eq!(reason(&own, Some(RoomKind::Public), me.id, NOW, all), None);

        let mut deleted = message(&bob, "");
        deleted.deleted = true;
        assert_eq!(
            reason(&deleted, Some(RoomKind::Public), me.id, NOW, all),
            None
        );

        let mut old = message(&bob, "from last night");
        old.created_at = NOW - MAX_MESSAGE_AGE - Duration::from_secs(1);
        assert_eq!(reason(&old, Some(RoomKind::Public), me.id, NOW, all), None);
    }

    #[test]
    fn compose_names_author_and_room() {
        let bob = user("bob");
        let message = message(&bob, "  look at this  ");
        let room = Room {
            id: message.room_id,
            name: "frontend".into(),
            path: "team.frontend".into(),
            kind: RoomKind::Public,
            parent_id: None,
            topic: String::new(),
            owner_id: None,
            has_password: false,
            member_count: 2,
            last_seq: 1,
            role: None,
            created_at: NOW,
            call: None,
        };

        let mention = compose(&message, Reason::Mention, Some(&room));
        assert_eq!(mention.title, "bob display mentioned you in team.frontend");
        assert_eq!(mention.body, "look at this");
        assert_eq!(mention.room_id, room.id);

        let reply = compose(&message, Reason::Reply, None);
        assert_eq!(reply.title, "bob display replied to you in a room");

        let direct = compose(&message, Reason::Direct, Some(&room));
        assert_eq!(direct.title, "bob display");

        let plain = compose(&message, Reason::Message, Some(&room));
        assert_eq!(plain.title, "bob display in team.frontend");
    }

    #[test]
    fn compose_shortens_and_describes_files() {
        let bob = user("bob");
        let long = message(&bob, &"é".repeat(BODY_MAX_CHARS + 10));
        let body = compose(&long, Reason::Direct, None).body;
        assert_eq!(body.chars().count(), BODY_MAX_CHARS + 1);
        assert!(body.ends_with('…'));

        let mut files = message(&bob, "");
        files.attachments = vec![
            Attachment {
                id: Uuid::new_v4(),
                name: "a.png".into(),
                size: 1,
                mime: "image/png".into(),
                url: "/api/files/a".into(),
                thumbnail_url: None,
            };
            2
        ];
        assert_eq!(compose(&files, Reason::Direct, None).body, "Sent 2 files");
    }
}
