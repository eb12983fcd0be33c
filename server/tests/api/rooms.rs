//! Rooms, sub-rooms and direct rooms: creating, listing, joining, roles, moderation,
//! invites, and hiding private rooms from non-members.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use roomler_server::store::NewUser;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use crate::common::{Answer, TestServer, TestUser, answer};

const ROOM_PASSWORD: &str = "open sesame";
const THIRTY_DAYS_SECS: u64 = 30 * 86_400;

fn id_of(answer: &Answer) -> Uuid {
    answer.body["id"].as_str().unwrap().parse().unwrap()
}

/// Returns the `path` of every room in a `RoomList` response, in the order listed.
fn paths(list: &Answer) -> Vec<String> {
    list.body["rooms"]
        .as_array()
        .unwrap_or_else(|| panic!("not a room list: {}", list.body))
        .iter()
        .map(|room| room["path"].as_str().unwrap().to_string())
        .collect()
}

/// Returns the caller's role in the listed room with `path`, or `Value::Null` when the
/// caller has none.
fn role_in(list: &Answer, path: &str) -> Value {
    let rooms = list.body["rooms"].as_array().unwrap();
    let room = rooms
        .iter()
        .find(|room| room["path"] == path)
        .unwrap_or_else(|| panic!("{path} is not listed: {}", list.body));
    room["role"].clone()
}

async fn create_private(user: &TestUser, name: &str, password: Option<&str>) -> Uuid {
    let mut body = json!({"name": name, "kind": "private"});
    if let Some(password) = password {
        body["password"] = json!(password);
    }
    user.create_room(body).await
}

async fn create_sub_room(user: &TestUser, parent: Uuid, name: &str, kind: &str) -> Uuid {
    user.create_room(json!({"name": name, "kind": kind, "parent_id": parent}))
        .await
}

async fn join_with_password(user: &TestUser, name: &str, password: &str) -> Answer {
    user.post(
        "/api/rooms/join",
        json!({"name": name, "password": password}),
    )
    .await
}

/// Creates an invite and returns its code.
async fn create_invite(user: &TestUser, room: Uuid, body: Value) -> String {
    let created = user.post(&format!("/api/rooms/{room}/invites"), body).await;
    assert_eq!(
        created.status,
        StatusCode::CREATED,
        "invite: {}",
        created.body
    );
    created.body["code"].as_str().unwrap().to_string()
}

async fn accept_invite(user: &TestUser, code: &str) -> Answer {
    user.post(&format!("/api/invites/{code}"), json!({})).await
}

/// Returns the ids of a room's members, listed by `member`.
async fn member_ids(member: &TestUser, room: Uuid) -> Vec<String> {
    let listed = member.get(&format!("/api/rooms/{room}/members")).await;
    assert_eq!(listed.status, StatusCode::OK, "members: {}", listed.body);
    listed.body["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|member| member["user"]["id"].as_str().unwrap().to_string())
        .collect()
}

async fn member_role(member: &TestUser, room: Uuid, user: Uuid) -> Value {
    let listed = member.get(&format!("/api/rooms/{room}/members")).await;
    let members = listed.body["members"].as_array().unwrap();
    let found = members
        .iter()
        .find(|entry| entry["user"]["id"] == user.to_string())
        .unwrap_or_else(|| panic!("{user} is no member: {}", listed.body));
    found["role"].clone()
}

async fn set_role(actor: &TestUser, room: Uuid, target: Uuid, role: &str) -> Answer {
    let path = format!("/api/rooms/{room}/members/{target}/role");
    actor.put(&path, json!({"role": role})).await
}

async fn kick(actor: &TestUser, room: Uuid, target: Uuid) -> Answer {
    actor
        .delete(&format!("/api/rooms/{room}/members/{target}"))
        .await
}

async fn ban(actor: &TestUser, room: Uuid, target: Uuid) -> Answer {
    actor
        .put(&format!("/api/rooms/{room}/bans/{target}"), json!({}))
        .await
}

async fn create_direct(user: &TestUser, others: &[Uuid]) -> Answer {
    user.post("/api/direct", json!({"user_ids": others})).await
}

/// Adds accounts directly to the store, skipping password hashing, so they cannot log in.
async fn add_users_to_store(server: &TestServer, count: usize) -> Vec<Uuid> {
    let mut ids = Vec::with_capacity(count);
    for index in 0..count {
        let username = format!("extra{index}");
        let new = NewUser {
            username: username.clone(),
            username_key: username.clone(),
            display_name: username.clone(),
            email: format!("{username}@example.com"),
            password_hash: "unused".to_string(),
        };
        ids.push(server.state.store.create_user(new).await.unwrap().id);
    }
    ids
}

// Creating rooms.

#[tokio::test]
async fn create_public_room_lowercases_name() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;

    let created = alice
        .post("/api/rooms", json!({"name": " General ", "kind": "public"}))
        .await;

    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["name"], "general");
    assert_eq!(created.body["path"], "general");
    assert_eq!(created.body["kind"], "public");
    assert_eq!(created.body["role"], "owner");
    assert_eq!(created.body["owner_id"], alice.id.to_string());
    assert_eq!(created.body["member_count"], 1);
    assert_eq!(created.body["has_password"], false);
    assert!(created.body["parent_id"].is_null());
}

#[tokio::test]
async fn create_room_normalises_fullwidth_name() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;

    let created = alice
        .post(
            "/api/rooms",
            json!({"name": "Ｌｏｂｂｙ", "kind": "public"}),
        )
        .await;

    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["path"], "lobby");
}

#[tokio::test]
async fn create_private_room_with_password() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let body = json!({"name": "Secret", "kind": "private", "password": ROOM_PASSWORD,
                      "topic": "  plans  "});

    let created = alice.post("/api/rooms", body).await;

    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["path"], "secret");
    assert_eq!(created.body["kind"], "private");
    assert_eq!(created.body["has_password"], true);
    assert_eq!(created.body["topic"], "plans");
    assert!(created.body.get("password").is_none(), "{}", created.body);
    assert!(
        created.body.get("password_hash").is_none(),
        "{}",
        created.body
    );
}

#[tokio::test]
async fn create_room_rejects_invalid_names() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let too_long = "a".repeat(65);
    let names = [
        "",
        "   ",
        "team.frontend",
        "has space",
        "bang!",
        "@direct",
        &too_long,
    ];

    for name in names {
        let rejected = alice
            .post("/api/rooms", json!({"name": name, "kind": "public"}))
            .await;

        assert_eq!(
            rejected.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{name:?}: {}",
            rejected.body
        );
        assert_eq!(rejected.code(), "invalid_name", "{name:?}");
    }
    let longest = alice
        .post(
            "/api/rooms",
            json!({"name": "a".repeat(64), "kind": "public"}),
        )
        .await;
    assert_eq!(longest.status, StatusCode::CREATED, "{}", longest.body);
}

#[tokio::test]
async fn create_room_rejects_duplicate_name() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    alice.create_public_room("general").await;

    let same = bob
        .post("/api/rooms", json!({"name": "general", "kind": "public"}))
        .await;
    let other_case = bob
        .post("/api/rooms", json!({"name": "GENERAL", "kind": "private"}))
        .await;

    assert_eq!(same.status, StatusCode::CONFLICT, "{}", same.body);
    assert_eq!(same.code(), "room_name_taken");
    assert_eq!(
        other_case.status,
        StatusCode::CONFLICT,
        "{}",
        other_case.body
    );
    assert_eq!(other_case.code(), "room_name_taken");
    assert!(
        other_case.message().contains("\"general\""),
        "{}",
        other_case.body
    );
}

#[tokio::test]
async fn create_public_room_rejects_password() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let body = json!({"name": "general", "kind": "public", "password": ROOM_PASSWORD});

    let rejected = alice.post("/api/rooms", body).await;

    assert_eq!(
        rejected.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        rejected.body
    );
    assert_eq!(rejected.code(), "invalid_password");
}

#[tokio::test]
async fn create_private_room_rejects_short_password() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let body = json!({"name": "secret", "kind": "private", "password": "abc"});

    let rejected = alice.post("/api/rooms", body).await;

    assert_eq!(
        rejected.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        rejected.body
    );
    assert_eq!(rejected.code(), "invalid_password");
}

#[tokio::test]
async fn create_room_rejects_direct_kind() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;

    let rejected = alice
        .post("/api/rooms", json!({"name": "chat", "kind": "direct"}))
        .await;

    assert_eq!(
        rejected.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        rejected.body
    );
    assert_eq!(rejected.code(), "invalid_kind");
}

#[tokio::test]
async fn create_room_rejects_unknown_kind() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;

    let unknown = alice
        .post("/api/rooms", json!({"name": "chat", "kind": "secret"}))
        .await;
    let missing = alice.post("/api/rooms", json!({"name": "chat"})).await;

    assert_eq!(unknown.status, StatusCode::BAD_REQUEST, "{}", unknown.body);
    assert_eq!(unknown.code(), "invalid_request");
    assert_eq!(missing.status, StatusCode::BAD_REQUEST, "{}", missing.body);
    assert_eq!(missing.code(), "invalid_request");
}

#[tokio::test]
async fn create_room_rejects_long_topic() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let body = json!({"name": "general", "kind": "public", "topic": "x".repeat(501)});

    let rejected = alice.post("/api/rooms", body).await;

    assert_eq!(
        rejected.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        rejected.body
    );
    assert_eq!(rejected.code(), "invalid_topic");
}

