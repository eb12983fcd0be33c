//! Live events over `GET /api/ws`: delivery to room members, per-user sequence
//! numbers, resume and resync, heartbeats, slow clients, shutdown and restart.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use futures_util::future::join_all;
use futures_util::{SinkExt, StreamExt};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use uuid::Uuid;

use crate::common::{EVENT_TIMEOUT, TestServer, TestUser, WsClient};

/// How long a test waits to be sure that no frame is coming.
const NO_FRAME_WAIT: Duration = Duration::from_millis(500);

/// WebSocket close codes: 1001 is "going away", 1008 a policy violation.
const CLOSE_GOING_AWAY: u16 = 1001;
const CLOSE_POLICY: u16 = 1008;

type WsStream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Connections by user name, for tests that watch several users at once.
type Clients = BTreeMap<&'static str, WsClient>;

// Helpers.

fn ws_request(
    user: &TestUser,
    path: &str,
) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    let url = format!("{}{path}", user.base.replacen("http", "ws", 1));
    let mut request = url.into_client_request().unwrap();
    let header = format!("Bearer {}", user.token).parse().unwrap();
    request.headers_mut().insert("authorization", header);
    request
}

/// Opens `path` as `user` and returns the connection with its `hello` frame.
async fn open(user: &TestUser, path: &str) -> (WsClient, Value) {
    let (stream, _) = tokio_tungstenite::connect_async(ws_request(user, path))
        .await
        .unwrap();
    let mut client = WsClient { stream };
    let hello = client.next_frame().await.expect("a hello frame");
    assert_eq!(hello["type"], "hello", "first frame: {hello}");
    (client, hello)
}

/// Opens a connection on which live events flow at once, and returns it with the
/// user's newest sequence number from `hello`. Until the client's first frame the
/// server delays live events to wait for a `resume`, and a `ping` ends that wait.
async fn open_live(user: &TestUser) -> (WsClient, i64) {
    let (mut client, hello) = open(user, "/api/ws").await;
    client.send_json(json!({"type": "ping"})).await;
    let pong = client.next_frame().await.expect("a pong frame");
    assert_eq!(pong["type"], "pong", "reply to the first ping: {pong}");
    (client, seq_of(&hello))
}

fn seq_of(frame: &Value) -> i64 {
    frame["seq"]
        .as_i64()
        .unwrap_or_else(|| panic!("no seq in {frame}"))
}

/// Reads the next frame and checks that it is an event of `kind`.
async fn expect_event(client: &mut WsClient, kind: &str, reader: &str) -> Value {
    let frame = client
        .next_frame()
        .await
        .unwrap_or_else(|| panic!("{reader}: no frame came, expected {kind}"));
    assert_eq!(frame["type"], kind, "{reader}: unexpected frame {frame}");
    frame
}

/// Reads the next frame of each named connection, checks that it is an event of
/// `kind` and returns the events.
async fn expect_at(clients: &mut Clients, names: &[&str], kind: &str) -> Vec<Value> {
    let mut events = Vec::new();
    for name in names {
        let client = clients.get_mut(*name).unwrap();
        events.push(expect_event(client, kind, name).await);
    }
    events
}

/// Creates a public room owned by `members[0]` that the others join, and returns its id.
async fn room_of(name: &str, members: &[&TestUser]) -> Uuid {
    let (owner, others) = members.split_first().unwrap();
    let room_id = owner.create_public_room(name).await;
    for user in others {
        let joined = user.join(name).await;
        assert_eq!(
            joined.status,
            StatusCode::OK,
            "{} joins {name}: {}",
            user.username,
            joined.body
        );
    }
    room_id
}

/// Returns the same account, addressed to another server that runs on the same data.
fn on_server(user: &TestUser, server: &TestServer) -> TestUser {
    let mut user = user.clone();
    user.base = server.base.clone();
    user
}

/// How a connection ended, as [`read_to_end`] saw it.
#[derive(Debug, PartialEq)]
enum Ending {
    /// A Close frame came, with this code.
    Closed(Option<u16>),
    /// The stream ended or broke without a Close frame.
    Dropped,
    /// The connection was still open at the deadline.
    StillOpen,
}

