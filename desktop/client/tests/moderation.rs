//! The engine's moderation and joining calls against a real server started in-process:
//! room settings, invites, kicks, bans and roles, pins, a room's files and direct
//! messages, and the server's rejections of a role that may not act.

use std::net::SocketAddr;

use reqwest::StatusCode;
use roomler_client::shared::api::UpdateRoomRequest;
use roomler_client::shared::model::{Role, RoomKind};
use roomler_client::{ClientError, Engine, Profile};
use roomler_server::config::Settings;
use roomler_server::{AppState, Server};
use tempfile::TempDir;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const PASSWORD: &str = "correct horse battery";

/// A server on an ephemeral loopback port with its data in a temporary folder.
struct TestServer {
    addr: SocketAddr,
    _task: JoinHandle<anyhow::Result<()>>,
    _data: TempDir,
}

impl TestServer {
    async fn start() -> Self {
        let data = tempfile::tempdir().unwrap();
        let mut settings = Settings {
            addr: "127.0.0.1:0".parse().unwrap(),
            data_dir: data.path().to_path_buf(),
            ..Settings::default()
        };
        settings.rate_limit.enabled = false;
        let state = AppState::open(settings).unwrap();
        let server = Server::bind(state).await.unwrap();
        let addr = server.local_addr();
        let task = tokio::spawn(server.run());
        TestServer {
            addr,
            _task: task,
            _data: data,
        }
    }