#[tokio::test]
async fn create_room_needs_token() {
    let server = TestServer::start().await;
    let request = server
        .anonymous(Method::POST, "/api/rooms")
        .json(&json!({"name": "general", "kind": "public"}));

    let rejected = answer(request.send().await.unwrap()).await;

    assert_eq!(rejected.status, StatusCode::UNAUTHORIZED);
    assert_eq!(rejected.code(), "missing_token");
}

// Listing rooms.

#[tokio::test]
async fn my_rooms_lists_only_own_rooms() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    alice.create_public_room("general").await;
    alice.create_public_room("random").await;
    create_private(&alice, "secret", None).await;
    bob.create_public_room("bobs").await;
    assert_eq!(bob.join("general").await.status, StatusCode::OK);

    let mine = alice.get("/api/rooms").await;
    let bobs = bob.get("/api/rooms").await;

    assert_eq!(mine.status, StatusCode::OK, "{}", mine.body);
    assert_eq!(paths(&mine), ["general", "random", "secret"]);
    assert_eq!(role_in(&mine, "general"), "owner");
    assert_eq!(paths(&bobs), ["bobs", "general"]);
    assert_eq!(role_in(&bobs, "bobs"), "owner");
    assert_eq!(role_in(&bobs, "general"), "member");
}

#[tokio::test]
async fn directory_lists_public_rooms() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    alice.create_public_room("general").await;
    alice.create_public_room("random").await;
    bob.create_public_room("bobs").await;

    let listed = alice.get("/api/rooms/directory").await;

    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    assert_eq!(paths(&listed), ["bobs", "general", "random"]);
    assert_eq!(role_in(&listed, "general"), "owner");
    assert!(role_in(&listed, "bobs").is_null());
}

#[tokio::test]
async fn directory_searches_by_query() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    alice.create_public_room("general").await;
    alice.create_public_room("general-chat").await;
    alice.create_public_room("random").await;

    let matching = alice.get("/api/rooms/directory?q=GEN").await;
    let middle = alice.get("/api/rooms/directory?q=and").await;
    let nothing = alice.get("/api/rooms/directory?q=zzz").await;

    assert_eq!(paths(&matching), ["general", "general-chat"]);
    assert_eq!(paths(&middle), ["random"]);
    assert!(paths(&nothing).is_empty(), "{}", nothing.body);
}

#[tokio::test]
async fn directory_query_escapes_wildcards() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    alice.create_public_room("general").await;
    alice.create_public_room("dev_ops").await;

    let underscore = alice.get("/api/rooms/directory?q=_").await;
    let percent = alice.get("/api/rooms/directory?q=%25").await;

    assert_eq!(paths(&underscore), ["dev_ops"]);
    assert!(paths(&percent).is_empty(), "{}", percent.body);
}

#[tokio::test]
async fn directory_never_lists_private_rooms() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    alice.create_public_room("general").await;
    create_private(&alice, "secret", None).await;
    create_private(&alice, "vault", Some(ROOM_PASSWORD)).await;

    let for_owner = alice.get("/api/rooms/directory").await;
    let for_other = bob.get("/api/rooms/directory?q=e").await;

    assert_eq!(paths(&for_owner), ["general"]);
    assert_eq!(paths(&for_other), ["general"]);
}

#[tokio::test]
async fn directory_hides_children_of_private_rooms() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let team = alice.create_public_room("team").await;
    create_sub_room(&alice, team, "frontend", "public").await;
    let hq = create_private(&alice, "hq", None).await;
    create_sub_room(&alice, hq, "lobby", "public").await;

    let for_owner = alice.get("/api/rooms/directory").await;
    let for_other = bob.get("/api/rooms/directory").await;

    assert_eq!(paths(&for_owner), ["team", "team.frontend"]);
    assert_eq!(paths(&for_other), ["team", "team.frontend"]);
}

#[tokio::test]
async fn directory_never_lists_direct_rooms() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let created = create_direct(&alice, &[bob.id]).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);

    let listed = alice.get("/api/rooms/directory").await;
    let searched = alice.get("/api/rooms/directory?q=direct").await;

    assert!(paths(&listed).is_empty(), "{}", listed.body);
    assert!(paths(&searched).is_empty(), "{}", searched.body);
}

// Joining.

#[tokio::test]
async fn join_public_room_by_name() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let general = alice.create_public_room("general").await;

    let joined = bob.join("  GENERAL ").await;

    assert_eq!(joined.status, StatusCode::OK, "{}", joined.body);
    assert_eq!(id_of(&joined), general);
    assert_eq!(joined.body["role"], "member");
    assert_eq!(joined.body["member_count"], 2);
    assert_eq!(paths(&bob.get("/api/rooms").await), ["general"]);
}

#[tokio::test]
async fn join_twice_keeps_membership() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let general = alice.create_public_room("general").await;

    let first = bob.join("general").await;
    let second = bob.join("general").await;
    let owner = alice.join("general").await;

    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(second.status, StatusCode::OK, "{}", second.body);
    assert_eq!(second.body["member_count"], 2);
    assert_eq!(owner.status, StatusCode::OK, "{}", owner.body);
    assert_eq!(owner.body["role"], "owner");
    assert_eq!(member_ids(&alice, general).await.len(), 2);
}

#[tokio::test]
async fn join_rejects_unknown_and_invalid_names() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;

    let unknown = alice.join("nowhere").await;
    let empty_segment = alice.join("team..frontend").await;
    let too_deep = alice.join("a.b.c.d.e").await;

    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.code(), "room_not_found");
    assert_eq!(empty_segment.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(empty_segment.code(), "invalid_name");
    assert_eq!(too_deep.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(too_deep.code(), "invalid_name");
}

#[tokio::test]
async fn join_private_needs_password() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    create_private(&alice, "vault", Some(ROOM_PASSWORD)).await;

    let rejected = bob.join("vault").await;

    assert_eq!(rejected.status, StatusCode::FORBIDDEN, "{}", rejected.body);
    assert_eq!(rejected.code(), "password_required");
    assert!(paths(&bob.get("/api/rooms").await).is_empty());
}

#[tokio::test]
async fn join_private_rejects_wrong_password() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    create_private(&alice, "vault", Some(ROOM_PASSWORD)).await;

    let rejected = join_with_password(&bob, "vault", "open barley").await;

    assert_eq!(rejected.status, StatusCode::FORBIDDEN, "{}", rejected.body);
    assert_eq!(rejected.code(), "wrong_password");
    assert!(paths(&bob.get("/api/rooms").await).is_empty());
}

#[tokio::test]
async fn join_private_with_right_password() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let vault = create_private(&alice, "vault", Some(ROOM_PASSWORD)).await;

    let joined = join_with_password(&bob, "Vault", ROOM_PASSWORD).await;

    assert_eq!(joined.status, StatusCode::OK, "{}", joined.body);
    assert_eq!(id_of(&joined), vault);
    assert_eq!(joined.body["role"], "member");
    assert_eq!(
        bob.get(&format!("/api/rooms/{vault}")).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn private_room_without_password_is_invisible() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let secret = create_private(&alice, "secret", None).await;

    let by_name = bob.join("secret").await;
    let with_password = join_with_password(&bob, "secret", ROOM_PASSWORD).await;
    let missing = bob.join("nothing-here").await;
    let by_id = bob.get(&format!("/api/rooms/{secret}")).await;

    assert_eq!(by_name.status, StatusCode::NOT_FOUND, "{}", by_name.body);
    assert_eq!(by_name.code(), "room_not_found");
    assert_eq!(with_password.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.code(), by_name.code());
    assert_eq!(by_id.status, StatusCode::NOT_FOUND);
    assert_eq!(by_id.code(), "room_not_found");
}

#[tokio::test]
async fn public_room_is_readable_before_joining() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let general = alice.create_public_room("general").await;

    let room = bob.get(&format!("/api/rooms/{general}")).await;
    let members = bob.get(&format!("/api/rooms/{general}/members")).await;

    assert_eq!(room.status, StatusCode::OK, "{}", room.body);
    assert!(room.body["role"].is_null());
    assert_eq!(members.status, StatusCode::FORBIDDEN, "{}", members.body);
    assert_eq!(members.code(), "not_a_member");
}

// Sub-rooms.

#[tokio::test]
async fn create_sub_room_builds_path() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let team = alice.create_public_room("team").await;

    let created = alice
        .post(
            "/api/rooms",
            json!({"name": "Frontend", "kind": "public", "parent_id": team}),
        )
        .await;

    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["name"], "frontend");
    assert_eq!(created.body["path"], "team.frontend");
    assert_eq!(created.body["parent_id"], team.to_string());
    let joined = alice.join("Team.Frontend").await;
    assert_eq!(id_of(&joined), id_of(&created));
}

#[tokio::test]
async fn sub_room_names_are_unique_per_parent() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let team = alice.create_public_room("team").await;
    let other = alice.create_public_room("other").await;
    create_sub_room(&alice, team, "frontend", "public").await;
    // The same segment under another parent and at the top level is a different path.
    create_sub_room(&alice, other, "frontend", "public").await;
    alice.create_public_room("frontend").await;

    let duplicate = alice
        .post(
            "/api/rooms",
            json!({"name": "frontend", "kind": "private", "parent_id": team}),
        )
        .await;

    assert_eq!(duplicate.status, StatusCode::CONFLICT, "{}", duplicate.body);
    assert_eq!(duplicate.code(), "room_name_taken");
}