/// Reads until the connection ends or `timeout` passes, and returns how it ended
/// with the text frames that came first.
async fn read_to_end(stream: &mut WsStream, timeout: Duration) -> (Ending, Vec<Value>) {
    let deadline = Instant::now() + timeout;
    let mut frames = Vec::new();
    loop {
        let Ok(received) = tokio::time::timeout_at(deadline, stream.next()).await else {
            return (Ending::StillOpen, frames);
        };
        match received {
            Some(Ok(WsMessage::Text(text))) => frames.push(serde_json::from_str(&text).unwrap()),
            Some(Ok(WsMessage::Close(frame))) => {
                let code = frame.map(|frame| u16::from(frame.code));
                return (Ending::Closed(code), frames);
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return (Ending::Dropped, frames),
        }
    }
}

/// Opens a WebSocket as `user` over plain TCP: sends the upgrade request and reads
/// the `101` response. The caller then never writes, so it never sends a pong.
async fn raw_upgrade(server: &TestServer, user: &TestUser) -> TcpStream {
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let request = format!(
        "GET /api/ws HTTP/1.1\r\n\
         Host: {}\r\n\
         Connection: Upgrade\r\n\
         Upgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Authorization: Bearer {}\r\n\r\n",
        server.addr, user.token
    );
    stream.write_all(request.as_bytes()).await.unwrap();

    let mut response = Vec::new();
    let mut buffer = [0u8; 1024];
    while !response.windows(4).any(|window| window == b"\r\n\r\n") {
        let read = tokio::time::timeout(EVENT_TIMEOUT, stream.read(&mut buffer))
            .await
            .expect("timed out waiting for the upgrade response")
            .unwrap();
        assert!(
            read > 0,
            "the server closed the connection during the upgrade"
        );
        response.extend_from_slice(&buffer[..read]);
    }
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 101"), "upgrade response: {text}");
    stream
}

/// Reads and discards bytes until the peer closes the connection. Returns false
/// when `timeout` passes first.
async fn wait_for_eof(stream: &mut TcpStream, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut buffer = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

/// Opens a WebSocket as `user` that the caller leaves unread. It sends a `ping` so
/// that live events flow at once, and its 4 KiB TCP receive buffer makes the
/// server's writes block soon.
async fn open_unread(server: &TestServer, user: &TestUser) -> WsClient {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let tcp = socket.connect(server.addr).await.unwrap();
    let request = ws_request(user, "/api/ws");
    let (stream, _) = tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(tcp))
        .await
        .unwrap();
    let mut client = WsClient { stream };
    client.send_json(json!({"type": "ping"})).await;
    client
}

async fn post_with_client_id(user: &TestUser, room_id: Uuid, body: &str, client_id: &str) -> Value {
    let request = json!({"body": body, "client_id": client_id});
    let answer = user
        .post(&format!("/api/rooms/{room_id}/messages"), request)
        .await;
    assert!(
        answer.status == StatusCode::CREATED || answer.status == StatusCode::OK,
        "send with client_id {client_id}: {} {}",
        answer.status,
        answer.body
    );
    answer.body
}

/// Which way a reconnecting client asks for the events it missed.
#[derive(Clone, Copy)]
enum ResumeBy {
    /// A `{"type":"resume","since":N}` frame after `hello`.
    Frame,
    /// `GET /api/ws?since=N`.
    Query,
}

/// Reconnects as `user`, resumes after `since` and returns the connection with its
/// `hello` frame.
async fn reconnect(user: &TestUser, since: i64, by: ResumeBy) -> (WsClient, Value) {
    match by {
        ResumeBy::Frame => {
            let (mut client, hello) = open(user, "/api/ws").await;
            client
                .send_json(json!({"type": "resume", "since": since}))
                .await;
            (client, hello)
        }
        ResumeBy::Query => open(user, &format!("/api/ws?since={since}")).await,
    }
}

/// Reads the replay of `bodies` as `message.created` events numbered from
/// `since + 1`, then the `resumed` frame that ends it.
async fn expect_replay(client: &mut WsClient, since: i64, bodies: &[String]) {
    for (offset, body) in bodies.iter().enumerate() {
        let event = expect_event(client, "message.created", "replay").await;
        assert_eq!(
            seq_of(&event),
            since + 1 + offset as i64,
            "replayed {event}"
        );
        assert_eq!(event["data"]["body"], body.as_str(), "replayed {event}");
    }
    let resumed = client.next_frame().await.expect("a resumed frame");
    assert_eq!(resumed["type"], "resumed", "after the replay: {resumed}");
    assert_eq!(seq_of(&resumed), since + bodies.len() as i64, "{resumed}");
}

// Delivery.

#[tokio::test]
async fn message_reaches_every_member() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let carol = server.register("carol").await;
    let outsider = server.register("dave").await;
    let room_id = room_of("general", &[&alice, &bob, &carol]).await;
    let mut members = Vec::new();
    for user in [&alice, &bob, &carol] {
        let (client, latest) = open_live(user).await;
        members.push((user, client, latest));
    }
    let (mut outsider_client, _) = open_live(&outsider).await;

    let message = alice.send(room_id, "hello everyone").await;

    for (user, client, latest) in &mut members {
        let name = user.username.as_str();
        let event = expect_event(client, "message.created", name).await;
        assert_eq!(event["room_id"], room_id.to_string(), "{name}: {event}");
        assert_eq!(event["data"]["id"], message["id"], "{name}: {event}");
        assert_eq!(event["data"]["body"], "hello everyone", "{name}: {event}");
        assert_eq!(seq_of(&event), *latest + 1, "{name}: {event}");
    }
    let unexpected = outsider_client.next_frame_within(NO_FRAME_WAIT).await;
    assert_eq!(unexpected, None, "a non-member received a frame");
}

#[tokio::test]
async fn seq_is_per_user() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let room_id = room_of("general", &[&alice, &bob]).await;
    let (mut alice_client, _) = open_live(&alice).await;
    let (mut bob_client, _) = open_live(&bob).await;

    alice.send(room_id, "one event, two numbers").await;

    // Alice's stream already contains room.created and bob's member.joined, bob's
    // stream only the member.joined.
    let alice_event = expect_event(&mut alice_client, "message.created", "alice").await;
    let bob_event = expect_event(&mut bob_client, "message.created", "bob").await;
    assert_eq!(seq_of(&alice_event), 3, "alice: {alice_event}");
    assert_eq!(seq_of(&bob_event), 2, "bob: {bob_event}");
}

#[tokio::test]
async fn live_events_flow_without_resume() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let room_id = room_of("general", &[&alice, &bob]).await;
    let mut client = alice.connect().await;

    bob.send(room_id, "no resume sent").await;

    let event = expect_event(&mut client, "message.created", "alice").await;
    assert_eq!(event["data"]["body"], "no resume sent", "{event}");
}