    fn base(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Registers `username` and returns an engine on a fresh profile folder.
async fn register(server: &TestServer, username: &str) -> (Engine, TempDir) {
    let folder = tempfile::tempdir().unwrap();
    let engine = Engine::register(
        Profile::new(folder.path()),
        &server.base(),
        username,
        &format!("{username}@example.com"),
        PASSWORD,
    )
    .await
    .unwrap();
    (engine, folder)
}

/// Sends a message now and returns its id.
async fn send(engine: &Engine, room_id: Uuid, body: &str, attachments: Vec<Uuid>) -> Uuid {
    let item = engine
        .queue_message(room_id, body, None, attachments)
        .unwrap();
    let report = engine.flush_outbox().await.unwrap();
    assert_eq!(report.sent, 1, "sending {body:?}");
    let client_id = item.client_id.unwrap();
    let history = engine.history(room_id, 50).await.unwrap();
    history
        .iter()
        .find(|message| message.client_id.as_deref() == Some(client_id.as_str()))
        .unwrap_or_else(|| panic!("{body:?} is not in the cached history"))
        .id
}

/// Returns the status, code and message of a rejection, and panics on any other result.
fn rejection<T: std::fmt::Debug>(result: Result<T, ClientError>) -> (StatusCode, String, String) {
    match result {
        Err(ClientError::Rejected {
            status,
            code,
            message,
        }) => (status, code, message),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

fn cached_room_ids(engine: &Engine) -> Vec<Uuid> {
    let rooms = engine.rooms().unwrap();
    rooms.into_iter().map(|cached| cached.room.id).collect()
}

fn roles(members: &[roomler_client::shared::model::Member]) -> Vec<(String, Role)> {
    let mut roles: Vec<_> = members
        .iter()
        .map(|member| (member.user.username.clone(), member.role))
        .collect();
    roles.sort_by(|a, b| a.0.cmp(&b.0));
    roles
}

#[tokio::test]
async fn update_room_changes_name_topic_password() {
    let server = TestServer::start().await;
    let (alice, _alice_dir) = register(&server, "alice").await;
    let room = alice
        .create_room("ops", RoomKind::Private, Some("first secret".into()), None)
        .await
        .unwrap();

    let changes = UpdateRoomRequest {
        name: Some("operations".into()),
        topic: Some("On call".into()),
        password: Some("second secret".into()),
    };
    let updated = alice.update_room(room.id, changes).await.unwrap();
    assert_eq!(updated.path, "operations");
    assert_eq!(updated.topic, "On call");
    assert!(updated.has_password);
    let cached = alice.cache().find_room("operations").unwrap();
    assert_eq!(cached.map(|room| room.topic), Some("On call".to_string()));

    let clear = UpdateRoomRequest {
        password: Some(String::new()),
        ..UpdateRoomRequest::default()
    };
    let cleared = alice.update_room(room.id, clear).await.unwrap();
    assert!(!cleared.has_password);
    assert_eq!(cleared.topic, "On call");
}

#[tokio::test]
async fn update_room_rejects_plain_member() {
    let server = TestServer::start().await;
    let (alice, _alice_dir) = register(&server, "alice").await;
    let (bob, _bob_dir) = register(&server, "bob").await;
    let room = alice
        .create_room("general", RoomKind::Public, None, None)
        .await
        .unwrap();
    bob.join("general", None).await.unwrap();

    let changes = UpdateRoomRequest {
        topic: Some("hijacked".into()),
        ..UpdateRoomRequest::default()
    };
    let (status, code, message) = rejection(bob.update_room(room.id, changes).await);
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(code, "insufficient_role");
    assert!(message.contains("moderator"), "{message}");
}

#[tokio::test]
async fn invite_link_admits_user() {
    let server = TestServer::start().await;
    let (alice, _alice_dir) = register(&server, "alice").await;
    let (bob, _bob_dir) = register(&server, "bob").await;
    let room = alice
        .create_room("secret", RoomKind::Private, Some("hunter22".into()), None)
        .await
        .unwrap();

    let invite = alice
        .create_invite(room.id, Some(3600), true)
        .await
        .unwrap();
    assert_eq!(invite.invite.room_id, room.id);
    assert!(invite.invite.single_use);
    // The test server has no public URL, so the link is built the way the server builds it.
    assert_eq!(invite.url, None);
    let link = format!("{}/invite/{}", server.base(), invite.invite.code);

    let joined = bob.accept_invite(&link).await.unwrap();
    assert_eq!(joined.id, room.id);
    assert_eq!(joined.role, Some(Role::Member));
    assert!(cached_room_ids(&bob).contains(&room.id));
}

#[tokio::test]
async fn accept_invite_reports_unknown_code() {
    let server = TestServer::start().await;
    let (bob, _bob_dir) = register(&server, "bob").await;

    let (status, code, message) = rejection(bob.accept_invite("no-such-code").await);
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(code, "invite_not_found");
    assert!(message.contains("expired"), "{message}");

    let error = bob.accept_invite("not a code!").await.unwrap_err();
    assert!(
        matches!(&error, ClientError::Usage(text) if text.contains("\"not a code!\"")),
        "{error}"
    );
}

#[tokio::test]
async fn single_use_invite_works_once() {
    let server = TestServer::start().await;
    let (alice, _alice_dir) = register(&server, "alice").await;
    let (bob, _bob_dir) = register(&server, "bob").await;
    let (carol, _carol_dir) = register(&server, "carol").await;
    let room = alice
        .create_room("secret", RoomKind::Private, None, None)
        .await
        .unwrap();
    let invite = alice.create_invite(room.id, None, true).await.unwrap();

    bob.accept_invite(&invite.invite.code).await.unwrap();
    let (status, code, _) = rejection(carol.accept_invite(&invite.invite.code).await);
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(code, "invite_not_found");
}

#[tokio::test]
async fn roles_kick_and_ban() {
    let server = TestServer::start().await;
    let (alice, _alice_dir) = register(&server, "alice").await;
    let (bob, _bob_dir) = register(&server, "bob").await;
    let (carol, _carol_dir) = register(&server, "carol").await;
    let room = alice
        .create_room("general", RoomKind::Public, None, None)
        .await
        .unwrap();
    bob.join("general", None).await.unwrap();
    carol.join("general", None).await.unwrap();

    // The owner promotes bob, who may then act on plain members.
    let members = alice
        .set_role(room.id, bob.user_id(), Role::Moderator)
        .await
        .unwrap();
    assert_eq!(
        roles(&members),
        [
            ("alice".to_string(), Role::Owner),
            ("bob".to_string(), Role::Moderator),
            ("carol".to_string(), Role::Member),
        ]
    );

    let members = bob.kick(room.id, carol.user_id()).await.unwrap();
    assert_eq!(members.len(), 2, "members after the kick: {members:?}");
    assert_eq!(roles(&bob.cache().members(room.id).unwrap()).len(), 2);

    // A kicked member may join again, a banned one may not.
    carol.join("general", None).await.unwrap();
    let members = bob.ban(room.id, carol.user_id()).await.unwrap();
    assert_eq!(members.len(), 2, "members after the ban: {members:?}");
    let (status, code, _) = rejection(carol.join("general", None).await);
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(code, "banned");

    // The owner demotes bob again.
    let members = alice
        .set_role(room.id, bob.user_id(), Role::Member)
        .await
        .unwrap();
    assert!(roles(&members).contains(&("bob".to_string(), Role::Member)));
}

#[tokio::test]
async fn kick_rejects_plain_member() {
    let server = TestServer::start().await;
    let (alice, _alice_dir) = register(&server, "alice").await;
    let (bob, _bob_dir) = register(&server, "bob").await;
    let (carol, _carol_dir) = register(&server, "carol").await;
    let room = alice
        .create_room("general", RoomKind::Public, None, None)
        .await
        .unwrap();
    bob.join("general", None).await.unwrap();
    carol.join("general", None).await.unwrap();

    let (status, code, message) = rejection(carol.kick(room.id, bob.user_id()).await);
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(code, "insufficient_role");
    assert!(message.contains("you are a member"), "{message}");

    let (_, code, _) = rejection(carol.ban(room.id, bob.user_id()).await);
    assert_eq!(code, "insufficient_role");
    let members = alice.api().members(room.id).await.unwrap();
    assert_eq!(members.len(), 3, "nobody left: {members:?}");
}

#[tokio::test]
async fn moderator_cannot_promote() {
    let server = TestServer::start().await;
    let (alice, _alice_dir) = register(&server, "alice").await;
    let (bob, _bob_dir) = register(&server, "bob").await;
    let (carol, _carol_dir) = register(&server, "carol").await;
    let room = alice
        .create_room("general", RoomKind::Public, None, None)
        .await
        .unwrap();
    bob.join("general", None).await.unwrap();
    carol.join("general", None).await.unwrap();
    alice
        .set_role(room.id, bob.user_id(), Role::Moderator)
        .await
        .unwrap();

    let result = bob
        .set_role(room.id, carol.user_id(), Role::Moderator)
        .await;
    let (status, code, _) = rejection(result);
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(code, "insufficient_role");
}

#[tokio::test]
async fn pins_list_follows_pin_and_unpin() {
    let server = TestServer::start().await;
    let (alice, _alice_dir) = register(&server, "alice").await;
    let (bob, _bob_dir) = register(&server, "bob").await;
    let room = alice
        .create_room("general", RoomKind::Public, None, None)
        .await
        .unwrap();
    bob.join("general", None).await.unwrap();
    let message_id = send(&alice, room.id, "the release checklist", vec![]).await;

    let pinned = alice.set_pin(message_id, true).await.unwrap();
    assert_eq!(pinned.pinned.map(|pin| pin.by), Some(alice.user_id()));
    let cached = alice.cache().message(message_id).unwrap().unwrap();
    assert!(cached.pinned.is_some(), "the cache keeps the pin");
    let pins = bob.pins(room.id).await.unwrap();
    assert_eq!(pins.iter().map(|m| m.id).collect::<Vec<_>>(), [message_id]);

    let (_, code, _) = rejection(bob.set_pin(message_id, false).await);
    assert_eq!(code, "insufficient_role");

    let unpinned = alice.set_pin(message_id, false).await.unwrap();
    assert!(unpinned.pinned.is_none());
    assert!(alice.pins(room.id).await.unwrap().is_empty());
}

#[tokio::test]
async fn room_files_name_uploader_and_time() {
    let server = TestServer::start().await;
    let (alice, _alice_dir) = register(&server, "alice").await;
    let (bob, _bob_dir) = register(&server, "bob").await;
    let room = alice
        .create_room("general", RoomKind::Public, None, None)
        .await
        .unwrap();
    bob.join("general", None).await.unwrap();

    let bytes = b"quarterly numbers".to_vec();
    let size = bytes.len() as u64;
    let uploaded = alice
        .api()
        .upload(room.id, "report.txt", reqwest::Body::from(bytes), size)
        .await
        .unwrap();
    let message_id = send(&alice, room.id, "see attached", vec![uploaded.id]).await;
    let posted = alice.cache().message(message_id).unwrap().unwrap();

    let files = alice.room_files(room.id).await.unwrap();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].name, "report.txt");
    assert_eq!(files[0].size, size);
    assert_eq!(
        files[0]
            .uploader
            .as_ref()
            .map(|user| user.username.as_str()),
        Some("alice")
    );
    assert!(
        files[0].uploaded_at <= posted.created_at,
        "uploaded at {} but posted at {}",
        files[0].uploaded_at,
        posted.created_at
    );

    // Bob has cached none of the room's messages, and the server still names the uploader.
    assert!(bob.cache().history(room.id, None, 50).unwrap().is_empty());
    let files = bob.room_files(room.id).await.unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(
        files[0]
            .uploader
            .as_ref()
            .map(|user| user.username.as_str()),
        Some("alice")
    );
    assert_eq!(
        files[0].uploaded_at,
        alice.room_files(room.id).await.unwrap()[0].uploaded_at
    );
}

#[tokio::test]
async fn bans_list_and_unban() {
    let server = TestServer::start().await;
    let (alice, _alice_dir) = register(&server, "alice").await;
    let (bob, _bob_dir) = register(&server, "bob").await;
    let room = alice
        .create_room("general", RoomKind::Public, None, None)
        .await
        .unwrap();
    bob.join("general", None).await.unwrap();
    assert!(alice.bans(room.id).await.unwrap().is_empty());

    alice.ban(room.id, bob.user_id()).await.unwrap();
    let bans = alice.bans(room.id).await.unwrap();
    assert_eq!(bans.len(), 1, "{bans:?}");
    assert_eq!(bans[0].user.username, "bob");
    assert_eq!(bans[0].banned_by, alice.user_id());

    // Bob, no longer a member of the public room, may not list the bans.
    let (status, code, _) = rejection(bob.bans(room.id).await);
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(code, "not_a_member");

    let left = alice.unban(room.id, bob.user_id()).await.unwrap();
    assert!(left.is_empty(), "{left:?}");
    bob.join("general", None).await.unwrap();
    let (status, code, _) = rejection(alice.unban(room.id, bob.user_id()).await);
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(code, "ban_not_found");
}

#[tokio::test]
async fn ownership_transfer_swaps_roles() {
    let server = TestServer::start().await;
    let (alice, _alice_dir) = register(&server, "alice").await;
    let (bob, _bob_dir) = register(&server, "bob").await;
    let room = alice
        .create_room("general", RoomKind::Public, None, None)
        .await
        .unwrap();
    bob.join("general", None).await.unwrap();

    // Only the owner may hand the room over.
    let (status, code, _) = rejection(bob.transfer_ownership(room.id, bob.user_id()).await);
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(code, "insufficient_role");

    let members = alice
        .transfer_ownership(room.id, bob.user_id())
        .await
        .unwrap();
    assert_eq!(
        roles(&members),
        [
            ("alice".to_string(), Role::Moderator),
            ("bob".to_string(), Role::Owner),
        ]
    );
    let cached = alice.cache().find_room(&room.id.to_string()).unwrap();
    assert_eq!(cached.and_then(|room| room.role), Some(Role::Moderator));

    // Alice is no longer the owner, so she cannot take it back.
    let (status, code, _) = rejection(alice.transfer_ownership(room.id, alice.user_id()).await);
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(code, "insufficient_role");
}

#[tokio::test]
async fn room_file_downloads_uncached() {
    let server = TestServer::start().await;
    let (alice, _alice_dir) = register(&server, "alice").await;
    let (bob, _bob_dir) = register(&server, "bob").await;
    let room = alice
        .create_room("general", RoomKind::Public, None, None)
        .await
        .unwrap();
    bob.join("general", None).await.unwrap();
    let bytes = b"minutes of the meeting".to_vec();
    let size = bytes.len() as u64;
    let uploaded = alice
        .api()
        .upload(
            room.id,
            "minutes.txt",
            reqwest::Body::from(bytes.clone()),
            size,
        )
        .await
        .unwrap();
    send(&alice, room.id, "minutes", vec![uploaded.id]).await;

    // Bob has no cached message with the file, only the room's file list.
    let attachment = bob.room_file(room.id, uploaded.id).await.unwrap();
    assert_eq!(attachment.name, "minutes.txt");
    assert_eq!(attachment.size, size);
    let path = bob
        .download(&attachment, |_| {}, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), bytes);

    let missing = Uuid::new_v4();
    let error = bob.room_file(room.id, missing).await.unwrap_err();
    assert!(
        matches!(&error, ClientError::Usage(message) if message.contains(&missing.to_string())),
        "{error:?}"
    );
}

#[tokio::test]
async fn open_direct_by_username() {
    let server = TestServer::start().await;
    let (alice, _alice_dir) = register(&server, "alice").await;
    let (bob, _bob_dir) = register(&server, "bob").await;

    let room = alice.open_direct(" @Bob ").await.unwrap();
    assert_eq!(room.kind, RoomKind::Direct);
    assert_eq!(room.member_count, 2);
    assert!(cached_room_ids(&alice).contains(&room.id));

    // Opening it again, from either side, returns the same room.
    let again = bob.open_direct("alice").await.unwrap();
    assert_eq!(again.id, room.id);
}

#[tokio::test]
async fn open_direct_reports_unknown_user() {
    let server = TestServer::start().await;
    let (alice, _alice_dir) = register(&server, "alice").await;

    let (status, code, _) = rejection(alice.open_direct("nobody").await);
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(code, "user_not_found");

    let error = alice.open_direct("  ").await.unwrap_err();
    assert!(matches!(error, ClientError::Usage(_)), "{error}");
}
