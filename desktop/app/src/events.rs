//! The events the shell sends to the UI, and the task that forwards the engine's changes
//! to it.

use std::sync::Arc;

use roomler_client::Engine;
use serde::Serialize;
use tauri::AppHandle;
use tauri::async_runtime::JoinHandle;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::dto::{CallEvent, Change, ConnectionState};
use crate::tray::UnreadSignal;

/// A change in the engine: `{type: "cache", kind, ...}` when cached data moved, for the UI
/// to reload it, or `{type: "connection", state, ...}` when the live connection did.
#[derive(Debug, Clone, Serialize, specta::Type, tauri_specta::Event)]
#[serde(tag = "type", rename_all = "snake_case")]
#[tauri_specta(event_name = "engine-event")]
pub enum EngineEvent {
    Cache(Change),
    Connection(ConnectionState),
    /// Something happened in a room's call: `{type: "call", room_id, event, ...}`.
    Call {
        room_id: Uuid,
        event: CallEvent,
    },
}

impl From<roomler_client::EngineEvent> for EngineEvent {
    fn from(event: roomler_client::EngineEvent) -> Self {
        match event {
            roomler_client::EngineEvent::Cache(change) => EngineEvent::Cache(change.into()),
            roomler_client::EngineEvent::Connection(state) => EngineEvent::Connection(state.into()),
            roomler_client::EngineEvent::Call { room_id, event } => EngineEvent::Call {
                room_id,
                event: event.into(),
            },
        }
    }
}

/// The server ended the user's part in a call, e.g. because a moderator banned them
/// from the room. `reason` is the server's explanation.
#[derive(Debug, Clone, Serialize, specta::Type, tauri_specta::Event)]
#[tauri_specta(event_name = "call-ended")]
pub struct CallEnded {
    pub room_id: Uuid,
    pub reason: String,
}

/// The participants of the user's call changed, or the user's own feed did, which a
/// new join after a lost connection replaces. `participants` are the others.
#[derive(Debug, Clone, Serialize, specta::Type, tauri_specta::Event)]
#[tauri_specta(event_name = "call-participants")]
pub struct CallParticipants {
    pub room_id: Uuid,
    pub feed_id: u64,
    pub participants: Vec<crate::calls::CallParticipant>,
}

/// The user's own microphone, camera or speaker changed in a call: a switch, a
/// device lost during the call, or a failed publish after an invitation to speak.
#[derive(Debug, Clone, Serialize, specta::Type, tauri_specta::Event)]
#[tauri_specta(event_name = "call-media")]
pub struct CallMedia {
    pub room_id: Uuid,
    pub media: crate::calls::CallMediaState,
}

/// A request to show a room, sent after the user clicked a notification about it.
#[derive(Debug, Clone, Serialize, specta::Type, tauri_specta::Event)]
#[tauri_specta(event_name = "open-room")]
pub struct OpenRoom {
    pub room_id: Uuid,
}

/// Sends an event to the UI, logging a failure.
pub(crate) fn emit(app: &AppHandle, event: &(impl tauri_specta::Event + Serialize + Clone)) {
    if let Err(error) = event.emit(app) {
        tracing::warn!(%error, "failed to send an event to the UI");
    }
}

/// Forwards the engine's changes to the UI as `engine-event` until `shutdown`, and has the
/// tray recount unread messages after each change of the cache.
pub(crate) fn spawn_forwarder(
    app: AppHandle,
    engine: Arc<Engine>,
    mut changes: broadcast::Receiver<roomler_client::EngineEvent>,
    unread: UnreadSignal,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    tauri::async_runtime::spawn(async move {
        loop {
            let received = tokio::select! {
                () = shutdown.cancelled() => break,
                received = changes.recv() => received,
            };
            match received {
                Ok(event) => {
                    if matches!(event, roomler_client::EngineEvent::Cache(_)) {
                        unread.notify();
                    }
                    emit(&app, &EngineEvent::from(event));
                }
                Err(RecvError::Lagged(skipped)) => {
                    tracing::warn!(
                        skipped,
                        "the UI fell behind the engine's changes; asking it to reload everything"
                    );
                    unread.notify();
                    reload_everything(&app, &engine);
                }
                Err(RecvError::Closed) => break,
            }
        }
    })
}

/// Replaces changes that were dropped: every room, every room's messages and the
/// outbox changed, as far as the UI can tell.
fn reload_everything(app: &AppHandle, engine: &Engine) {
    emit(app, &EngineEvent::Cache(Change::RoomsChanged));
    emit(app, &EngineEvent::Cache(Change::OutboxChanged));
    match engine.rooms() {
        Ok(rooms) => {
            for cached in rooms {
                let room_id = cached.room.id;
                emit(
                    app,
                    &EngineEvent::Cache(Change::MessagesChanged { room_id }),
                );
            }
        }
        Err(error) => tracing::warn!(%error, "failed to list the cached rooms"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn engine_event_json_matches_engine() {
        let room_id = Uuid::new_v4();
        let events = [
            roomler_client::EngineEvent::Cache(roomler_client::cache::Change::MessagesChanged {
                room_id,
            }),
            roomler_client::EngineEvent::Connection(roomler_client::ConnectionState::Online),
            roomler_client::EngineEvent::Call {
                room_id,
                event: roomler_shared::call::CallEvent::Speaking {
                    user_id: Uuid::nil(),
                    speaking: true,
                },
            },
        ];
        for event in events {
            let engine = serde_json::to_value(&event).unwrap();
            let mirror = serde_json::to_value(EngineEvent::from(event)).unwrap();
            assert_eq!(mirror, engine);
        }
    }

    #[test]
    fn engine_event_is_flat() {
        let event = EngineEvent::Cache(Change::MessagesChanged {
            room_id: Uuid::nil(),
        });
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(
            json,
            json!({"type": "cache", "kind": "messages_changed", "room_id": Uuid::nil()})
        );
    }
}