#[tokio::test]
async fn message_events_reach_members() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let room_id = room_of("general", &[&alice, &bob]).await;
    let mut clients = Clients::new();
    clients.insert("alice", open_live(&alice).await.0);
    clients.insert("bob", open_live(&bob).await.0);
    let both = ["alice", "bob"];

    let message = bob.send(room_id, "first draft").await;
    let message_id = message["id"].as_str().unwrap().to_string();
    for event in expect_at(&mut clients, &both, "message.created").await {
        assert_eq!(event["data"]["id"], message_id.as_str(), "{event}");
    }

    let edited = bob
        .patch(
            &format!("/api/messages/{message_id}"),
            json!({"body": "final text"}),
        )
        .await;
    assert_eq!(edited.status, StatusCode::OK, "edit: {}", edited.body);
    for event in expect_at(&mut clients, &both, "message.edited").await {
        assert_eq!(event["room_id"], room_id.to_string(), "{event}");
        assert_eq!(event["data"]["id"], message_id.as_str(), "{event}");
        assert_eq!(event["data"]["body"], "final text", "{event}");
        assert!(!event["data"]["edited_at"].is_null(), "{event}");
    }

    let reaction_path = format!("/api/messages/{message_id}/reactions/tada");
    let added = alice.put(&reaction_path, json!({})).await;
    assert_eq!(
        added.status,
        StatusCode::NO_CONTENT,
        "react: {}",
        added.body
    );
    for event in expect_at(&mut clients, &both, "reaction.added").await {
        assert_eq!(event["data"]["message_id"], message_id.as_str(), "{event}");
        assert_eq!(event["data"]["user_id"], alice.id.to_string(), "{event}");
        assert_eq!(event["data"]["emoji"], "🎉", "{event}");
    }

    let removed = alice.delete(&reaction_path).await;
    assert_eq!(
        removed.status,
        StatusCode::NO_CONTENT,
        "unreact: {}",
        removed.body
    );
    for event in expect_at(&mut clients, &both, "reaction.removed").await {
        assert_eq!(event["data"]["message_id"], message_id.as_str(), "{event}");
        assert_eq!(event["data"]["emoji"], "🎉", "{event}");
    }

    let pin_path = format!("/api/messages/{message_id}/pin");
    let pinned = alice.put(&pin_path, json!({})).await;
    assert_eq!(pinned.status, StatusCode::OK, "pin: {}", pinned.body);
    for event in expect_at(&mut clients, &both, "message.pinned").await {
        assert_eq!(event["data"]["id"], message_id.as_str(), "{event}");
        assert!(!event["data"]["pinned"].is_null(), "{event}");
    }

    let unpinned = alice.delete(&pin_path).await;
    assert_eq!(unpinned.status, StatusCode::OK, "unpin: {}", unpinned.body);
    for event in expect_at(&mut clients, &both, "message.unpinned").await {
        assert_eq!(event["data"]["id"], message_id.as_str(), "{event}");
        assert!(event["data"]["pinned"].is_null(), "{event}");
    }

    let deleted = bob.delete(&format!("/api/messages/{message_id}")).await;
    assert_eq!(
        deleted.status,
        StatusCode::NO_CONTENT,
        "delete: {}",
        deleted.body
    );
    for event in expect_at(&mut clients, &both, "message.deleted").await {
        assert_eq!(event["data"]["id"], message_id.as_str(), "{event}");
        assert_eq!(event["data"]["deleted"], true, "{event}");
        assert_eq!(event["data"]["body"], "", "{event}");
        assert_eq!(event["data"]["html"], "", "{event}");
    }
}

#[tokio::test]
async fn member_events_reach_members() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let carol = server.register("carol").await;
    let erin = server.register("erin").await;
    let frank = server.register("frank").await;
    let room_id = room_of("general", &[&alice, &bob, &carol, &erin]).await;
    let mut clients = Clients::new();
    for (name, user) in [
        ("alice", &alice),
        ("bob", &bob),
        ("carol", &carol),
        ("erin", &erin),
        ("frank", &frank),
    ] {
        clients.insert(name, open_live(user).await.0);
    }

    let joined = frank.join("general").await;
    assert_eq!(
        joined.status,
        StatusCode::OK,
        "frank joins: {}",
        joined.body
    );
    let everyone = ["alice", "bob", "carol", "erin", "frank"];
    for event in expect_at(&mut clients, &everyone, "member.joined").await {
        assert_eq!(event["room_id"], room_id.to_string(), "{event}");
        assert_eq!(event["data"]["user_id"], frank.id.to_string(), "{event}");
        assert_eq!(event["data"]["member"]["role"], "member", "{event}");
    }

    let left = frank
        .post(&format!("/api/rooms/{room_id}/leave"), json!({}))
        .await;
    assert_eq!(
        left.status,
        StatusCode::NO_CONTENT,
        "frank leaves: {}",
        left.body
    );
    for event in expect_at(&mut clients, &everyone, "member.left").await {
        assert_eq!(event["data"]["user_id"], frank.id.to_string(), "{event}");
        assert!(event["data"]["member"].is_null(), "{event}");
    }

    let kicked = alice
        .delete(&format!("/api/rooms/{room_id}/members/{}", carol.id))
        .await;
    assert_eq!(
        kicked.status,
        StatusCode::NO_CONTENT,
        "kick carol: {}",
        kicked.body
    );
    let kick_audience = ["alice", "bob", "carol", "erin"];
    for event in expect_at(&mut clients, &kick_audience, "member.kicked").await {
        assert_eq!(event["room_id"], room_id.to_string(), "{event}");
        assert_eq!(event["data"]["user_id"], carol.id.to_string(), "{event}");
    }

    let banned = alice
        .put(&format!("/api/rooms/{room_id}/bans/{}", erin.id), json!({}))
        .await;
    assert_eq!(
        banned.status,
        StatusCode::NO_CONTENT,
        "ban erin: {}",
        banned.body
    );
    for event in expect_at(&mut clients, &["alice", "bob", "erin"], "member.banned").await {
        assert_eq!(event["data"]["user_id"], erin.id.to_string(), "{event}");
    }

    let promoted = alice
        .put(
            &format!("/api/rooms/{room_id}/members/{}/role", bob.id),
            json!({"role": "moderator"}),
        )
        .await;
    assert_eq!(
        promoted.status,
        StatusCode::NO_CONTENT,
        "promote bob: {}",
        promoted.body
    );
    for event in expect_at(&mut clients, &["alice", "bob"], "member.role_changed").await {
        assert_eq!(event["data"]["user_id"], bob.id.to_string(), "{event}");
        assert_eq!(event["data"]["member"]["role"], "moderator", "{event}");
    }

    // Those who left, were kicked or were banned get nothing more from the room.
    alice.send(room_id, "after moderation").await;
    expect_at(&mut clients, &["alice", "bob"], "message.created").await;
    for name in ["carol", "erin", "frank"] {
        let unexpected = clients
            .get_mut(name)
            .unwrap()
            .next_frame_within(NO_FRAME_WAIT)
            .await;
        assert_eq!(unexpected, None, "{name} still receives the room's events");
    }
}