#[tokio::test]
async fn sub_room_depth_is_limited() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let first = alice.create_public_room("a").await;
    let second = create_sub_room(&alice, first, "b", "public").await;
    let third = create_sub_room(&alice, second, "c", "public").await;
    let fourth = create_sub_room(&alice, third, "d", "public").await;

    let too_deep = alice
        .post(
            "/api/rooms",
            json!({"name": "e", "kind": "public", "parent_id": fourth}),
        )
        .await;

    assert_eq!(
        too_deep.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        too_deep.body
    );
    assert_eq!(too_deep.code(), "invalid_parent");
    let deepest = alice.get(&format!("/api/rooms/{fourth}")).await;
    assert_eq!(deepest.body["path"], "a.b.c.d");
}

#[tokio::test]
async fn sub_room_needs_parent_membership() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let team = alice.create_public_room("team").await;
    let hq = create_private(&alice, "hq", None).await;
    let body = |parent: Uuid| json!({"name": "mine", "kind": "public", "parent_id": parent});

    let under_public = bob.post("/api/rooms", body(team)).await;
    let under_private = bob.post("/api/rooms", body(hq)).await;
    let under_unknown = bob.post("/api/rooms", body(Uuid::new_v4())).await;

    assert_eq!(
        under_public.status,
        StatusCode::FORBIDDEN,
        "{}",
        under_public.body
    );
    assert_eq!(under_public.code(), "not_a_member");
    assert_eq!(
        under_private.status,
        StatusCode::NOT_FOUND,
        "{}",
        under_private.body
    );
    assert_eq!(under_private.code(), "room_not_found");
    assert_eq!(under_unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(under_unknown.code(), "room_not_found");
}

#[tokio::test]
async fn join_sub_room_needs_parent_membership() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let team = alice.create_public_room("team").await;
    let frontend = create_sub_room(&alice, team, "frontend", "public").await;

    let before = bob.join("team.frontend").await;
    assert_eq!(bob.join("team").await.status, StatusCode::OK);
    let after = bob.join("team.frontend").await;

    assert_eq!(before.status, StatusCode::FORBIDDEN, "{}", before.body);
    assert_eq!(before.code(), "not_a_parent_member");
    assert_eq!(after.status, StatusCode::OK, "{}", after.body);
    assert_eq!(id_of(&after), frontend);
}

#[tokio::test]

async fn join_hides_public_child_of_private_room() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let mallory = server.register("mallory").await;
    let hq = create_private(&alice, "hq", None).await;
    create_sub_room(&alice, hq, "lobby", "public").await;

    let joined = mallory.join("hq.lobby").await;

    assert_eq!(joined.status, StatusCode::NOT_FOUND, "{}", joined.body);
    assert_eq!(joined.code(), "room_not_found");
}

#[tokio::test]
async fn private_sub_room_hidden_from_non_members() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let team = alice.create_public_room("team").await;
    create_sub_room(&alice, team, "frontend", "public").await;
    let secret = create_sub_room(&alice, team, "secret", "private").await;
    assert_eq!(bob.join("team").await.status, StatusCode::OK);

    let room = bob.get(&format!("/api/rooms/{secret}")).await;
    let bobs_children = bob.get(&format!("/api/rooms/{team}/children")).await;
    let alices_children = alice.get(&format!("/api/rooms/{team}/children")).await;
    let joined = bob.join("team.secret").await;

    assert_eq!(room.status, StatusCode::NOT_FOUND, "{}", room.body);
    assert_eq!(room.code(), "room_not_found");
    assert_eq!(
        bobs_children.status,
        StatusCode::OK,
        "{}",
        bobs_children.body
    );
    assert_eq!(paths(&bobs_children), ["team.frontend"]);
    assert_eq!(paths(&alices_children), ["team.frontend", "team.secret"]);
    assert_eq!(role_in(&alices_children, "team.secret"), "owner");
    assert_eq!(joined.status, StatusCode::NOT_FOUND, "{}", joined.body);
}

#[tokio::test]
async fn children_of_hidden_room_are_not_found() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let hq = create_private(&alice, "hq", None).await;
    let lobby = create_sub_room(&alice, hq, "lobby", "public").await;

    let children = bob.get(&format!("/api/rooms/{hq}/children")).await;
    let child = bob.get(&format!("/api/rooms/{lobby}")).await;

    assert_eq!(children.status, StatusCode::NOT_FOUND, "{}", children.body);
    assert_eq!(children.code(), "room_not_found");
    assert_eq!(child.status, StatusCode::NOT_FOUND, "{}", child.body);
    assert_eq!(child.code(), "room_not_found");
}

#[tokio::test]
async fn rename_room_renames_child_paths() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let team = alice.create_public_room("team").await;
    let frontend = create_sub_room(&alice, team, "frontend", "public").await;
    let css = create_sub_room(&alice, frontend, "css", "private").await;

    let renamed = alice
        .patch(&format!("/api/rooms/{team}"), json!({"name": "Squad"}))
        .await;

    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.body);
    assert_eq!(renamed.body["name"], "squad");
    assert_eq!(renamed.body["path"], "squad");
    let child = alice.get(&format!("/api/rooms/{frontend}")).await;
    assert_eq!(child.body["path"], "squad.frontend");
    assert_eq!(child.body["name"], "frontend");
    let grandchild = alice.get(&format!("/api/rooms/{css}")).await;
    assert_eq!(grandchild.body["path"], "squad.frontend.css");
    assert_eq!(id_of(&alice.join("squad.frontend").await), frontend);
    assert_eq!(
        alice.join("team.frontend").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn rename_sub_room_keeps_parent_prefix() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let team = alice.create_public_room("équipe").await;
    let frontend = create_sub_room(&alice, team, "frontend", "public").await;
    let css = create_sub_room(&alice, frontend, "css", "public").await;

    let renamed = alice
        .patch(&format!("/api/rooms/{frontend}"), json!({"name": "web"}))
        .await;

    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.body);
    assert_eq!(renamed.body["path"], "équipe.web");
    let grandchild = alice.get(&format!("/api/rooms/{css}")).await;
    assert_eq!(grandchild.body["path"], "équipe.web.css");
    let parent = alice.get(&format!("/api/rooms/{team}")).await;
    assert_eq!(parent.body["path"], "équipe");
}

#[tokio::test]
async fn rename_rejects_taken_and_invalid_names() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let general = alice.create_public_room("general").await;
    alice.create_public_room("random").await;
    let path = format!("/api/rooms/{general}");

    let taken = alice.patch(&path, json!({"name": "RANDOM"})).await;
    let dotted = alice.patch(&path, json!({"name": "a.b"})).await;
    let empty = alice.patch(&path, json!({"name": ""})).await;

    assert_eq!(taken.status, StatusCode::CONFLICT, "{}", taken.body);
    assert_eq!(taken.code(), "room_name_taken");
    assert!(taken.message().contains("\"random\""), "{}", taken.body);
    assert_eq!(dotted.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(dotted.code(), "invalid_name");
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(empty.code(), "invalid_name");
    assert_eq!(alice.get(&path).await.body["path"], "general");
}

// Room settings and roles.

#[tokio::test]
async fn owner_can_update_room() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let vault = create_private(&alice, "vault", Some(ROOM_PASSWORD)).await;
    let path = format!("/api/rooms/{vault}");

    let topic = alice
        .patch(&path, json!({"topic": "  where we keep things "}))
        .await;
    let renamed = alice.patch(&path, json!({"name": "safe"})).await;

    assert_eq!(topic.status, StatusCode::OK, "{}", topic.body);
    assert_eq!(topic.body["topic"], "where we keep things");
    assert_eq!(topic.body["role"], "owner");
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.body);
    assert_eq!(renamed.body["path"], "safe");
    assert_eq!(renamed.body["topic"], "where we keep things");
}

#[tokio::test]
async fn moderator_can_manage_room() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let carol = server.register("carol").await;
    let dave = server.register("dave").await;
    let vault = create_private(&alice, "vault", Some(ROOM_PASSWORD)).await;
    assert_eq!(
        join_with_password(&bob, "vault", ROOM_PASSWORD)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        join_with_password(&carol, "vault", ROOM_PASSWORD)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        set_role(&alice, vault, bob.id, "moderator").await.status,
        StatusCode::NO_CONTENT
    );
    let path = format!("/api/rooms/{vault}");

    let renamed = bob.patch(&path, json!({"name": "safe"})).await;
    let topic = bob.patch(&path, json!({"topic": "new topic"})).await;
    let password = bob.patch(&path, json!({"password": "new sesame"})).await;
    let invite = bob.post(&format!("{path}/invites"), json!({})).await;
    let kicked = kick(&bob, vault, carol.id).await;
    let added = bob
        .post(&format!("{path}/members"), json!({"user_id": dave.id}))
        .await;

    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.body);
    assert_eq!(renamed.body["role"], "moderator");
    assert_eq!(topic.status, StatusCode::OK, "{}", topic.body);
    assert_eq!(password.status, StatusCode::OK, "{}", password.body);
    assert_eq!(invite.status, StatusCode::CREATED, "{}", invite.body);
    assert_eq!(kicked.status, StatusCode::NO_CONTENT, "{}", kicked.body);
    assert_eq!(added.status, StatusCode::NO_CONTENT, "{}", added.body);
    assert!(
        member_ids(&alice, vault)
            .await
            .contains(&dave.id.to_string())
    );
}

