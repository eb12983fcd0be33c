//! Small builders for the conformance tests.

use roomler_server::store::{
    Conflict, Fanout, NewMessage, NewRoom, NewUser, Posted, RoomRecord, Store, StoreError,
    StoreResult, UserRecord,
};
use roomler_shared::model::{Message, Role, RoomKind};
use roomler_shared::ws::Event;
use uuid::Uuid;

pub fn new_user(name: &str) -> NewUser {
    NewUser {
        username: name.to_string(),
        username_key: name.to_lowercase(),
        display_name: name.to_string(),
        email: format!("{}@example.com", name.to_lowercase()),
        password_hash: format!("hash-of-{name}"),
    }
}

pub async fn user(store: &dyn Store, name: &str) -> UserRecord {
    store.create_user(new_user(name)).await.unwrap()
}

/// Creates a room whose name is the last segment of `path`.
pub async fn room(
    store: &dyn Store,
    creator: Uuid,
    path: &str,
    kind: RoomKind,
    parent_id: Option<Uuid>,
) -> RoomRecord {
    let name = path.rsplit('.').next().unwrap().to_string();
    let (room, _) = store
        .create_room(NewRoom {
            name,
            path: path.to_string(),
            kind,
            parent_id,
            topic: String::new(),
            password_hash: None,
            creator_id: creator,
        })
        .await
        .unwrap();
    room
}

pub async fn join(store: &dyn Store, room_id: Uuid, user_id: Uuid) {
    store
        .add_member(room_id, user_id, Role::Member)
        .await
        .unwrap();
}

/// Builds a message with a fresh `client_id`.
pub fn new_message(room_id: Uuid, author_id: Uuid, body: &str) -> NewMessage {
    NewMessage {
        room_id,
        author_id,
        body: body.to_string(),
        html: format!("<p>{body}</p>"),
        mentions: Vec::new(),
        reply_to: None,
        client_id: Uuid::new_v4().to_string(),
        attachments: Vec::new(),
    }
}

/// Posts a message that must be new, and returns it.
pub async fn post(store: &dyn Store, room_id: Uuid, author_id: Uuid, body: &str) -> Message {
    created(
        store
            .post_message(new_message(room_id, author_id, body))
            .await,
    )
}

pub fn created(posted: StoreResult<Posted>) -> Message {
    match posted.unwrap() {
        Posted::Created(message, _) => message,
        Posted::Existing(message) => panic!("expected a new message, got existing {message:?}"),
    }
}

pub fn assert_conflict<T: std::fmt::Debug>(result: StoreResult<T>, expected: Conflict) {
    match result {
        Err(StoreError::Conflict(conflict)) => assert_eq!(conflict, expected),
        other => panic!("expected the conflict {expected:?}, got {other:?}"),
    }
}

/// Returns the recipients of a fanout, sorted.
pub fn recipients(fanout: &Fanout) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = fanout.recipients.iter().map(|(id, _)| *id).collect();
    ids.sort();
    ids
}

pub fn sorted(mut ids: Vec<Uuid>) -> Vec<Uuid> {
    ids.sort();
    ids
}

/// Reads every event of the user's retained stream.
pub async fn all_events(store: &dyn Store, user_id: Uuid) -> Vec<Event> {
    store.events_since(user_id, 0, 10_000).await.unwrap()
}

/// Finds the events whose payload contains `text`, as `kind@seq` for a failure message.
pub fn events_containing(events: &[Event], text: &str) -> Vec<String> {
    events
        .iter()
        .filter(|event| event.data.to_string().contains(text))
        .map(|event| format!("{}@{}", event.kind.as_str(), event.seq))
        .collect()
}

/// Lets the clock move, so that rows written next get a later millisecond.
pub async fn tick() {
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
}