#[tokio::test]
async fn room_events_reach_members() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let room_id = room_of("general", &[&alice, &bob]).await;
    let mut clients = Clients::new();
    clients.insert("alice", open_live(&alice).await.0);
    clients.insert("bob", open_live(&bob).await.0);
    let both = ["alice", "bob"];

    let renamed = alice
        .patch(
            &format!("/api/rooms/{room_id}"),
            json!({"name": "renamed", "topic": "the new topic"}),
        )
        .await;
    assert_eq!(
        renamed.status,
        StatusCode::OK,
        "update room: {}",
        renamed.body
    );
    for event in expect_at(&mut clients, &both, "room.updated").await {
        assert_eq!(event["room_id"], room_id.to_string(), "{event}");
        assert_eq!(event["data"]["name"], "renamed", "{event}");
        assert_eq!(event["data"]["path"], "renamed", "{event}");
        assert_eq!(event["data"]["topic"], "the new topic", "{event}");
    }

    // A new room has only its creator as member, so bob hears nothing of it.
    let second_id = alice.create_public_room("second").await;
    let created = expect_at(&mut clients, &["alice"], "room.created").await;
    assert_eq!(
        created[0]["room_id"],
        second_id.to_string(),
        "{}",
        created[0]
    );
    assert_eq!(created[0]["data"]["name"], "second", "{}", created[0]);

    let direct = bob
        .post("/api/direct", json!({"user_ids": [alice.id]}))
        .await;
    assert_eq!(
        direct.status,
        StatusCode::CREATED,
        "direct room: {}",
        direct.body
    );
    for event in expect_at(&mut clients, &both, "room.created").await {
        assert_eq!(event["data"]["id"], direct.body["id"], "{event}");
        assert_eq!(event["data"]["kind"], "direct", "{event}");
    }

    let profile = alice
        .patch("/api/me", json!({"display_name": "Alice A."}))
        .await;
    assert_eq!(
        profile.status,
        StatusCode::OK,
        "update profile: {}",
        profile.body
    );
    let updated = expect_at(&mut clients, &["alice"], "user.updated").await;
    assert_eq!(
        updated[0]["data"]["display_name"], "Alice A.",
        "{}",
        updated[0]
    );

    let deleted = alice.delete(&format!("/api/rooms/{room_id}")).await;
    assert_eq!(
        deleted.status,
        StatusCode::NO_CONTENT,
        "delete room: {}",
        deleted.body
    );
    for event in expect_at(&mut clients, &both, "room.deleted").await {
        assert_eq!(event["room_id"], room_id.to_string(), "{event}");
        assert_eq!(event["data"]["id"], room_id.to_string(), "{event}");
    }
    for name in both {
        let unexpected = clients
            .get_mut(name)
            .unwrap()
            .next_frame_within(NO_FRAME_WAIT)
            .await;
        assert_eq!(unexpected, None, "{name} received an extra frame");
    }
}

#[tokio::test]
async fn seq_grows_by_one_per_event() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let frank = server.register("frank").await;
    let room_id = room_of("general", &[&alice, &bob]).await;
    let (mut client, latest) = open_live(&bob).await;

    let message = alice.send(room_id, "one").await;
    let message_id = message["id"].as_str().unwrap();
    alice.send(room_id, "two").await;
    alice
        .patch(
            &format!("/api/messages/{message_id}"),
            json!({"body": "one, edited"}),
        )
        .await;
    alice
        .put(
            &format!("/api/messages/{message_id}/reactions/tada"),
            json!({}),
        )
        .await;
    alice
        .put(&format!("/api/messages/{message_id}/pin"), json!({}))
        .await;
    frank.join("general").await;
    alice
        .patch(
            &format!("/api/rooms/{room_id}"),
            json!({"topic": "numbers"}),
        )
        .await;
    let kinds = [
        "message.created",
        "message.created",
        "message.edited",
        "reaction.added",
        "message.pinned",
        "member.joined",
        "room.updated",
    ];

    for (offset, kind) in kinds.iter().enumerate() {
        let event = expect_event(&mut client, kind, "bob").await;
        assert_eq!(
            seq_of(&event),
            latest + 1 + offset as i64,
            "event {offset}: {event}"
        );
    }
    let (_, hello) = open(&bob, "/api/ws").await;
    assert_eq!(
        seq_of(&hello),
        latest + kinds.len() as i64,
        "hello after the events: {hello}"
    );
}