#[tokio::test]
async fn member_cannot_manage_room() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let carol = server.register("carol").await;
    let general = alice.create_public_room("general").await;
    assert_eq!(bob.join("general").await.status, StatusCode::OK);
    assert_eq!(carol.join("general").await.status, StatusCode::OK);
    let path = format!("/api/rooms/{general}");
    let attempts = [
        bob.patch(&path, json!({"name": "mine"})).await,
        bob.patch(&path, json!({"topic": "mine"})).await,
        bob.post(&format!("{path}/invites"), json!({})).await,
        kick(&bob, general, carol.id).await,
        ban(&bob, general, carol.id).await,
        bob.delete(&format!("{path}/bans/{}", carol.id)).await,
        set_role(&bob, general, carol.id, "member").await,
        bob.put(&format!("{path}/owner"), json!({"user_id": bob.id}))
            .await,
        bob.post(&format!("{path}/members"), json!({"user_id": carol.id}))
            .await,
        bob.delete(&path).await,
    ];

    for (index, attempt) in attempts.iter().enumerate() {
        assert_eq!(
            attempt.status,
            StatusCode::FORBIDDEN,
            "attempt {index}: {}",
            attempt.body
        );
        assert_eq!(attempt.code(), "insufficient_role", "attempt {index}");
    }
    let room = alice.get(&path).await;
    assert_eq!(room.body["path"], "general");
    assert_eq!(room.body["topic"], "");
    assert_eq!(member_ids(&alice, general).await.len(), 3);
}

#[tokio::test]
async fn change_room_password_replaces_old() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let vault = create_private(&alice, "vault", Some(ROOM_PASSWORD)).await;

    let changed = alice
        .patch(
            &format!("/api/rooms/{vault}"),
            json!({"password": "new sesame"}),
        )
        .await;

    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    assert_eq!(changed.body["has_password"], true);
    let old = join_with_password(&bob, "vault", ROOM_PASSWORD).await;
    assert_eq!(old.status, StatusCode::FORBIDDEN);
    assert_eq!(old.code(), "wrong_password");
    let new = join_with_password(&bob, "vault", "new sesame").await;
    assert_eq!(new.status, StatusCode::OK, "{}", new.body);
}

#[tokio::test]
async fn empty_room_password_removes_it() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let vault = create_private(&alice, "vault", Some(ROOM_PASSWORD)).await;

    let removed = alice
        .patch(&format!("/api/rooms/{vault}"), json!({"password": ""}))
        .await;

    assert_eq!(removed.status, StatusCode::OK, "{}", removed.body);
    assert_eq!(removed.body["has_password"], false);
    let joined = join_with_password(&bob, "vault", ROOM_PASSWORD).await;
    assert_eq!(joined.status, StatusCode::NOT_FOUND, "{}", joined.body);
    assert_eq!(joined.code(), "room_not_found");
}

#[tokio::test]
async fn room_password_rules_apply_on_update() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let general = alice.create_public_room("general").await;
    let vault = create_private(&alice, "vault", None).await;

    let on_public = alice
        .patch(
            &format!("/api/rooms/{general}"),
            json!({"password": ROOM_PASSWORD}),
        )
        .await;
    let too_short = alice
        .patch(&format!("/api/rooms/{vault}"), json!({"password": "abc"}))
        .await;
    let long_topic = alice
        .patch(
            &format!("/api/rooms/{vault}"),
            json!({"topic": "x".repeat(501)}),
        )
        .await;

    assert_eq!(
        on_public.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        on_public.body
    );
    assert_eq!(on_public.code(), "invalid_password");
    assert_eq!(
        too_short.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        too_short.body
    );
    assert_eq!(too_short.code(), "invalid_password");
    assert_eq!(long_topic.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(long_topic.code(), "invalid_topic");
    let room = alice.get(&format!("/api/rooms/{vault}")).await;
    assert_eq!(room.body["has_password"], false);
}

#[tokio::test]
async fn promote_and_demote_members() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let general = alice.create_public_room("general").await;
    assert_eq!(bob.join("general").await.status, StatusCode::OK);
    let path = format!("/api/rooms/{general}");

    let promoted = set_role(&alice, general, bob.id, "moderator").await;

    assert_eq!(promoted.status, StatusCode::NO_CONTENT, "{}", promoted.body);
    assert_eq!(member_role(&alice, general, bob.id).await, "moderator");
    let listed = bob.get("/api/rooms").await;
    assert_eq!(role_in(&listed, "general"), "moderator");
    let topic = bob.patch(&path, json!({"topic": "by a moderator"})).await;
    assert_eq!(topic.status, StatusCode::OK, "{}", topic.body);

    let demoted = set_role(&alice, general, bob.id, "member").await;

    assert_eq!(demoted.status, StatusCode::NO_CONTENT, "{}", demoted.body);
    assert_eq!(member_role(&alice, general, bob.id).await, "member");
    let topic = bob.patch(&path, json!({"topic": "by a member"})).await;
    assert_eq!(topic.status, StatusCode::FORBIDDEN);
    assert_eq!(topic.code(), "insufficient_role");
}

#[tokio::test]
async fn set_role_rejects_bad_requests() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let carol = server.register("carol").await;
    let outsider = server.register("outsider").await;
    let general = alice.create_public_room("general").await;
    assert_eq!(bob.join("general").await.status, StatusCode::OK);
    assert_eq!(carol.join("general").await.status, StatusCode::OK);
    assert_eq!(
        set_role(&alice, general, bob.id, "moderator").await.status,
        StatusCode::NO_CONTENT
    );

    let to_owner = set_role(&alice, general, carol.id, "owner").await;
    let unknown_role = set_role(&alice, general, carol.id, "king").await;
    let non_member = set_role(&alice, general, outsider.id, "moderator").await;
    let own_role = set_role(&alice, general, alice.id, "member").await;
    let moderator_promotes = set_role(&bob, general, carol.id, "moderator").await;

    assert_eq!(
        to_owner.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        to_owner.body
    );
    assert_eq!(to_owner.code(), "invalid_role");
    assert_eq!(
        unknown_role.status,
        StatusCode::BAD_REQUEST,
        "{}",
        unknown_role.body
    );
    assert_eq!(unknown_role.code(), "invalid_request");
    assert_eq!(
        non_member.status,
        StatusCode::NOT_FOUND,
        "{}",
        non_member.body
    );
    assert_eq!(non_member.code(), "member_not_found");
    assert_eq!(
        own_role.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        own_role.body
    );
    assert_eq!(own_role.code(), "invalid_target");
    assert_eq!(moderator_promotes.status, StatusCode::FORBIDDEN);
    assert_eq!(moderator_promotes.code(), "insufficient_role");
    assert_eq!(member_role(&alice, general, carol.id).await, "member");
}

#[tokio::test]
async fn transfer_ownership_swaps_roles() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let general = alice.create_public_room("general").await;
    assert_eq!(bob.join("general").await.status, StatusCode::OK);

    let transferred = alice
        .put(
            &format!("/api/rooms/{general}/owner"),
            json!({"user_id": bob.id}),
        )
        .await;

    assert_eq!(
        transferred.status,
        StatusCode::NO_CONTENT,
        "{}",
        transferred.body
    );
    let room = bob.get(&format!("/api/rooms/{general}")).await;
    assert_eq!(room.body["owner_id"], bob.id.to_string());
    assert_eq!(room.body["role"], "owner");
    assert_eq!(member_role(&bob, general, alice.id).await, "moderator");
    let deleted_by_old_owner = alice.delete(&format!("/api/rooms/{general}")).await;
    assert_eq!(deleted_by_old_owner.status, StatusCode::FORBIDDEN);
    assert_eq!(deleted_by_old_owner.code(), "insufficient_role");
}

#[tokio::test]
async fn transfer_ownership_rejects_bad_targets() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let outsider = server.register("outsider").await;
    let general = alice.create_public_room("general").await;
    assert_eq!(bob.join("general").await.status, StatusCode::OK);
    assert_eq!(
        set_role(&alice, general, bob.id, "moderator").await.status,
        StatusCode::NO_CONTENT
    );
    let path = format!("/api/rooms/{general}/owner");

    let to_outsider = alice.put(&path, json!({"user_id": outsider.id})).await;
    let to_self = alice.put(&path, json!({"user_id": alice.id})).await;
    let by_moderator = bob.put(&path, json!({"user_id": bob.id})).await;

    assert_eq!(
        to_outsider.status,
        StatusCode::NOT_FOUND,
        "{}",
        to_outsider.body
    );
    assert_eq!(to_outsider.code(), "member_not_found");
    assert_eq!(
        to_self.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        to_self.body
    );
    assert_eq!(to_self.code(), "invalid_target");
    assert_eq!(
        by_moderator.status,
        StatusCode::FORBIDDEN,
        "{}",
        by_moderator.body
    );
    assert_eq!(by_moderator.code(), "insufficient_role");
    let room = alice.get(&format!("/api/rooms/{general}")).await;
    assert_eq!(room.body["owner_id"], alice.id.to_string());
}

// Kicks and bans.

#[tokio::test]
async fn kick_removes_member_from_sub_rooms() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let team = alice.create_public_room("team").await;
    let frontend = create_sub_room(&alice, team, "frontend", "public").await;
    let css = create_sub_room(&alice, frontend, "css", "public").await;
    for path in ["team", "team.frontend", "team.frontend.css"] {
        assert_eq!(bob.join(path).await.status, StatusCode::OK, "{path}");
    }

    let kicked = kick(&alice, team, bob.id).await;

    assert_eq!(kicked.status, StatusCode::NO_CONTENT, "{}", kicked.body);
    assert!(paths(&bob.get("/api/rooms").await).is_empty());
    for room in [team, frontend, css] {
        let ids = member_ids(&alice, room).await;
        assert_eq!(ids, [alice.id.to_string()], "{room}");
    }
}

