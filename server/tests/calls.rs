//! Call control against a real Janus, which the server starts itself: joining,
//! publishing an SDP offer, subscribing, muting, leaving, and the refusals.
//!
//! Janus's ICE gathers no candidates on a loopback interface, and everything a test
//! starts must stay off the machine's real interfaces. So each test re-runs itself
//! inside a fresh network namespace (see `roomler-netns`), and starts the server
//! there, which starts Janus. The tests need root and the `janus` program. Without
//! them they print why they are skipped and pass.

mod support;

use roomler_server::config::Settings;
use roomler_server::{AppState, Server};
use serde_json::{Value, json};

use support::{Client, publisher_offer, reply};

const PASSWORD: &str = "correct horse battery";

struct Fixture {
    base: String,
    state: AppState,
    _dir: tempfile::TempDir,
    http: reqwest::Client,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.state.shutdown.cancel();
    }
}

impl Fixture {
    async fn start(configure: impl FnOnce(&mut Settings)) -> Self {
        support::init_tracing();
        let dir = tempfile::tempdir().unwrap();
        let mut settings = Settings {
            addr: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.path().to_path_buf(),
            janus_ice_enforce_list: Some("127.0.0.2".into()),
            ..Settings::default()
        };
        settings.rate_limit.enabled = false;
        configure(&mut settings);
        let state = AppState::open(settings).unwrap();
        let server = Server::bind(state.clone()).await.unwrap();
        let addr = server.local_addr();
        tokio::spawn(server.run());
        Fixture {
            base: format!("http://{addr}"),
            state,
            _dir: dir,
            http: reqwest::Client::new(),
        }
    }

    /// Fetches `/metrics` as text.
    async fn metrics(&self) -> String {
        let response = self
            .http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{}", response.status());
        response.text().await.unwrap()
    }

    async fn register(&self, username: &str) -> (String, String) {
        let body = json!({
            "username": username,
            "email": format!("{username}@example.com"),
            "password": PASSWORD,
        });
        let value: Value = self
            .http
            .post(format!("{}/api/auth/register", self.base))
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (
            value["user"]["id"].as_str().unwrap().to_string(),
            value["token"].as_str().unwrap().to_string(),
        )
    }