// Resume and resync.

/// Alice reads one event, disconnects, misses five messages from bob, reconnects and
/// resumes: she gets exactly the five, then `resumed`, then live events.
async fn check_resume(by: ResumeBy) {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let room_id = room_of("general", &[&alice, &bob]).await;
    let (mut client, _) = open_live(&alice).await;
    bob.send(room_id, "before leaving").await;
    let last = seq_of(&expect_event(&mut client, "message.created", "alice").await);
    client.stream.close(None).await.unwrap();

    let missed: Vec<String> = (1..=5).map(|n| format!("missed {n}")).collect();
    for body in &missed {
        bob.send(room_id, body).await;
    }
    let (mut client, hello) = reconnect(&alice, last, by).await;

    assert_eq!(seq_of(&hello), last + 5, "hello on reconnect: {hello}");
    expect_replay(&mut client, last, &missed).await;
    bob.send(room_id, "live again").await;
    let live = expect_event(&mut client, "message.created", "alice").await;
    assert_eq!(seq_of(&live), last + 6, "{live}");
    assert_eq!(live["data"]["body"], "live again", "{live}");
    let repeated = client.next_frame_within(NO_FRAME_WAIT).await;
    assert_eq!(repeated, None, "a frame after the live event");
}

#[tokio::test]
async fn resume_frame_replays_missed_events() {
    check_resume(ResumeBy::Frame).await;
}

#[tokio::test]
async fn since_query_replays_missed_events() {
    check_resume(ResumeBy::Query).await;
}

#[tokio::test]
async fn resume_from_zero_replays_everything() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let room_id = room_of("general", &[&alice, &bob]).await;
    bob.send(room_id, "first").await;
    bob.send(room_id, "second").await;
    let (mut client, hello) = open(&alice, "/api/ws").await;

    client
        .send_json(json!({"type": "resume", "since": 0}))
        .await;

    let kinds = [
        "room.created",
        "member.joined",
        "message.created",
        "message.created",
    ];
    for (offset, kind) in kinds.iter().enumerate() {
        let event = expect_event(&mut client, kind, "alice").await;
        assert_eq!(seq_of(&event), 1 + offset as i64, "{event}");
        assert_eq!(event["room_id"], room_id.to_string(), "{event}");
    }
    let resumed = client.next_frame().await.expect("a resumed frame");
    assert_eq!(resumed["type"], "resumed", "{resumed}");
    assert_eq!(seq_of(&resumed), seq_of(&hello), "{resumed}");
}

#[tokio::test]
async fn resume_replays_more_than_one_batch() {
    // The server reads a replay from the store 500 events at a time.
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let room_id = room_of("general", &[&alice, &bob]).await;
    let (_, hello) = open(&alice, "/api/ws").await;
    let since = seq_of(&hello);

    let missed: Vec<String> = (1..=520).map(|n| format!("missed {n}")).collect();
    for body in &missed {
        bob.send(room_id, body).await;
    }
    let (mut client, _) = reconnect(&alice, since, ResumeBy::Frame).await;

    expect_replay(&mut client, since, &missed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_during_live_posts_has_no_gaps() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let room_id = room_of("general", &[&alice, &bob]).await;
    let (_, hello) = open(&alice, "/api/ws").await;
    let since = seq_of(&hello);
    for n in 1..=50 {
        bob.send(room_id, &format!("message {n}")).await;
    }

    // Bob keeps posting while alice's replay runs, so live events and replayed ones
    // overlap.
    let poster = tokio::spawn({
        let bob = bob.clone();
        async move {
            for n in 51..=100 {
                bob.send(room_id, &format!("message {n}")).await;
            }
        }
    });
    let (mut client, _) = reconnect(&alice, since, ResumeBy::Frame).await;
    let mut events = Vec::new();
    let mut resumed = 0;
    while events.len() < 100 {
        let frame = client
            .next_frame()
            .await
            .unwrap_or_else(|| panic!("no frame after {} events", events.len()));
        if frame["type"] == "resumed" {
            resumed += 1;
        } else {
            events.push(frame);
        }
    }
    poster.await.unwrap();

    assert_eq!(resumed, 1, "resumed frames");
    for (offset, event) in events.iter().enumerate() {
        assert_eq!(event["type"], "message.created", "{event}");
        assert_eq!(seq_of(event), since + 1 + offset as i64, "{event}");
        assert_eq!(
            event["data"]["body"],
            format!("message {}", offset + 1),
            "{event}"
        );
    }
    let repeated = client.next_frame_within(NO_FRAME_WAIT).await;
    assert_eq!(repeated, None, "a frame after all 100 events");
}

#[tokio::test]
async fn replay_omits_deleted_body() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let room_id = room_of("general", &[&alice, &bob]).await;
    let message = bob.send(room_id, "the secret plan").await;
    let message_id = message["id"].as_str().unwrap();
    let reply = json!({"body": "quoting the plan", "client_id": "reply-1", "reply_to": message_id});
    let replied = alice
        .post(&format!("/api/rooms/{room_id}/messages"), reply)
        .await;
    assert_eq!(
        replied.status,
        StatusCode::CREATED,
        "reply: {}",
        replied.body
    );
    let deleted = bob.delete(&format!("/api/messages/{message_id}")).await;
    assert_eq!(
        deleted.status,
        StatusCode::NO_CONTENT,
        "delete: {}",
        deleted.body
    );
    let (mut client, _) = open(&alice, "/api/ws").await;

    client
        .send_json(json!({"type": "resume", "since": 0}))
        .await;

    let mut replayed = Vec::new();
    loop {
        let frame = client.next_frame().await.expect("a replayed frame");
        if frame["type"] == "resumed" {
            break;
        }
        replayed.push(frame);
    }
    assert_eq!(replayed.len(), 5, "replayed: {replayed:?}");
    for frame in &replayed {
        let text = frame.to_string();
        assert!(
            !text.contains("secret"),
            "a replayed event keeps the deleted body: {text}"
        );
    }
}