#[tokio::test]
async fn kick_from_sub_room_keeps_parent() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let team = alice.create_public_room("team").await;
    let frontend = create_sub_room(&alice, team, "frontend", "public").await;
    assert_eq!(bob.join("team").await.status, StatusCode::OK);
    assert_eq!(bob.join("team.frontend").await.status, StatusCode::OK);

    let kicked = kick(&alice, frontend, bob.id).await;

    assert_eq!(kicked.status, StatusCode::NO_CONTENT, "{}", kicked.body);
    assert_eq!(paths(&bob.get("/api/rooms").await), ["team"]);
}

#[tokio::test]
async fn kicked_user_can_rejoin() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let general = alice.create_public_room("general").await;
    assert_eq!(bob.join("general").await.status, StatusCode::OK);
    assert_eq!(
        kick(&alice, general, bob.id).await.status,
        StatusCode::NO_CONTENT
    );

    let rejoined = bob.join("general").await;

    assert_eq!(rejoined.status, StatusCode::OK, "{}", rejoined.body);
    assert_eq!(rejoined.body["role"], "member");
}

#[tokio::test]
async fn kick_rejects_bad_targets() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let outsider = server.register("outsider").await;
    let general = alice.create_public_room("general").await;

    let non_member = kick(&alice, general, outsider.id).await;
    let unknown = kick(&alice, general, Uuid::new_v4()).await;
    let own = kick(&alice, general, alice.id).await;

    assert_eq!(
        non_member.status,
        StatusCode::NOT_FOUND,
        "{}",
        non_member.body
    );
    assert_eq!(non_member.code(), "member_not_found");
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.body);
    assert_eq!(unknown.code(), "member_not_found");
    assert_eq!(own.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", own.body);
    assert_eq!(own.code(), "invalid_target");
}

#[tokio::test]
async fn moderator_cannot_kick_owner_or_moderator() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let carol = server.register("carol").await;
    let general = alice.create_public_room("general").await;
    assert_eq!(bob.join("general").await.status, StatusCode::OK);
    assert_eq!(carol.join("general").await.status, StatusCode::OK);
    assert_eq!(
        set_role(&alice, general, bob.id, "moderator").await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        set_role(&alice, general, carol.id, "moderator")
            .await
            .status,
        StatusCode::NO_CONTENT
    );

    let owner = kick(&bob, general, alice.id).await;
    let moderator = kick(&bob, general, carol.id).await;
    let ban_owner = ban(&bob, general, alice.id).await;
    let ban_moderator = ban(&bob, general, carol.id).await;

    assert_eq!(owner.status, StatusCode::FORBIDDEN, "{}", owner.body);
    assert_eq!(owner.code(), "insufficient_role");
    assert_eq!(
        moderator.status,
        StatusCode::FORBIDDEN,
        "{}",
        moderator.body
    );
    assert_eq!(moderator.code(), "insufficient_role");
    assert_eq!(ban_owner.status, StatusCode::FORBIDDEN);
    assert_eq!(ban_owner.code(), "insufficient_role");
    assert_eq!(ban_moderator.status, StatusCode::FORBIDDEN);
    assert_eq!(ban_moderator.code(), "insufficient_role");
    assert_eq!(member_ids(&alice, general).await.len(), 3);
}

#[tokio::test]
async fn owner_can_kick_moderator() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let general = alice.create_public_room("general").await;
    assert_eq!(bob.join("general").await.status, StatusCode::OK);
    assert_eq!(
        set_role(&alice, general, bob.id, "moderator").await.status,
        StatusCode::NO_CONTENT
    );

    let kicked = kick(&alice, general, bob.id).await;

    assert_eq!(kicked.status, StatusCode::NO_CONTENT, "{}", kicked.body);
    assert_eq!(member_ids(&alice, general).await, [alice.id.to_string()]);
}

#[tokio::test]
async fn banned_user_cannot_rejoin() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let general = alice.create_public_room("general").await;
    assert_eq!(bob.join("general").await.status, StatusCode::OK);

    let banned = ban(&alice, general, bob.id).await;

    assert_eq!(banned.status, StatusCode::NO_CONTENT, "{}", banned.body);
    assert!(paths(&bob.get("/api/rooms").await).is_empty());
    let rejoined = bob.join("general").await;
    assert_eq!(rejoined.status, StatusCode::FORBIDDEN, "{}", rejoined.body);
    assert_eq!(rejoined.code(), "banned");
}

#[tokio::test]
async fn banned_user_cannot_use_invite() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let secret = create_private(&alice, "secret", None).await;
    assert_eq!(
        ban(&alice, secret, bob.id).await.status,
        StatusCode::NO_CONTENT
    );
    let code = create_invite(&alice, secret, json!({})).await;

    let accepted = accept_invite(&bob, &code).await;
    let added = alice
        .post(
            &format!("/api/rooms/{secret}/members"),
            json!({"user_id": bob.id}),
        )
        .await;

    assert_eq!(accepted.status, StatusCode::FORBIDDEN, "{}", accepted.body);
    assert_eq!(accepted.code(), "banned");
    assert_eq!(added.status, StatusCode::FORBIDDEN, "{}", added.body);
    assert_eq!(added.code(), "banned");
}

#[tokio::test]
async fn unban_lets_user_rejoin() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let general = alice.create_public_room("general").await;
    assert_eq!(
        ban(&alice, general, bob.id).await.status,
        StatusCode::NO_CONTENT
    );

    let unbanned = alice
        .delete(&format!("/api/rooms/{general}/bans/{}", bob.id))
        .await;
    let unbanned_again = alice
        .delete(&format!("/api/rooms/{general}/bans/{}", bob.id))
        .await;

    assert_eq!(unbanned.status, StatusCode::NO_CONTENT, "{}", unbanned.body);
    assert_eq!(unbanned_again.status, StatusCode::NOT_FOUND);
    assert_eq!(unbanned_again.code(), "ban_not_found");
    let rejoined = bob.join("general").await;
    assert_eq!(rejoined.status, StatusCode::OK, "{}", rejoined.body);
}

#[tokio::test]
async fn ban_list_names_banned_users() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let carol = server.register("carol").await;
    let general = alice.create_public_room("general").await;
    carol.join("general").await;
    let empty = alice.get(&format!("/api/rooms/{general}/bans")).await;
    assert_eq!(empty.status, StatusCode::OK, "{}", empty.body);
    assert_eq!(empty.body["bans"], json!([]));

    assert_eq!(
        ban(&alice, general, bob.id).await.status,
        StatusCode::NO_CONTENT
    );
    let listed = alice.get(&format!("/api/rooms/{general}/bans")).await;

    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    let bans = listed.body["bans"].as_array().unwrap();
    assert_eq!(bans.len(), 1, "{}", listed.body);
    assert_eq!(bans[0]["user"]["id"], bob.id.to_string());
    assert_eq!(bans[0]["user"]["username"], "bob");
    assert_eq!(bans[0]["banned_by"], alice.id.to_string());
    assert!(bans[0]["banned_at"].is_string(), "{}", listed.body);

    // A plain member may not see who is banned.
    let hidden = carol.get(&format!("/api/rooms/{general}/bans")).await;
    assert_eq!(hidden.status, StatusCode::FORBIDDEN, "{}", hidden.body);
    assert_eq!(hidden.code(), "insufficient_role");

    alice
        .delete(&format!("/api/rooms/{general}/bans/{}", bob.id))
        .await;
    let after_unban = alice.get(&format!("/api/rooms/{general}/bans")).await;
    assert_eq!(after_unban.body["bans"], json!([]));
}

#[tokio::test]
async fn ban_removes_from_sub_rooms() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let team = alice.create_public_room("team").await;
    let frontend = create_sub_room(&alice, team, "frontend", "public").await;
    assert_eq!(bob.join("team").await.status, StatusCode::OK);
    assert_eq!(bob.join("team.frontend").await.status, StatusCode::OK);

    let banned = ban(&alice, team, bob.id).await;

    assert_eq!(banned.status, StatusCode::NO_CONTENT, "{}", banned.body);
    assert!(paths(&bob.get("/api/rooms").await).is_empty());
    assert_eq!(member_ids(&alice, frontend).await, [alice.id.to_string()]);
}

#[tokio::test]
async fn ban_rejects_unknown_user() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let general = alice.create_public_room("general").await;

    let unknown = ban(&alice, general, Uuid::new_v4()).await;
    let own = ban(&alice, general, alice.id).await;

    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.body);
    assert_eq!(unknown.code(), "user_not_found");
    assert_eq!(own.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", own.body);
    assert_eq!(own.code(), "invalid_target");
}

#[tokio::test]
async fn ban_before_joining_blocks_join() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let general = alice.create_public_room("general").await;

    let banned = ban(&alice, general, bob.id).await;
    let joined = bob.join("general").await;

    assert_eq!(banned.status, StatusCode::NO_CONTENT, "{}", banned.body);
    assert_eq!(joined.status, StatusCode::FORBIDDEN, "{}", joined.body);
    assert_eq!(joined.code(), "banned");
}

// Leaving and deleting.

#[tokio::test]
async fn owner_must_transfer_before_leaving() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let general = alice.create_public_room("general").await;
    assert_eq!(bob.join("general").await.status, StatusCode::OK);

    let left = alice
        .post(&format!("/api/rooms/{general}/leave"), json!({}))
        .await;

    assert_eq!(left.status, StatusCode::CONFLICT, "{}", left.body);
    assert_eq!(left.code(), "owner_must_transfer");
    assert_eq!(member_ids(&alice, general).await.len(), 2);
}