    async fn post(&self, token: &str, path: &str, body: Value) -> Value {
        self.http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn get(&self, token: &str, path: &str) -> Value {
        support::get_json(&self.base, token, path).await
    }

    async fn connect(&self, token: &str) -> Client {
        Client::connect(&self.base, token).await
    }
}

/// Registers `count` users, the first creating a public room that the others join.
async fn room_with_members(fixture: &Fixture, count: usize) -> (String, Vec<(String, String)>) {
    let mut users = Vec::new();
    for index in 0..count {
        users.push(fixture.register(&format!("user{index}")).await);
    }
    let room = fixture
        .post(
            &users[0].1,
            "/api/rooms",
            json!({"name": "standup", "kind": "public"}),
        )
        .await;
    let room_id = room["id"].as_str().unwrap().to_string();
    for (_, token) in &users[1..] {
        fixture
            .post(token, "/api/rooms/join", json!({"name": "standup"}))
            .await;
    }
    (room_id, users)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_signaling_with_real_janus() {
    if roomler_netns::run_inside_namespace("call_signaling_with_real_janus", &["janus"]) {
        return;
    }
    let fixture = Fixture::start(|settings| {
        settings.turn_url = Some("turn:127.0.0.2:3478?transport=udp".into());
        settings.turn_secret = Some("shared-turn-secret".into());
    })
    .await;
    let (room_id, users) = room_with_members(&fixture, 2).await;
    let mut alice = fixture.connect(&users[0].1).await;
    let mut bob = fixture.connect(&users[1].1).await;

    // Alice starts the call; the reply carries TURN REST credentials.
    let joined = alice.call(&room_id, json!({"action": "join"})).await;
    let joined = reply(&joined).clone();
    assert_eq!(joined["result"], "joined");
    assert_eq!(joined["participants"], json!([]));
    let alice_feed = joined["feed_id"].as_u64().unwrap();
    let ice = &joined["ice_servers"][0];
    let username = ice["username"].as_str().unwrap();
    assert!(
        username.ends_with(&format!(":{}", users[0].0)),
        "{username}"
    );
    assert!(!ice["credential"].as_str().unwrap().is_empty());
    bob.event("started").await;

    // The room list shows the call.
    let rooms = fixture.get(&users[1].1, "/api/rooms").await;
    assert_eq!(rooms["rooms"][0]["call"]["participant_count"], 1);

    // Alice publishes; Janus answers her offer.
    let published = alice
        .call(
            &room_id,
            json!({"action": "publish", "jsep": publisher_offer()}),
        )
        .await;
    let published = reply(&published).clone();
    assert_eq!(published["jsep"]["type"], "answer");
    assert!(
        published["jsep"]["sdp"]
            .as_str()
            .unwrap()
            .contains("a=candidate:")
    );
    let kinds: Vec<&str> = published["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|stream| stream["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["audio", "video"]);

    // Bob joins and gets Alice in the participant list. Her streams are announced
    // once her connection is up, which needs real ICE, and these tests send none.
    let joined = bob.call(&room_id, json!({"action": "join"})).await;
    let participants = reply(&joined)["participants"].clone();
    assert_eq!(participants.as_array().unwrap().len(), 1);
    assert_eq!(participants[0]["feed_id"], alice_feed);
    assert_eq!(participants[0]["username"], "user0");
    let event = alice.joined_event(&users[1].0).await;
    assert_eq!(event["participant"]["username"], "user1");
    let metrics = fixture.metrics().await;
    assert!(metrics.contains("\nroomler_active_calls 1\n"), "{metrics}");
    assert!(
        metrics.contains("\nroomler_call_participants 2\n"),
        "{metrics}"
    );

    // Subscribing to a feed with no media yet is refused with a clear reason.
    let early = bob
        .call(
            &room_id,
            json!({"action": "subscribe", "add": [{"feed_id": alice_feed}]}),
        )
        .await;
    assert_eq!(early["type"], "call_error");
    assert_eq!(early["code"], "invalid_request");
    assert!(
        early["message"]
            .as_str()
            .unwrap()
            .contains("published event"),
        "{early}"
    );
    // Subscribing to oneself or to an unknown feed is refused too.
    let own = bob
        .call(
            &room_id,
            json!({"action": "subscribe", "add": [{"feed_id": 1}]}),
        )
        .await;
    assert_eq!(own["code"], "invalid_request");

    // Trickle and mute reach Janus.
    let trickled = alice
        .call(
            &room_id,
            json!({"action": "trickle", "target": "publisher", "candidate": null}),
        )
        .await;
    assert_eq!(reply(&trickled)["result"], "trickled");
    let muted = alice
        .call(
            &room_id,
            json!({"action": "configure", "audio_muted": true}),
        )
        .await;
    assert_eq!(reply(&muted)["result"], "configured");
    let event = bob.event("muted").await;
    assert_eq!(event["user_id"], users[0].0.as_str());

    // Bob leaves, then Alice; the call ends and the room list no longer shows it.
    let left = bob.call(&room_id, json!({"action": "leave"})).await;
    assert_eq!(reply(&left)["result"], "left");
    let event = alice.event("participant_left").await;
    assert_eq!(event["user_id"], users[1].0.as_str());
    let left = alice.call(&room_id, json!({"action": "leave"})).await;
    assert_eq!(reply(&left)["result"], "left");
    bob.event("ended").await;
    let rooms = fixture.get(&users[1].1, "/api/rooms").await;
    assert!(rooms["rooms"][0].get("call").is_none(), "{rooms}");
    let metrics = fixture.metrics().await;
    assert!(metrics.contains("\nroomler_active_calls 0\n"), "{metrics}");
    assert!(
        metrics.contains("\nroomler_call_participants 0\n"),
        "{metrics}"
    );

    // A step after leaving is refused with a clear code.
    let late = alice
        .call(
            &room_id,
            json!({"action": "configure", "audio_muted": false}),
        )
        .await;
    assert_eq!(late["type"], "call_error");
    assert_eq!(late["code"], "not_in_call");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_refusals_and_secrets() {
    if roomler_netns::run_inside_namespace("call_refusals_and_secrets", &["janus"]) {
        return;
    }
    let fixture = Fixture::start(|_| {}).await;
    let (room_id, users) = room_with_members(&fixture, 2).await;
    let (_, outsider_token) = fixture.register("outsider").await;
    let mut outsider = fixture.connect(&outsider_token).await;

    // A non-member of a public room gets `not_a_member` with the room's path.
    let refused = outsider.call(&room_id, json!({"action": "join"})).await;
    assert_eq!(refused["type"], "call_error");
    assert_eq!(refused["code"], "not_a_member");
    assert!(
        refused["message"].as_str().unwrap().contains("standup"),
        "{refused}"
    );

    // A private room is not even admitted to exist.
    let private = fixture
        .post(
            &users[0].1,
            "/api/rooms",
            json!({"name": "secret-plans", "kind": "private"}),
        )
        .await;
    let private_id = private["id"].as_str().unwrap();
    let refused = outsider.call(private_id, json!({"action": "join"})).await;
    assert_eq!(refused["code"], "room_not_found");

    // A call step without a join is refused.
    let mut bob = fixture.connect(&users[1].1).await;
    let refused = bob
        .call(
            &room_id,
            json!({"action": "publish", "jsep": publisher_offer()}),
        )
        .await;
    assert_eq!(refused["code"], "not_in_call");

    // Members who join, publish and subscribe never see a Janus secret or pin.
    let mut alice = fixture.connect(&users[0].1).await;
    let joined = alice.call(&room_id, json!({"action": "join"})).await;
    let alice_feed = reply(&joined)["feed_id"].as_u64().unwrap();
    alice
        .call(
            &room_id,
            json!({"action": "publish", "jsep": publisher_offer()}),
        )
        .await;
    bob.call(&room_id, json!({"action": "join"})).await;
    bob.call(
        &room_id,
        json!({"action": "subscribe", "add": [{"feed_id": alice_feed}]}),
    )
    .await;
    bob.call(
        &room_id,
        json!({"action": "configure", "audio_muted": true}),
    )
    .await;
    let config = std::fs::read_to_string(fixture._dir.path().join("janus/janus.jcfg")).unwrap();
    let api_secret = config
        .lines()
        .find_map(|line| line.trim().strip_prefix("api_secret = "))
        .unwrap()
        .trim_matches('"')
        .to_string();
    let plugin = std::fs::read_to_string(
        fixture
            ._dir
            .path()
            .join("janus/janus.plugin.videoroom.jcfg"),
    )
    .unwrap();
    let admin_key = plugin
        .lines()
        .find_map(|line| line.trim().strip_prefix("admin_key = "))
        .unwrap()
        .trim_matches('"')
        .to_string();
    for client in [&alice, &bob, &outsider] {
        for frame in &client.seen {
            assert!(!frame.contains(&api_secret), "{frame}");
            assert!(!frame.contains(&admin_key), "{frame}");
            assert!(!frame.contains("\"secret\""), "{frame}");
            assert!(!frame.contains("\"pin\""), "{frame}");
        }
    }
    // The frames checked above include the answers that carry Janus's replies.
    assert!(alice.seen.iter().any(|frame| frame.contains("\"answer\"")));
    assert!(bob.seen.iter().any(|frame| frame.contains("joined")));
}

/// Sends an authenticated request without a body and returns its status.
async fn send_empty(fixture: &Fixture, method: reqwest::Method, token: &str, path: &str) -> u16 {
    fixture
        .http
        .request(method, format!("{}{path}", fixture.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Someone who leaves the room, is removed from it or banned from it leaves its
/// call too: they get the reason, the others see them go, and a banned user cannot
/// join again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaving_the_room_leaves_its_call() {
    if roomler_netns::run_inside_namespace("leaving_the_room_leaves_its_call", &["janus"]) {
        return;
    }
    let fixture = Fixture::start(|_| {}).await;
    let (room_id, users) = room_with_members(&fixture, 4).await;
    let mut owner = fixture.connect(&users[0].1).await;
    reply(&owner.call(&room_id, json!({"action": "join"})).await);

    let cases = [
        (
            reqwest::Method::DELETE,
            format!("/api/rooms/{room_id}/members/{}", users[1].0),
            &users[0].1,
            "a moderator removed you from the room",
        ),
        (
            reqwest::Method::PUT,
            format!("/api/rooms/{room_id}/bans/{}", users[2].0),
            &users[0].1,
            "a moderator banned you from the room",
        ),
        (
            reqwest::Method::POST,
            format!("/api/rooms/{room_id}/leave"),
            &users[3].1,
            "you left the room",
        ),
    ];
    for (index, (method, path, actor, expected)) in cases.into_iter().enumerate() {
        let (user_id, token) = &users[index + 1];
        let mut member = fixture.connect(token).await;
        let joined = member.call(&room_id, json!({"action": "join"})).await;
        let feed_id = reply(&joined)["feed_id"].as_u64().unwrap();
        let status = send_empty(&fixture, method, actor, &path).await;
        assert_eq!(status, 204, "{path}");

        assert_eq!(member.removed_reason().await, expected);
        let left = loop {
            let event = owner.event("participant_left").await;
            if event["user_id"] == user_id.as_str() {
                break event;
            }
        };
        assert_eq!(left["feed_id"], feed_id);
        // Their call steps are refused now, because they are no member.
        let refused = member
            .call(
                &room_id,
                json!({"action": "configure", "audio_muted": true}),
            )
            .await;
        assert_eq!(refused["code"], "not_a_member", "{refused}");
    }

    // The banned user is no member, so the call refuses them.
    let mut banned = fixture.connect(&users[2].1).await;
    let refused = banned.call(&room_id, json!({"action": "join"})).await;
    assert_eq!(refused["code"], "not_a_member", "{refused}");
}

/// Asserts that `frame` is a `call_error` with `code`, and returns its message.
fn error_message(frame: &Value, code: &str) -> String {
    assert_eq!(frame["type"], "call_error", "expected an error: {frame}");
    assert_eq!(frame["code"], code, "{frame}");
    frame["message"].as_str().unwrap().to_string()
}

/// Waits for the `call_event` `name` about `user_id`, skipping others.
async fn event_about(client: &mut Client, name: &str, user_id: &str) -> Value {
    loop {
        let event = client.event(name).await;
        if event["user_id"] == user_id {
            return event;
        }
    }
}

/// A presentation: the starter and the room's owner host it, other members join
/// as the audience, whose publish is refused until a host invites them to speak,
/// and only hosts manage the stage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presentation_stage_with_real_janus() {
    if roomler_netns::run_inside_namespace("presentation_stage_with_real_janus", &["janus"]) {
        return;
    }
    let fixture = Fixture::start(|_| {}).await;
    // user0 owns the room; user1, a member, starts the presentation.
    let (room_id, users) = room_with_members(&fixture, 4).await;
    let mut owner = fixture.connect(&users[0].1).await;
    let mut starter = fixture.connect(&users[1].1).await;
    let mut audience = fixture.connect(&users[2].1).await;
    let mut other = fixture.connect(&users[3].1).await;

    let joined = starter
        .call(
            &room_id,
            json!({"action": "join", "format": "presentation"}),
        )
        .await;
    let joined = reply(&joined).clone();
    assert_eq!(joined["format"], "presentation");
    assert_eq!(joined["role"], "host");
    let started = audience.event("started").await;
    assert_eq!(started["format"], "presentation");
    let rooms = fixture.get(&users[2].1, "/api/rooms").await;
    assert_eq!(rooms["rooms"][0]["call"]["format"], "presentation");

    // A member joins as the audience, and a later join cannot change the format.
    let joined = audience
        .call(&room_id, json!({"action": "join", "format": "meeting"}))
        .await;
    let joined = reply(&joined).clone();
    assert_eq!(joined["format"], "presentation");
    assert_eq!(joined["role"], "audience");
    assert_eq!(joined["participants"][0]["role"], "host");
    let event = starter.joined_event(&users[2].0).await;
    assert_eq!(event["participant"]["role"], "audience");

    // The audience's publish is refused with the reason and what to do.
    let refused = audience
        .call(
            &room_id,
            json!({"action": "publish", "jsep": publisher_offer()}),
        )
        .await;
    let message = error_message(&refused, "forbidden");
    assert!(message.contains("audience"), "{message}");
    assert!(message.contains("raise_hand"), "{message}");

    // The starter, a plain member of the room, publishes as a host.
    let published = starter
        .call(
            &room_id,
            json!({"action": "publish", "jsep": publisher_offer()}),
        )
        .await;
    assert_eq!(reply(&published)["jsep"]["type"], "answer");

    // The room's owner hosts too, and the fourth member joins the audience.
    let joined = owner.call(&room_id, json!({"action": "join"})).await;
    assert_eq!(reply(&joined)["role"], "host");
    let joined = other.call(&room_id, json!({"action": "join"})).await;
    assert_eq!(reply(&joined)["role"], "audience");

    // A raised hand reaches the hosts; a host may not raise one.
    let raised = audience
        .call(&room_id, json!({"action": "raise_hand"}))
        .await;
    assert_eq!(reply(&raised)["result"], "hand_changed");
    assert_eq!(reply(&raised)["raised"], true);
    event_about(&mut starter, "hand_raised", &users[2].0).await;
    event_about(&mut owner, "hand_raised", &users[2].0).await;
    let refused = owner.call(&room_id, json!({"action": "raise_hand"})).await;
    error_message(&refused, "invalid_request");

    // Someone in the audience may neither invite nor move anyone.
    let invite = json!({"action": "invite_to_speak", "user_id": users[2].0});
    let refused = other.call(&room_id, invite.clone()).await;
    let message = error_message(&refused, "forbidden");
    assert!(message.contains("host"), "{message}");
    let refused = other
        .call(
            &room_id,
            json!({"action": "move_to_audience", "user_id": users[1].0}),
        )
        .await;
    error_message(&refused, "forbidden");
    let refused = other
        .call(
            &room_id,
            json!({"action": "lower_hand", "user_id": users[2].0}),
        )
        .await;
    error_message(&refused, "forbidden");
    let unknown = starter
        .call(
            &room_id,
            json!({"action": "invite_to_speak", "user_id": uuid::Uuid::nil()}),
        )
        .await;
    error_message(&unknown, "invalid_request");

    // A host's invitation lets the audience member publish, and lowers the hand.
    let invited = starter.call(&room_id, invite).await;
    assert_eq!(reply(&invited)["result"], "role_changed");
    assert_eq!(reply(&invited)["role"], "speaker");
    let event = event_about(&mut audience, "role_changed", &users[2].0).await;
    assert_eq!(event["role"], "speaker");
    let published = audience
        .call(
            &room_id,
            json!({"action": "publish", "jsep": publisher_offer()}),
        )
        .await;
    assert_eq!(reply(&published)["jsep"]["type"], "answer");

    // A speaker who joins again, e.g. after a reconnection, is still a speaker.
    let mut audience = fixture.connect(&users[2].1).await;
    let joined = audience.call(&room_id, json!({"action": "join"})).await;
    assert_eq!(reply(&joined)["role"], "speaker");

    // A host is never moved to the audience.
    let refused = owner
        .call(
            &room_id,
            json!({"action": "move_to_audience", "user_id": users[1].0}),
        )
        .await;
    error_message(&refused, "invalid_request");

    // Moved back, the speaker's publish is refused again.
    let moved = owner
        .call(
            &room_id,
            json!({"action": "move_to_audience", "user_id": users[2].0}),
        )
        .await;
    assert_eq!(reply(&moved)["role"], "audience");
    // The fourth member saw the invitation first, then this move.
    let event = event_about(&mut other, "role_changed", &users[2].0).await;
    assert_eq!(event["role"], "speaker");
    let event = event_about(&mut other, "role_changed", &users[2].0).await;
    assert_eq!(event["role"], "audience");
    let refused = audience
        .call(
            &room_id,
            json!({"action": "publish", "jsep": publisher_offer()}),
        )
        .await;
    error_message(&refused, "forbidden");

    // Invited again, the speaker moves themselves back to the audience, once by
    // naming themselves and once without a user_id.
    for own_move in [
        json!({"action": "move_to_audience", "user_id": users[2].0}),
        json!({"action": "move_to_audience"}),
    ] {
        let invite = json!({"action": "invite_to_speak", "user_id": users[2].0});
        reply(&starter.call(&room_id, invite).await);
        let moved = audience.call(&room_id, own_move).await;
        assert_eq!(reply(&moved)["role"], "audience");
        assert_eq!(reply(&moved)["user_id"], users[2].0.as_str());
    }
    let refused = audience
        .call(
            &room_id,
            json!({"action": "publish", "jsep": publisher_offer()}),
        )
        .await;
    error_message(&refused, "forbidden");

    // The audience member's own hand goes up and down.
    reply(
        &audience
            .call(&room_id, json!({"action": "raise_hand"}))
            .await,
    );
    let lowered = audience
        .call(&room_id, json!({"action": "lower_hand"}))
        .await;
    assert_eq!(reply(&lowered)["raised"], false);
    event_about(&mut starter, "hand_lowered", &users[2].0).await;
}

/// A call started without a format is a meeting: everyone publishes, and there are
/// no hands to raise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meeting_is_the_default_format() {
    if roomler_netns::run_inside_namespace("meeting_is_the_default_format", &["janus"]) {
        return;
    }
    let fixture = Fixture::start(|_| {}).await;
    let (room_id, users) = room_with_members(&fixture, 2).await;
    let mut alice = fixture.connect(&users[0].1).await;
    let mut bob = fixture.connect(&users[1].1).await;

    let joined = alice.call(&room_id, json!({"action": "join"})).await;
    assert_eq!(reply(&joined)["format"], "meeting");
    let joined = bob
        .call(
            &room_id,
            json!({"action": "join", "format": "presentation"}),
        )
        .await;
    assert_eq!(reply(&joined)["format"], "meeting");
    assert_eq!(reply(&joined)["role"], "speaker");
    let published = bob
        .call(
            &room_id,
            json!({"action": "publish", "jsep": publisher_offer()}),
        )
        .await;
    assert_eq!(reply(&published)["jsep"]["type"], "answer");

    let refused = bob.call(&room_id, json!({"action": "raise_hand"})).await;
    let message = error_message(&refused, "invalid_request");
    assert!(message.contains("meeting"), "{message}");
    let refused = alice
        .call(
            &room_id,
            json!({"action": "invite_to_speak", "user_id": users[1].0}),
        )
        .await;
    error_message(&refused, "invalid_request");
}