#[tokio::test]
async fn resume_past_newest_gets_resync() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let room_id = room_of("general", &[&alice, &bob]).await;
    let (mut client, hello) = open(&alice, "/api/ws").await;
    let latest = seq_of(&hello);

    client
        .send_json(json!({"type": "resume", "since": latest + 10}))
        .await;

    let resync = client.next_frame().await.expect("a resync frame");
    assert_eq!(resync["type"], "resync", "{resync}");
    assert_eq!(seq_of(&resync), latest, "{resync}");
    assert!(
        resync["reason"]
            .as_str()
            .is_some_and(|reason| !reason.is_empty()),
        "{resync}"
    );
    bob.send(room_id, "after the resync").await;
    let live = expect_event(&mut client, "message.created", "alice").await;
    assert_eq!(seq_of(&live), latest + 1, "{live}");
}

#[tokio::test]
async fn resume_before_pruned_gets_resync() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let room_id = room_of("general", &[&alice, &bob]).await;
    bob.send(room_id, "soon forgotten").await;
    let cutoff = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
    let pruned = server.state.store.prune_events(cutoff).await.unwrap();
    assert!(pruned > 0, "no event was pruned");
    let (mut client, hello) = open(&alice, "/api/ws").await;
    let latest = seq_of(&hello);

    client
        .send_json(json!({"type": "resume", "since": 0}))
        .await;

    let resync = client.next_frame().await.expect("a resync frame");
    assert_eq!(resync["type"], "resync", "{resync}");
    assert_eq!(seq_of(&resync), latest, "{resync}");

    // Nothing is missing after the newest event, so resuming there still works.
    client
        .send_json(json!({"type": "resume", "since": latest}))
        .await;
    let resumed = client.next_frame().await.expect("a resumed frame");
    assert_eq!(resumed["type"], "resumed", "{resumed}");
    assert_eq!(seq_of(&resumed), latest, "{resumed}");
    bob.send(room_id, "after pruning").await;
    let live = expect_event(&mut client, "message.created", "alice").await;
    assert_eq!(seq_of(&live), latest + 1, "{live}");
}

// Client frames.

#[tokio::test]
async fn ping_gets_pong() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let (mut client, _) = open(&alice, "/api/ws").await;

    client.send_json(json!({"type": "ping"})).await;

    let pong = client.next_frame().await.expect("a pong frame");
    assert_eq!(pong, json!({"type": "pong"}));
}

#[tokio::test]
async fn invalid_frame_gets_error() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let (mut client, _) = open(&alice, "/api/ws").await;
    let invalid = [
        WsMessage::Text("not json".into()),
        WsMessage::Text(r#"{"type":"subscribe"}"#.into()),
        WsMessage::Text(r#"{"type":"resume"}"#.into()),
        WsMessage::Text(r#"{"type":"resume","since":"ten"}"#.into()),
    ];

    for message in invalid {
        let sent = message.to_string();
        client.stream.send(message).await.unwrap();
        let error = client.next_frame().await.expect("an error frame");
        assert_eq!(error["type"], "error", "reply to {sent}: {error}");
        assert_eq!(error["code"], "invalid_frame", "reply to {sent}: {error}");
        assert!(
            error["message"]
                .as_str()
                .is_some_and(|text| !text.is_empty()),
            "{error}"
        );
    }
    client.send_json(json!({"type": "ping"})).await;
    let pong = client.next_frame().await.expect("a pong after the errors");
    assert_eq!(pong["type"], "pong", "{pong}");
}

#[tokio::test]
async fn binary_frame_closes_connection() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let (mut client, _) = open(&alice, "/api/ws").await;

    let binary = WsMessage::Binary(vec![1, 2, 3].into());
    client.stream.send(binary).await.unwrap();

    let (ending, _) = read_to_end(&mut client.stream, EVENT_TIMEOUT).await;
    assert_eq!(ending, Ending::Closed(Some(CLOSE_POLICY)));
}

// Heartbeats and slow clients.

#[tokio::test]
async fn heartbeat_keeps_reading_client() {
    let server = TestServer::start_with(|settings| settings.heartbeat_secs = 1).await;
    let alice = server.register("alice").await;
    let (mut client, hello) = open(&alice, "/api/ws").await;
    assert_eq!(hello["heartbeat_secs"], 1, "{hello}");

    // tungstenite queues a pong for each ping and sends it on the next read.
    let deadline = Instant::now() + Duration::from_secs(4);
    let mut pings = 0;
    let ended = loop {
        match tokio::time::timeout_at(deadline, client.stream.next()).await {
            Err(_) => break None,
            Ok(Some(Ok(WsMessage::Ping(_)))) => pings += 1,
            Ok(Some(Ok(WsMessage::Close(frame)))) => break Some(format!("close {frame:?}")),
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(error))) => break Some(format!("error {error}")),
            Ok(None) => break Some("end of stream".to_string()),
        }
    };

    assert_eq!(
        ended, None,
        "the server dropped a client that answers pings"
    );
    assert!(pings >= 2, "pings in 4 s at a 1 s heartbeat: {pings}");
    client.send_json(json!({"type": "ping"})).await;
    let pong = client.next_frame().await.expect("a pong after 4 s");
    assert_eq!(pong["type"], "pong", "{pong}");
}