#[tokio::test]
async fn old_owner_can_leave_after_transfer() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let general = alice.create_public_room("general").await;
    assert_eq!(bob.join("general").await.status, StatusCode::OK);
    let transferred = alice
        .put(
            &format!("/api/rooms/{general}/owner"),
            json!({"user_id": bob.id}),
        )
        .await;
    assert_eq!(transferred.status, StatusCode::NO_CONTENT);

    let left = alice
        .post(&format!("/api/rooms/{general}/leave"), json!({}))
        .await;

    assert_eq!(left.status, StatusCode::NO_CONTENT, "{}", left.body);
    assert_eq!(member_ids(&bob, general).await, [bob.id.to_string()]);
}

#[tokio::test]
async fn member_leaves_room_and_sub_rooms() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let team = alice.create_public_room("team").await;
    let frontend = create_sub_room(&alice, team, "frontend", "public").await;
    assert_eq!(bob.join("team").await.status, StatusCode::OK);
    assert_eq!(bob.join("team.frontend").await.status, StatusCode::OK);

    let left = bob
        .post(&format!("/api/rooms/{team}/leave"), json!({}))
        .await;

    assert_eq!(left.status, StatusCode::NO_CONTENT, "{}", left.body);
    assert!(paths(&bob.get("/api/rooms").await).is_empty());
    let room = alice.get(&format!("/api/rooms/{team}")).await;
    assert_eq!(room.body["member_count"], 1);
    assert_eq!(member_ids(&alice, frontend).await, [alice.id.to_string()]);
    let again = bob
        .post(&format!("/api/rooms/{team}/leave"), json!({}))
        .await;
    assert_eq!(again.status, StatusCode::FORBIDDEN, "{}", again.body);
    assert_eq!(again.code(), "not_a_member");
}

#[tokio::test]
async fn delete_room_deletes_sub_rooms() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let team = alice.create_public_room("team").await;
    let frontend = create_sub_room(&alice, team, "frontend", "public").await;
    let secret = create_sub_room(&alice, frontend, "secret", "private").await;
    assert_eq!(bob.join("team").await.status, StatusCode::OK);
    assert_eq!(bob.join("team.frontend").await.status, StatusCode::OK);

    let deleted = alice.delete(&format!("/api/rooms/{team}")).await;

    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
    for room in [team, frontend, secret] {
        let found = alice.get(&format!("/api/rooms/{room}")).await;
        assert_eq!(found.status, StatusCode::NOT_FOUND, "{room}");
        assert_eq!(found.code(), "room_not_found", "{room}");
    }
    assert!(paths(&alice.get("/api/rooms").await).is_empty());
    assert!(paths(&bob.get("/api/rooms").await).is_empty());
    assert!(paths(&bob.get("/api/rooms/directory").await).is_empty());
    assert_eq!(
        bob.join("team.frontend").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn deleted_room_rejects_messages() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let general = alice.create_public_room("general").await;
    alice.send(general, "before the end").await;
    assert_eq!(
        alice.delete(&format!("/api/rooms/{general}")).await.status,
        StatusCode::NO_CONTENT
    );

    let message = json!({"body": "after the end", "client_id": Uuid::new_v4().to_string()});
    let posted = alice
        .post(&format!("/api/rooms/{general}/messages"), message)
        .await;
    let read = alice.get(&format!("/api/rooms/{general}/messages")).await;

    assert_eq!(posted.status, StatusCode::NOT_FOUND, "{}", posted.body);
    assert_eq!(posted.code(), "room_not_found");
    assert_eq!(read.status, StatusCode::NOT_FOUND, "{}", read.body);
    assert_eq!(read.code(), "room_not_found");
}

#[tokio::test]
async fn only_owner_deletes_room() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let general = alice.create_public_room("general").await;
    assert_eq!(bob.join("general").await.status, StatusCode::OK);
    assert_eq!(
        set_role(&alice, general, bob.id, "moderator").await.status,
        StatusCode::NO_CONTENT
    );

    let by_moderator = bob.delete(&format!("/api/rooms/{general}")).await;

    assert_eq!(
        by_moderator.status,
        StatusCode::FORBIDDEN,
        "{}",
        by_moderator.body
    );
    assert_eq!(by_moderator.code(), "insufficient_role");
    assert_eq!(
        alice.get(&format!("/api/rooms/{general}")).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn deleted_room_name_is_free_again() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let team = alice.create_public_room("team").await;
    create_sub_room(&alice, team, "frontend", "public").await;
    assert_eq!(
        alice.delete(&format!("/api/rooms/{team}")).await.status,
        StatusCode::NO_CONTENT
    );

    let recreated = alice.create_public_room("team").await;
    let child = create_sub_room(&alice, recreated, "frontend", "public").await;

    assert_ne!(recreated, team);
    let found = alice.get(&format!("/api/rooms/{child}")).await;
    assert_eq!(found.body["path"], "team.frontend");
}

// Invites.

#[tokio::test]
async fn invite_joins_private_room() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let secret = create_private(&alice, "secret", None).await;

    let created = alice
        .post(
            &format!("/api/rooms/{secret}/invites"),
            json!({"single_use": true, "expires_in_secs": 3600}),
        )
        .await;

    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["room_id"], secret.to_string());
    assert_eq!(created.body["single_use"], true);
    assert!(created.body["url"].is_null(), "{}", created.body);
    let expires_at = created.body["expires_at"].as_str().unwrap();
    let expires_at = OffsetDateTime::parse(expires_at, &Rfc3339).unwrap();
    let lifetime = expires_at - OffsetDateTime::now_utc();
    assert!(lifetime > time::Duration::seconds(3590), "{lifetime}");
    assert!(lifetime <= time::Duration::seconds(3600), "{lifetime}");
    let code = created.body["code"].as_str().unwrap();
    let accepted = accept_invite(&bob, code).await;
    assert_eq!(accepted.status, StatusCode::OK, "{}", accepted.body);
    assert_eq!(id_of(&accepted), secret);
    assert_eq!(accepted.body["role"], "member");
    assert_eq!(paths(&bob.get("/api/rooms").await), ["secret"]);
}

#[tokio::test]
async fn invite_lasts_one_day_by_default() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let secret = create_private(&alice, "secret", None).await;

    let created = alice
        .post(&format!("/api/rooms/{secret}/invites"), json!({}))
        .await;

    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["single_use"], false);
    let expires_at = created.body["expires_at"].as_str().unwrap();
    let expires_at = OffsetDateTime::parse(expires_at, &Rfc3339).unwrap();
    let lifetime = expires_at - OffsetDateTime::now_utc();
    assert!(lifetime > time::Duration::seconds(86_390), "{lifetime}");
    assert!(lifetime <= time::Duration::seconds(86_400), "{lifetime}");
}

#[tokio::test]
async fn invite_url_uses_public_url() {
    let server = TestServer::start_with(|settings| {
        settings.public_url = Some("https://chat.example.com/".to_string());
    })
    .await;
    let alice = server.register("alice").await;
    let secret = create_private(&alice, "secret", None).await;

    let created = alice
        .post(&format!("/api/rooms/{secret}/invites"), json!({}))
        .await;

    let code = created.body["code"].as_str().unwrap();
    let expected = format!("https://chat.example.com/invite/{code}");
    assert_eq!(created.body["url"], expected);
}

#[tokio::test]
async fn single_use_invite_fails_second_time() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let carol = server.register("carol").await;
    let secret = create_private(&alice, "secret", None).await;
    let code = create_invite(&alice, secret, json!({"single_use": true})).await;
    assert_eq!(accept_invite(&bob, &code).await.status, StatusCode::OK);

    let second = accept_invite(&carol, &code).await;

    assert_eq!(second.status, StatusCode::NOT_FOUND, "{}", second.body);
    assert_eq!(second.code(), "invite_not_found");
    assert_eq!(member_ids(&alice, secret).await.len(), 2);
}

#[tokio::test]
async fn reusable_invite_admits_several_users() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let carol = server.register("carol").await;
    let secret = create_private(&alice, "secret", None).await;
    let code = create_invite(&alice, secret, json!({"single_use": false})).await;

    let first = accept_invite(&bob, &code).await;
    let second = accept_invite(&carol, &code).await;
    let repeated = accept_invite(&bob, &code).await;

    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_eq!(second.status, StatusCode::OK, "{}", second.body);
    assert_eq!(repeated.status, StatusCode::OK, "{}", repeated.body);
    assert_eq!(repeated.body["role"], "member");
    assert_eq!(member_ids(&alice, secret).await.len(), 3);
}

#[tokio::test]
async fn expired_invite_fails() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let secret = create_private(&alice, "secret", None).await;
    let code = create_invite(&alice, secret, json!({"expires_in_secs": 1})).await;

    tokio::time::sleep(Duration::from_millis(1500)).await;
    let accepted = accept_invite(&bob, &code).await;

    assert_eq!(accepted.status, StatusCode::NOT_FOUND, "{}", accepted.body);
    assert_eq!(accepted.code(), "invite_not_found");
    assert!(paths(&bob.get("/api/rooms").await).is_empty());
}

#[tokio::test]
async fn invite_rejects_invalid_expiry() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let secret = create_private(&alice, "secret", None).await;
    let path = format!("/api/rooms/{secret}/invites");

    let zero = alice.post(&path, json!({"expires_in_secs": 0})).await;
    let too_long = alice
        .post(&path, json!({"expires_in_secs": THIRTY_DAYS_SECS + 1}))
        .await;
    let negative = alice.post(&path, json!({"expires_in_secs": -5})).await;
    let longest = alice
        .post(&path, json!({"expires_in_secs": THIRTY_DAYS_SECS}))
        .await;

    assert_eq!(
        zero.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        zero.body
    );
    assert_eq!(zero.code(), "invalid_expires_in_secs");
    assert_eq!(
        too_long.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        too_long.body
    );
    assert_eq!(too_long.code(), "invalid_expires_in_secs");
    assert_eq!(
        negative.status,
        StatusCode::BAD_REQUEST,
        "{}",
        negative.body
    );
    assert_eq!(negative.code(), "invalid_request");
    assert_eq!(longest.status, StatusCode::CREATED, "{}", longest.body);
}

#[tokio::test]
async fn unknown_invite_is_not_found() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;

    let accepted = accept_invite(&alice, "no-such-invite-code").await;

    assert_eq!(accepted.status, StatusCode::NOT_FOUND, "{}", accepted.body);
    assert_eq!(accepted.code(), "invite_not_found");
}

#[tokio::test]
async fn invite_to_deleted_room_fails() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let secret = create_private(&alice, "secret", None).await;
    let code = create_invite(&alice, secret, json!({})).await;
    assert_eq!(
        alice.delete(&format!("/api/rooms/{secret}")).await.status,
        StatusCode::NO_CONTENT
    );

    let accepted = accept_invite(&bob, &code).await;

    assert_eq!(accepted.status, StatusCode::NOT_FOUND, "{}", accepted.body);
    assert_eq!(accepted.code(), "invite_not_found");
}

#[tokio::test]
async fn sub_room_invite_needs_parent_membership() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let team = alice.create_public_room("team").await;
    let secret = create_sub_room(&alice, team, "secret", "private").await;
    let code = create_invite(&alice, secret, json!({})).await;

    let before = accept_invite(&bob, &code).await;
    assert_eq!(bob.join("team").await.status, StatusCode::OK);
    let after = accept_invite(&bob, &code).await;

    assert_eq!(before.status, StatusCode::FORBIDDEN, "{}", before.body);
    assert_eq!(before.code(), "not_a_parent_member");
    assert_eq!(after.status, StatusCode::OK, "{}", after.body);
    assert_eq!(id_of(&after), secret);
}

#[tokio::test]

async fn failed_join_keeps_single_use_invite() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let team = alice.create_public_room("team").await;
    let secret = create_sub_room(&alice, team, "secret", "private").await;
    let code = create_invite(&alice, secret, json!({"single_use": true})).await;

    let before = accept_invite(&bob, &code).await;
    assert_eq!(before.code(), "not_a_parent_member");
    assert_eq!(bob.join("team").await.status, StatusCode::OK);
    let after = accept_invite(&bob, &code).await;

    assert_eq!(after.status, StatusCode::OK, "{}", after.body);
    assert_eq!(id_of(&after), secret);
}

// Direct rooms.

#[tokio::test]
async fn direct_room_is_created_once() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;

    let created = create_direct(&alice, &[bob.id]).await;
    let again = create_direct(&alice, &[bob.id]).await;
    let from_bob = create_direct(&bob, &[alice.id]).await;

    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["kind"], "direct");
    assert_eq!(created.body["name"], "");
    assert_eq!(created.body["member_count"], 2);
    assert!(created.body["owner_id"].is_null(), "{}", created.body);
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(id_of(&again), id_of(&created));
    assert_eq!(from_bob.status, StatusCode::OK, "{}", from_bob.body);
    assert_eq!(id_of(&from_bob), id_of(&created));
    let bobs_rooms = bob.get("/api/rooms").await;
    assert_eq!(
        role_in(&bobs_rooms, created.body["path"].as_str().unwrap()),
        "member"
    );
}

#[tokio::test]
async fn direct_room_ignores_duplicate_ids() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let created = create_direct(&alice, &[bob.id]).await;

    let repeated = create_direct(&alice, &[bob.id, bob.id, alice.id]).await;

    assert_eq!(repeated.status, StatusCode::OK, "{}", repeated.body);
    assert_eq!(id_of(&repeated), id_of(&created));
    assert_eq!(repeated.body["member_count"], 2);
}

#[tokio::test]
async fn group_direct_room_with_three() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let carol = server.register("carol").await;
    let pair = create_direct(&alice, &[bob.id]).await;

    let group = create_direct(&alice, &[bob.id, carol.id]).await;

    assert_eq!(group.status, StatusCode::CREATED, "{}", group.body);
    assert_eq!(group.body["member_count"], 3);
    assert_ne!(id_of(&group), id_of(&pair));
    let group_id = id_of(&group);
    let members = member_ids(&carol, group_id).await;
    assert!(members.contains(&alice.id.to_string()));
    assert!(members.contains(&bob.id.to_string()));
    assert!(members.contains(&carol.id.to_string()));
}

#[tokio::test]
async fn direct_room_allows_fifty_participants() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let others = add_users_to_store(&server, 49).await;

    let created = create_direct(&alice, &others).await;

    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["member_count"], 50);
}

#[tokio::test]
async fn direct_room_rejects_more_than_fifty() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let others = add_users_to_store(&server, 50).await;

    let rejected = create_direct(&alice, &others).await;

    assert_eq!(
        rejected.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        rejected.body
    );
    assert_eq!(rejected.code(), "invalid_user_ids");
}

#[tokio::test]
async fn direct_room_needs_another_user() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;

    let empty = create_direct(&alice, &[]).await;
    let only_self = create_direct(&alice, &[alice.id]).await;

    assert_eq!(
        empty.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        empty.body
    );
    assert_eq!(empty.code(), "invalid_user_ids");
    assert_eq!(
        only_self.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        only_self.body
    );
    assert_eq!(only_self.code(), "invalid_user_ids");
}

#[tokio::test]
async fn direct_room_rejects_unknown_user() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let disabled = server.register("disabled").await;
    server
        .state
        .store
        .set_disabled(disabled.id, true)
        .await
        .unwrap();

    let unknown = create_direct(&alice, &[bob.id, Uuid::new_v4()]).await;
    let to_disabled = create_direct(&alice, &[disabled.id]).await;
    let not_a_uuid = alice
        .post("/api/direct", json!({"user_ids": ["bob"]}))
        .await;

    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.body);
    assert_eq!(unknown.code(), "user_not_found");
    assert_eq!(
        to_disabled.status,
        StatusCode::NOT_FOUND,
        "{}",
        to_disabled.body
    );
    assert_eq!(to_disabled.code(), "user_not_found");
    assert_eq!(
        not_a_uuid.status,
        StatusCode::BAD_REQUEST,
        "{}",
        not_a_uuid.body
    );
    assert_eq!(not_a_uuid.code(), "invalid_request");
    assert!(paths(&alice.get("/api/rooms").await).is_empty());
}

#[tokio::test]
async fn direct_room_is_not_joinable() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let carol = server.register("carol").await;
    let created = create_direct(&alice, &[bob.id]).await;
    let direct = id_of(&created);
    let path = created.body["path"].as_str().unwrap();

    let by_path = carol.join(path).await;
    let by_id = carol.get(&format!("/api/rooms/{direct}")).await;
    let invite = alice
        .post(&format!("/api/rooms/{direct}/invites"), json!({}))
        .await;

    assert_eq!(
        by_path.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        by_path.body
    );
    assert_eq!(by_id.status, StatusCode::NOT_FOUND, "{}", by_id.body);
    assert_eq!(by_id.code(), "room_not_found");
    assert_eq!(invite.status, StatusCode::FORBIDDEN, "{}", invite.body);
    assert!(paths(&carol.get("/api/rooms").await).is_empty());
    assert_eq!(member_ids(&alice, direct).await.len(), 2);
}

#[tokio::test]
async fn direct_room_takes_no_sub_rooms() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let direct = id_of(&create_direct(&alice, &[bob.id]).await);

    let rejected = alice
        .post(
            "/api/rooms",
            json!({"name": "side", "kind": "public", "parent_id": direct}),
        )
        .await;

    assert_eq!(
        rejected.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        rejected.body
    );
    assert_eq!(rejected.code(), "invalid_parent");
}

// Hiding private rooms.

/// One request a client can make about a room.
struct RoomRequest {
    method: Method,
    path: String,
    body: Option<Value>,
}

/// Builds one request for every room route of `room`, each with a body it accepts.
/// `other` is the user id for the routes that name a target member.
fn room_requests(room: Uuid, other: Uuid) -> Vec<RoomRequest> {
    let message = json!({"body": "hello", "client_id": "hidden-room-probe"});
    let routes: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, format!("/api/rooms/{room}"), None),
        (Method::GET, format!("/api/rooms/{room}/members"), None),
        (Method::GET, format!("/api/rooms/{room}/children"), None),
        (Method::GET, format!("/api/rooms/{room}/messages"), None),
        (Method::GET, format!("/api/rooms/{room}/pins"), None),
        (Method::GET, format!("/api/rooms/{room}/files"), None),
        (
            Method::POST,
            format!("/api/rooms/{room}/messages"),
            Some(message),
        ),
        (
            Method::POST,
            format!("/api/rooms/{room}/invites"),
            Some(json!({})),
        ),
        (
            Method::PATCH,
            format!("/api/rooms/{room}"),
            Some(json!({"topic": "mine"})),
        ),
        (Method::DELETE, format!("/api/rooms/{room}"), None),
        (
            Method::POST,
            format!("/api/rooms/{room}/leave"),
            Some(json!({})),
        ),
        (
            Method::POST,
            format!("/api/rooms/{room}/members"),
            Some(json!({"user_id": other})),
        ),
        (
            Method::DELETE,
            format!("/api/rooms/{room}/members/{other}"),
            None,
        ),
        (
            Method::PUT,
            format!("/api/rooms/{room}/members/{other}/role"),
            Some(json!({"role": "member"})),
        ),
        (
            Method::PUT,
            format!("/api/rooms/{room}/bans/{other}"),
            Some(json!({})),
        ),
        (
            Method::DELETE,
            format!("/api/rooms/{room}/bans/{other}"),
            None,
        ),
        (
            Method::PUT,
            format!("/api/rooms/{room}/owner"),
            Some(json!({"user_id": other})),
        ),
    ];
    routes
        .into_iter()
        .map(|(method, path, body)| RoomRequest { method, path, body })
        .collect()
}