#[tokio::test]
async fn heartbeat_drops_silent_client() {
    // The server drops a connection it has not heard from in three heartbeats.
    let server = TestServer::start_with(|settings| settings.heartbeat_secs = 1).await;
    let alice = server.register("alice").await;
    let mut stream = raw_upgrade(&server, &alice).await;

    tokio::time::sleep(Duration::from_secs(5)).await;

    let closed = wait_for_eof(&mut stream, Duration::from_secs(5)).await;
    assert!(closed, "the server kept a connection silent for 10 s open");
}

#[tokio::test]
async fn slow_client_is_disconnected() {
    let server = TestServer::start_with(|settings| settings.ws_send_queue = 2).await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let room_id = room_of("general", &[&alice, &bob]).await;
    let (_, hello) = open(&alice, "/api/ws").await;
    let since = seq_of(&hello);
    let mut slow = open_unread(&server, &alice).await;

    // 400 events of about 18 KB each (body and HTML) overflow the TCP buffers.
    let filler = "lorem ipsum dolor sit amet ".repeat(330);
    let total = 400;
    for n in 1..=total {
        bob.send(room_id, &format!("{n} {filler}")).await;
    }
    let health = server
        .anonymous(Method::GET, "/health")
        .send()
        .await
        .unwrap();
    assert_eq!(
        health.status(),
        StatusCode::OK,
        "health during the overflow"
    );
    let (ending, frames) = read_to_end(&mut slow.stream, Duration::from_secs(30)).await;

    let received = frames
        .iter()
        .filter(|frame| frame["type"] == "message.created")
        .count();
    assert!(
        matches!(ending, Ending::Closed(Some(CLOSE_POLICY)) | Ending::Dropped),
        "the slow client ended with {ending:?} after {received} events"
    );
    assert!(
        received < total,
        "the slow client received all {received} events"
    );

    let (mut other, _) = open_live(&bob).await;
    alice.send(room_id, "still serving").await;
    let live = expect_event(&mut other, "message.created", "bob").await;
    assert_eq!(live["data"]["body"], "still serving", "{live}");

    // The close reason tells the client to reconnect and resume, and a resume loses
    // nothing.
    let (mut client, _) = reconnect(&alice, since, ResumeBy::Frame).await;
    for n in 1..=total {
        let event = expect_event(&mut client, "message.created", "alice").await;
        assert_eq!(seq_of(&event), since + n as i64, "replayed event {n}");
    }
}

#[tokio::test]
async fn resume_wait_keeps_queued_events() {
    // Until the client's first frame, or for 2 s, a connection delays live events to
    // wait for a `resume`. A client that reads but sends nothing is not slow.
    // NOTE: the server closes such a connection with 1008 once more than
    // `ws_send_queue` events arrive in that wait, because it does not drain its queue
    // while it waits.
    let server = TestServer::start_with(|settings| settings.ws_send_queue = 2).await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let room_id = room_of("general", &[&alice, &bob]).await;
    let mut client = alice.connect().await;

    for n in 1..=3 {
        bob.send(room_id, &format!("early {n}")).await;
    }

    let (ending, frames) = read_to_end(&mut client.stream, Duration::from_secs(4)).await;
    assert_eq!(
        ending,
        Ending::StillOpen,
        "the server closed a reading client during the resume wait, frames: {frames:?}"
    );
    assert_eq!(frames.len(), 3, "frames: {frames:?}");
}

// Authentication.

#[tokio::test]
async fn upgrade_without_token_is_rejected() {
    let server = TestServer::start().await;
    let url = format!("ws://{}/api/ws", server.addr);

    let error = tokio_tungstenite::connect_async(url).await.unwrap_err();

    let tokio_tungstenite::tungstenite::Error::Http(response) = error else {
        panic!("expected an HTTP error response, got {error}");
    };
    assert_eq!(response.status().as_u16(), 401, "upgrade status");
}

#[tokio::test]
async fn upgrade_with_invalid_token_is_rejected() {
    let server = TestServer::start().await;
    let mut request = format!("ws://{}/api/ws", server.addr)
        .into_client_request()
        .unwrap();
    let header = "Bearer not-a-real-token".parse().unwrap();
    request.headers_mut().insert("authorization", header);

    let error = tokio_tungstenite::connect_async(request).await.unwrap_err();

    let tokio_tungstenite::tungstenite::Error::Http(response) = error else {
        panic!("expected an HTTP error response, got {error}");
    };
    assert_eq!(response.status().as_u16(), 401, "upgrade status");
}

#[tokio::test]
async fn access_token_query_authenticates() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let url = format!("ws://{}/api/ws?access_token={}", server.addr, alice.token);

    let (stream, _) = tokio_tungstenite::connect_async(url).await.unwrap();

    let mut client = WsClient { stream };
    let hello = client.next_frame().await.expect("a hello frame");
    assert_eq!(hello["type"], "hello", "{hello}");
}

// Shutdown and restart.

#[tokio::test]
async fn shutdown_closes_with_going_away() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let (mut client, _) = open_live(&alice).await;

    server.state.shutdown.cancel();

    let (ending, _) = read_to_end(&mut client.stream, EVENT_TIMEOUT).await;
    assert_eq!(ending, Ending::Closed(Some(CLOSE_GOING_AWAY)));
}