async fn send_room_request(user: &TestUser, request: &RoomRequest) -> Answer {
    let mut builder = user.request(request.method.clone(), &request.path);
    if let Some(body) = &request.body {
        builder = builder.json(body);
    }
    answer(builder.send().await.unwrap()).await
}

async fn upload_file(user: &TestUser, room: Uuid) -> Answer {
    let part = reqwest::multipart::Part::bytes(b"probe".to_vec()).file_name("probe.txt");
    let form = reqwest::multipart::Form::new().part("file", part);
    let request = user
        .request(Method::POST, &format!("/api/rooms/{room}/files"))
        .multipart(form);
    answer(request.send().await.unwrap()).await
}

/// Asserts that every room route responds to `outsider` about `room` exactly as about
/// a room that does not exist, and that no response contains any of `secrets`.
async fn assert_hidden(outsider: &TestUser, room: Uuid, other: Uuid, secrets: &[&str]) {
    let hidden = room_requests(room, other);
    let missing = room_requests(Uuid::new_v4(), other);
    for (request, control) in hidden.iter().zip(&missing) {
        let route = format!("{} {}", request.method, request.path);

        let got = send_room_request(outsider, request).await;
        let expected = send_room_request(outsider, control).await;

        assert_eq!(got.status, StatusCode::NOT_FOUND, "{route}: {}", got.body);
        assert_eq!(got.code(), "room_not_found", "{route}");
        assert_eq!(got.body, expected.body, "{route}");
        let text = got.body.to_string();
        for secret in secrets {
            assert!(!text.contains(secret), "{route} reveals {secret:?}: {text}");
        }
    }

    let uploaded = upload_file(outsider, room).await;
    assert_eq!(
        uploaded.status,
        StatusCode::NOT_FOUND,
        "upload: {}",
        uploaded.body
    );
    assert_eq!(uploaded.code(), "room_not_found", "upload");
}

#[tokio::test]
async fn private_room_hidden_from_non_members() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let mallory = server.register("mallory").await;
    let body = json!({"name": "secret-plans", "kind": "private", "topic": "launch codes"});
    let room = alice.create_room(body).await;
    alice.send(room, "the plan").await;

    assert_hidden(&mallory, room, alice.id, &["secret-plans", "launch codes"]).await;

    let members = member_ids(&alice, room).await;
    assert_eq!(members, [alice.id.to_string()]);
    let unchanged = alice.get(&format!("/api/rooms/{room}")).await;
    assert_eq!(unchanged.body["topic"], "launch codes");
}

#[tokio::test]
async fn password_room_hidden_from_non_members() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let mallory = server.register("mallory").await;
    let body = json!({"name": "vault", "kind": "private", "password": ROOM_PASSWORD,
                      "topic": "gold bars"});
    let room = alice.create_room(body).await;

    assert_hidden(&mallory, room, alice.id, &["vault", "gold bars"]).await;
}

#[tokio::test]
async fn children_of_private_room_hidden() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let mallory = server.register("mallory").await;
    let hq = create_private(&alice, "hq", None).await;
    let body = json!({"name": "lobby", "kind": "public", "parent_id": hq, "topic": "front desk"});
    let lobby = alice.create_room(body).await;

    assert_hidden(&mallory, lobby, alice.id, &["hq", "lobby", "front desk"]).await;
}

#[tokio::test]
async fn private_sub_room_hidden_from_parent_members() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let team = alice.create_public_room("team").await;
    let body = json!({"name": "payroll", "kind": "private", "parent_id": team,
                      "topic": "salaries"});
    let payroll = alice.create_room(body).await;
    assert_eq!(bob.join("team").await.status, StatusCode::OK);

    assert_hidden(&bob, payroll, alice.id, &["payroll", "salaries"]).await;
}

#[tokio::test]
async fn direct_room_hidden_from_others() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let mallory = server.register("mallory").await;
    let direct = id_of(&create_direct(&alice, &[bob.id]).await);
    alice.send(direct, "just between us").await;

    assert_hidden(&mallory, direct, alice.id, &["just between us"]).await;
}

#[tokio::test]
async fn invalid_uuid_in_path_is_rejected() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let general = alice.create_public_room("general").await;

    let room = alice.get("/api/rooms/not-a-uuid").await;
    let members = alice.get("/api/rooms/not-a-uuid/members").await;
    let member = alice
        .delete(&format!("/api/rooms/{general}/members/not-a-uuid"))
        .await;
    let ban = alice
        .put(&format!("/api/rooms/{general}/bans/12345"), json!({}))
        .await;

    assert_eq!(room.status, StatusCode::BAD_REQUEST, "{}", room.body);
    assert_eq!(room.code(), "invalid_path");
    assert_eq!(members.status, StatusCode::BAD_REQUEST, "{}", members.body);
    assert_eq!(members.code(), "invalid_path");
    assert_eq!(member.status, StatusCode::BAD_REQUEST, "{}", member.body);
    assert_eq!(member.code(), "invalid_path");
    assert_eq!(ban.status, StatusCode::BAD_REQUEST, "{}", ban.body);
    assert_eq!(ban.code(), "invalid_path");
}

/// Sends `body` as raw bytes with a JSON content type.
async fn post_raw(
    user: &crate::common::TestUser,
    path: &str,
    body: Vec<u8>,
) -> crate::common::Answer {
    let request = user
        .request(reqwest::Method::POST, path)
        .header("content-type", "application/json")
        .body(body);
    crate::common::answer(request.send().await.unwrap()).await
}

#[tokio::test]
async fn invalid_utf8_in_names_is_rejected() {
    let server = crate::common::TestServer::start().await;
    let alice = server.register("alice").await;

    let mut create = b"{\"name\": \"caf".to_vec();
    create.extend_from_slice(&[0xC3, 0x28]);
    create.extend_from_slice(b"\", \"kind\": \"public\"}");
    let answer = post_raw(&alice, "/api/rooms", create).await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert_eq!(answer.code(), "invalid_json");

    let mut join = b"{\"name\": \"".to_vec();
    join.extend_from_slice(&[0xFF, 0xFE]);
    join.extend_from_slice(b"\"}");
    let answer = post_raw(&alice, "/api/rooms/join", join).await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert_eq!(answer.code(), "invalid_json");

    let answer = alice.get("/api/rooms/%FF%FE").await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert_eq!(answer.code(), "invalid_path");

    let rooms = alice.get("/api/rooms").await;
    assert_eq!(
        rooms.body["rooms"].as_array().unwrap().len(),
        0,
        "nothing was created"
    );
}

#[tokio::test]
async fn invalid_utf8_in_registration_is_rejected() {
    let server = crate::common::TestServer::start().await;
    let mut body = b"{\"username\": \"b".to_vec();
    body.extend_from_slice(&[0x80]);
    body.extend_from_slice(b"b\", \"email\": \"b@example.com\", \"password\": \"long enough\"}");
    let response = server
        .anonymous(reqwest::Method::POST, "/api/auth/register")
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let answer = crate::common::answer(response).await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert_eq!(answer.code(), "invalid_json");
}

#[tokio::test]
async fn room_password_guesses_are_rate_limited() {
    let server = TestServer::start_with(|settings| {
        settings.rate_limit.enabled = true;
        settings.rate_limit.login_per_account_per_minute = 3;
    })
    .await;
    let alice = server.register("alice").await;
    let carol = server.register("carol").await;
    alice
        .create_room(json!({"name": "secret", "kind": "private", "password": "opensesame"}))
        .await;

    for guess in 0..3 {
        let body = json!({"name": "secret", "password": format!("guess{guess}")});
        let answer = carol.post("/api/rooms/join", body).await;
        assert_eq!(answer.code(), "wrong_password", "guess {guess}");
    }
    let body = json!({"name": "secret", "password": "opensesame"});
    let answer = carol.post("/api/rooms/join", body).await;
    assert_eq!(
        answer.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        answer.body
    );
    assert!(answer.headers.contains_key("retry-after"));
}

#[tokio::test]
async fn oversized_json_body_is_413() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;
    let body = json!({"body": "x".repeat(3 * 1024 * 1024), "client_id": "big"});
    let answer = alice
        .post(&format!("/api/rooms/{room}/messages"), body)
        .await;
    assert_eq!(
        answer.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        answer.body
    );
    assert_eq!(answer.code(), "body_too_large");
}

#[tokio::test]
async fn wrong_method_answers_json_405() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let answer = alice.post("/api/rooms/directory", json!({})).await;
    assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(answer.code(), "method_not_allowed");
}