#[tokio::test]
async fn restart_keeps_missed_events() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let room_id = room_of("general", &[&alice, &bob]).await;
    let (mut client, _) = open_live(&alice).await;
    bob.send(room_id, "before the restart").await;
    let last = seq_of(&expect_event(&mut client, "message.created", "alice").await);
    client.stream.close(None).await.unwrap();
    let missed: Vec<String> = (1..=3).map(|n| format!("missed {n}")).collect();
    for body in &missed {
        bob.send(room_id, body).await;
    }

    let dir = server.stop().await;
    let server = TestServer::start_in(dir, |_| {}).await;
    let alice = on_server(&alice, &server);
    let bob = on_server(&bob, &server);
    let (mut client, hello) = reconnect(&alice, last, ResumeBy::Frame).await;

    assert_eq!(seq_of(&hello), last + 3, "hello after the restart: {hello}");
    expect_replay(&mut client, last, &missed).await;
    bob.send(room_id, "after the restart").await;
    let live = expect_event(&mut client, "message.created", "alice").await;
    assert_eq!(seq_of(&live), last + 4, "{live}");
}

// Concurrency and retries.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_posts_keep_order() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let carol = server.register("carol").await;
    let listener = server.register("dave").await;
    let room_id = room_of("general", &[&alice, &bob, &carol, &listener]).await;
    let (mut client, latest) = open_live(&listener).await;

    let mut posters = Vec::new();
    for user in [&alice, &bob, &carol] {
        for n in 1..=30 {
            let user = user.clone();
            posters.push(tokio::spawn(async move {
                user.send(room_id, &format!("{} {n}", user.username)).await;
            }));
        }
    }
    for result in join_all(posters).await {
        result.unwrap();
    }

    let mut room_seqs = Vec::new();
    let mut bodies = HashSet::new();
    for offset in 0..90 {
        let event = expect_event(&mut client, "message.created", "dave").await;
        assert_eq!(seq_of(&event), latest + 1 + offset, "{event}");
        room_seqs.push(event["data"]["seq"].as_i64().unwrap());
        bodies.insert(event["data"]["body"].as_str().unwrap().to_string());
    }
    let unique: HashSet<i64> = room_seqs.iter().copied().collect();
    assert_eq!(unique.len(), 90, "room seqs: {room_seqs:?}");
    assert!(
        room_seqs.is_sorted(),
        "room seqs out of event order: {room_seqs:?}"
    );
    assert_eq!(bodies.len(), 90, "distinct bodies");
    let repeated = client.next_frame_within(NO_FRAME_WAIT).await;
    assert_eq!(repeated, None, "a frame after all 90 events");
}

#[tokio::test]
async fn retried_send_emits_one_event() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let room_id = room_of("general", &[&alice, &bob]).await;
    let (mut client, _) = open_live(&bob).await;

    let first = post_with_client_id(&alice, room_id, "sent once", "retry-1").await;
    for _ in 0..3 {
        let retry = post_with_client_id(&alice, room_id, "sent once", "retry-1").await;
        assert_eq!(
            retry["id"], first["id"],
            "a retry made a new message: {retry}"
        );
    }
    alice.send(room_id, "marker").await;

    let event = expect_event(&mut client, "message.created", "bob").await;
    assert_eq!(event["data"]["id"], first["id"], "{event}");
    let next = expect_event(&mut client, "message.created", "bob").await;
    assert_eq!(
        next["data"]["body"], "marker",
        "a retry emitted an event: {next}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_retries_emit_one_event() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let room_id = room_of("general", &[&alice, &bob]).await;
    let (mut client, _) = open_live(&bob).await;

    let retries = (0..5).map(|_| {
        let alice = alice.clone();
        tokio::spawn(
            async move { post_with_client_id(&alice, room_id, "sent once", "retry-2").await },
        )
    });
    let answers: Vec<Value> = join_all(retries)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    alice.send(room_id, "marker").await;

    for answer in &answers {
        assert_eq!(answer["id"], answers[0]["id"], "retries made two messages");
    }
    let event = expect_event(&mut client, "message.created", "bob").await;
    assert_eq!(event["data"]["id"], answers[0]["id"], "{event}");
    let next = expect_event(&mut client, "message.created", "bob").await;
    assert_eq!(
        next["data"]["body"], "marker",
        "a retry emitted an event: {next}"
    );
}

#[tokio::test]
async fn logout_closes_the_session_websocket() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;
    let mut socket = alice.connect().await;

    let answer = alice.post("/api/auth/logout", json!({})).await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT);
    let (ending, frames) = read_to_end(&mut socket.stream, Duration::from_secs(3)).await;
    assert_eq!(
        ending,
        Ending::Closed(Some(1008)),
        "frames before the end: {frames:?}"
    );

    let bob = server.register("bob").await;
    bob.join("general").await;
    bob.send(room, "after the logout").await;
    assert!(
        frames
            .iter()
            .all(|frame| frame["type"] != "message.created")
    );
}

#[tokio::test]
async fn disabled_account_websocket_closes_at_heartbeat() {
    let server = TestServer::start_with(|settings| settings.heartbeat_secs = 1).await;
    let alice = server.register("alice").await;
    let mut socket = alice.connect().await;

    // As `roomler-server admin disable-user` does, from outside the server process.
    server
        .state
        .store
        .set_disabled(alice.id, true)
        .await
        .unwrap();
    let (ending, _) = read_to_end(&mut socket.stream, Duration::from_secs(4)).await;
    assert_eq!(ending, Ending::Closed(Some(1008)));
}
