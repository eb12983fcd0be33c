//! Messages: posting, rendering, mentions, idempotent retries, history, replies,
//! edits, deletes, reactions, pins, search and visibility to non-members.

use std::collections::HashSet;

use futures_util::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::{Answer, TestServer, TestUser, answer};

/// Fields that every message object must contain.
const MESSAGE_FIELDS: [&str; 13] = [
    "id",
    "room_id",
    "seq",
    "author",
    "body",
    "html",
    "mentions",
    "reply_to",
    "reactions",
    "attachments",
    "client_id",
    "created_at",
    "edited_at",
];

/// Elements that safe message HTML may contain, for the bodies these tests send.
const RENDERED_TAGS: [&str; 4] = ["p", "br", "a", "code"];

/// Splits `html` into its tags, each the lowercased text between `<` and `>`. Text
/// content cannot contain `<` because the renderer escapes it.
fn tags(html: &str) -> Vec<String> {
    html.split('<')
        .skip(1)
        .map(|rest| rest.split('>').next().unwrap_or_default().to_lowercase())
        .collect()
}

fn tag_name(tag: &str) -> String {
    tag.trim_start_matches('/')
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect()
}

async fn post_message(user: &TestUser, room_id: Uuid, request: Value) -> Answer {
    user.post(&format!("/api/rooms/{room_id}/messages"), request)
        .await
}

/// Posts `body` with a fresh client id and returns the response, whatever its status.
async fn try_send(user: &TestUser, room_id: Uuid, body: &str) -> Answer {
    let request = json!({"body": body, "client_id": Uuid::new_v4().to_string()});
    post_message(user, room_id, request).await
}

async fn history(user: &TestUser, room_id: Uuid, query: &str) -> Answer {
    user.get(&format!("/api/rooms/{room_id}/messages{query}"))
        .await
}

/// Returns the `messages` array of a page response.
fn page_messages(page: &Answer) -> Vec<Value> {
    page.body["messages"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn seqs(messages: &[Value]) -> Vec<i64> {
    messages
        .iter()
        .map(|message| message["seq"].as_i64().unwrap())
        .collect()
}

fn message_id(message: &Value) -> Uuid {
    message["id"].as_str().unwrap().parse().unwrap()
}

async fn search(user: &TestUser, parameters: &[(&str, &str)]) -> Answer {
    let request = user.request(Method::GET, "/api/search").query(parameters);
    answer(request.send().await.unwrap()).await
}

/// Returns the message ids of a search response.
fn hit_ids(results: &Answer) -> Vec<Uuid> {
    results.body["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|hit| message_id(&hit["message"]))
        .collect()
}

/// Percent-encodes every byte of a path segment except unreserved ASCII characters.
fn encode_segment(text: &str) -> String {
    text.bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
                (byte as char).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}

fn reaction_path(message_id: Uuid, emoji: &str) -> String {
    format!(
        "/api/messages/{message_id}/reactions/{}",
        encode_segment(emoji)
    )
}

/// Alice owns a public room `name` that Bob has joined.
async fn room_with_bob(server: &TestServer, name: &str) -> (TestUser, TestUser, Uuid) {
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let room = alice.create_public_room(name).await;
    let joined = bob.join(name).await;
    assert_eq!(joined.status, StatusCode::OK, "bob joins: {}", joined.body);
    (alice, bob, room)
}

// --- Posting ---

#[tokio::test]
async fn post_returns_every_field() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;

    let client_id = Uuid::new_v4().to_string();
    let request = json!({"body": "hello **world**", "client_id": client_id});
    let posted = post_message(&alice, room, request).await;

    assert_eq!(posted.status, StatusCode::CREATED, "{}", posted.body);
    let message = posted.body.as_object().unwrap();
    for field in MESSAGE_FIELDS {
        assert!(message.contains_key(field), "no {field} in {}", posted.body);
    }
    assert_eq!(posted.body["room_id"], room.to_string());
    assert_eq!(posted.body["seq"], 1);
    assert_eq!(posted.body["author"]["id"], alice.id.to_string());
    assert_eq!(posted.body["author"]["username"], "alice");
    assert_eq!(posted.body["body"], "hello **world**");
    assert_eq!(posted.body["html"], "<p>hello <strong>world</strong></p>\n");
    assert_eq!(posted.body["mentions"], json!([]));
    assert_eq!(posted.body["reply_to"], Value::Null);
    assert_eq!(posted.body["reactions"], json!([]));
    assert_eq!(posted.body["attachments"], json!([]));
    assert_eq!(posted.body["client_id"], client_id);
    assert_eq!(posted.body["edited_at"], Value::Null);
    assert_eq!(posted.body["deleted"], false);
    let created_at = posted.body["created_at"].as_str().unwrap();
    let parsed =
        time::OffsetDateTime::parse(created_at, &time::format_description::well_known::Rfc3339);
    assert!(parsed.is_ok(), "created_at {created_at:?} is not RFC 3339");
    assert!(Uuid::parse_str(posted.body["id"].as_str().unwrap()).is_ok());

    let fetched = alice
        .get(&format!("/api/messages/{}", message_id(&posted.body)))
        .await;
    assert_eq!(fetched.status, StatusCode::OK, "{}", fetched.body);
    assert_eq!(fetched.body, posted.body);
}

#[tokio::test]
async fn post_rejects_missing_client_id() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;

    let posted = post_message(&alice, room, json!({"body": "hi"})).await;

    assert_eq!(posted.status, StatusCode::BAD_REQUEST, "{}", posted.body);
    assert_eq!(posted.code(), "invalid_request");
}

#[tokio::test]
async fn post_to_unknown_room_is_not_found() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;

    let posted = try_send(&alice, Uuid::new_v4(), "hi").await;

    assert_eq!(posted.status, StatusCode::NOT_FOUND, "{}", posted.body);
    assert_eq!(posted.code(), "room_not_found");
}

#[tokio::test]
async fn post_by_visible_non_member_is_forbidden() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let room = alice.create_public_room("general").await;

    let posted = try_send(&bob, room, "hi").await;

    assert_eq!(posted.status, StatusCode::FORBIDDEN, "{}", posted.body);
    assert_eq!(posted.code(), "not_a_member");
}

// --- Markdown and sanitising ---

#[tokio::test]
async fn markdown_renders_expected_tags() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;
    let cases = [
        ("**bold**", "<strong>bold</strong>"),
        ("*italic*", "<em>italic</em>"),
        ("~~gone~~", "<del>gone</del>"),
        ("run `cargo test`", "<code>cargo test</code>"),
        (
            "```rust\nfn main() {}\n```",
            "<pre><code class=\"language-rust\">fn main() {}\n</code></pre>",
        ),
        (
            "[docs](https://example.com/docs)",
            "<a href=\"https://example.com/docs\" rel=\"noopener noreferrer nofollow\">docs</a>",
        ),
        ("- one\n- two", "<ul>\n<li>one</li>\n<li>two</li>\n</ul>"),
        ("1. one\n2. two", "<ol>\n<li>one</li>\n<li>two</li>\n</ol>"),
        (
            "> wise words",
            "<blockquote>\n<p>wise words</p>\n</blockquote>",
        ),
    ];

    for (body, expected) in cases {
        let message = alice.send(room, body).await;
        let html = message["html"].as_str().unwrap();
        assert!(html.contains(expected), "{body:?} rendered {html:?}");
        assert_eq!(message["body"], body, "body of {body:?}");
    }
}

#[tokio::test]
async fn xss_bodies_render_inert() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;
    let bodies = [
        "<script>alert(1)</script>",
        "hi <script>alert(1)</script> there",
        "<img src=x onerror=alert(1)>",
        "[x](javascript:alert(1))",
        "[x](JavaScript:alert(1))",
        "<a href=\"javascript:alert(1)\">x</a>",
        "<iframe src=\"https://evil.example\"></iframe>",
        "<style>body { display: none }</style>",
        "<svg onload=alert(1)>",
        "![x](javascript:alert(1))",
    ];

    for body in bodies {
        let message = alice.send(room, body).await;
        let html = message["html"].as_str().unwrap();
        for tag in tags(html) {
            let name = tag_name(&tag);
            assert!(
                RENDERED_TAGS.contains(&name.as_str()),
                "{body:?} rendered <{tag}>"
            );
            assert!(!tag.contains("javascript"), "{body:?} rendered <{tag}>");
            let handler = tag
                .split_whitespace()
                .any(|attribute| attribute.starts_with("on"));
            assert!(!handler, "{body:?} rendered <{tag}>");
        }
        let lowercase = html.to_lowercase();
        assert!(!lowercase.contains("<script"), "{body:?} rendered {html:?}");
        assert!(!lowercase.contains("<img"), "{body:?} rendered {html:?}");
        assert!(!lowercase.contains("<iframe"), "{body:?} rendered {html:?}");
        assert!(!lowercase.contains("<style"), "{body:?} rendered {html:?}");
        assert!(!lowercase.contains("<svg"), "{body:?} rendered {html:?}");
        assert_eq!(message["body"], body, "body kept as typed");
    }
}

#[tokio::test]
async fn shortcode_renders_emoji() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;

    let message = alice.send(room, "we shipped :tada:").await;

    let html = message["html"].as_str().unwrap();
    assert!(html.contains("we shipped 🎉"), "{html}");
    assert!(!html.contains(":tada:"), "{html}");
    assert_eq!(message["body"], "we shipped :tada:");
}

#[tokio::test]
async fn shortcode_in_code_stays_text() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;

    let message = alice.send(room, "`:tada:`").await;

    let html = message["html"].as_str().unwrap();
    assert!(html.contains("<code>:tada:</code>"), "{html}");
}

// --- Mentions ---

#[tokio::test]
async fn mentions_resolve_members_only() {
    let server = TestServer::start().await;
    let (alice, bob, room) = room_with_bob(&server, "general").await;
    let carol = server.register("carol").await;

    let message = alice
        .send(room, "@bob @room @here @carol @nobody look")
        .await;

    let mentions = message["mentions"].as_array().unwrap();
    let bob_mention = json!({"kind": "user", "user_id": bob.id.to_string(), "username": "bob"});
    assert!(mentions.contains(&bob_mention), "{mentions:?}");
    assert!(mentions.contains(&json!({"kind": "room"})), "{mentions:?}");
    assert!(mentions.contains(&json!({"kind": "here"})), "{mentions:?}");
    let carol_mentioned = mentions
        .iter()
        .any(|mention| mention["user_id"] == carol.id.to_string());
    assert!(!carol_mentioned, "carol is no member: {mentions:?}");
    assert_eq!(mentions.len(), 3, "{mentions:?}");
}

#[tokio::test]
async fn mention_matches_case_insensitively() {
    let server = TestServer::start().await;
    let (alice, bob, room) = room_with_bob(&server, "general").await;

    let message = alice.send(room, "thanks @BOB").await;

    let expected = json!([{"kind": "user", "user_id": bob.id.to_string(), "username": "bob"}]);
    assert_eq!(message["mentions"], expected);
}

#[tokio::test]
async fn mention_in_code_is_ignored() {
    let server = TestServer::start().await;
    let (alice, _bob, room) = room_with_bob(&server, "general").await;

    let message = alice.send(room, "`@bob` and bob@example.com").await;

    assert_eq!(message["mentions"], json!([]));
}

// --- Idempotent retries ---

#[tokio::test]
async fn retry_returns_first_message() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;
    let request = json!({"body": "once", "client_id": "retry-1"});

    let first = post_message(&alice, room, request.clone()).await;
    let second = post_message(&alice, room, request).await;

    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    assert_eq!(second.status, StatusCode::OK, "{}", second.body);
    assert_eq!(second.body["id"], first.body["id"]);
    assert_eq!(second.body["seq"], first.body["seq"]);
    let page = history(&alice, room, "").await;
    assert_eq!(page_messages(&page).len(), 1, "{}", page.body);
}

#[tokio::test]
async fn concurrent_retries_post_once() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;
    let request = json!({"body": "racing", "client_id": "concurrent-retry"});

    let attempts = (0..10).map(|_| post_message(&alice, room, request.clone()));
    let answers = join_all(attempts).await;

    let created = answers
        .iter()
        .filter(|answer| answer.status == StatusCode::CREATED)
        .count();
    let repeated = answers
        .iter()
        .filter(|answer| answer.status == StatusCode::OK)
        .count();
    assert_eq!(created, 1, "exactly one attempt creates the message");
    assert_eq!(repeated, 9, "the other attempts return it");
    let ids: HashSet<&Value> = answers.iter().map(|answer| &answer.body["id"]).collect();
    assert_eq!(ids.len(), 1, "all attempts return one id: {ids:?}");
    let page = history(&alice, room, "").await;
    assert_eq!(page_messages(&page).len(), 1, "{}", page.body);
}

#[tokio::test]
async fn client_id_in_other_room_conflicts() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let first_room = alice.create_public_room("first").await;
    let second_room = alice.create_public_room("second").await;
    let request = json!({"body": "hi", "client_id": "shared-id"});

    let first = post_message(&alice, first_room, request.clone()).await;
    let second = post_message(&alice, second_room, request).await;

    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    assert_eq!(second.status, StatusCode::CONFLICT, "{}", second.body);
    assert_eq!(second.code(), "client_id_reused");
    let page = history(&alice, second_room, "").await;
    assert_eq!(page_messages(&page).len(), 0, "{}", page.body);
}

#[tokio::test]
async fn client_id_reused_with_other_body() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;

    let first = post_message(&alice, room, json!({"body": "hi", "client_id": "once"})).await;
    let retry = post_message(&alice, room, json!({"body": "hi", "client_id": "once"})).await;
    let other = post_message(&alice, room, json!({"body": "bye", "client_id": "once"})).await;

    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    assert_eq!(retry.status, StatusCode::OK, "{}", retry.body);
    assert_eq!(retry.body["id"], first.body["id"]);
    assert_eq!(other.status, StatusCode::CONFLICT, "{}", other.body);
    assert_eq!(other.code(), "client_id_reused");
    let page = history(&alice, room, "").await;
    assert_eq!(page_messages(&page).len(), 1, "{}", page.body);
}

#[tokio::test]
async fn client_id_is_per_author() {
    let server = TestServer::start().await;
    let (alice, bob, room) = room_with_bob(&server, "general").await;
    let request = json!({"body": "hi", "client_id": "common-id"});

    let from_alice = post_message(&alice, room, request.clone()).await;
    let from_bob = post_message(&bob, room, request).await;

    assert_eq!(
        from_alice.status,
        StatusCode::CREATED,
        "{}",
        from_alice.body
    );
    assert_eq!(from_bob.status, StatusCode::CREATED, "{}", from_bob.body);
    assert_ne!(from_alice.body["id"], from_bob.body["id"]);
}

#[tokio::test]
async fn invalid_client_id_is_rejected() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;
    let too_long = "a".repeat(65);
    let client_ids = ["", "has space", too_long.as_str(), "ünïcode", "semi;colon"];

    for client_id in client_ids {
        let posted =
            post_message(&alice, room, json!({"body": "hi", "client_id": client_id})).await;
        assert_eq!(
            posted.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "client_id {client_id:?}: {}",
            posted.body
        );
        assert_eq!(
            posted.code(),
            "invalid_client_id",
            "client_id {client_id:?}"
        );
    }
    let page = history(&alice, room, "").await;
    assert_eq!(page_messages(&page).len(), 0, "{}", page.body);
}

#[tokio::test]
async fn client_id_of_64_chars_is_accepted() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;

    let request = json!({"body": "hi", "client_id": "a".repeat(64)});
    let posted = post_message(&alice, room, request).await;

    assert_eq!(posted.status, StatusCode::CREATED, "{}", posted.body);
}

// --- Body limits ---

#[tokio::test]
async fn empty_body_is_rejected() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;

    for body in ["", "   ", " \n\t "] {
        let posted = try_send(&alice, room, body).await;
        assert_eq!(
            posted.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "body {body:?}: {}",
            posted.body
        );
        assert_eq!(posted.code(), "invalid_body", "body {body:?}");
    }
}

#[tokio::test]
async fn body_over_limit_is_rejected() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;

    let posted = try_send(&alice, room, &"x".repeat(10_001)).await;

    assert_eq!(
        posted.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        posted.body
    );
    assert_eq!(posted.code(), "invalid_body");
}

#[tokio::test]
async fn body_at_limit_is_accepted() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;

    let posted = try_send(&alice, room, &"x".repeat(10_000)).await;

    assert_eq!(posted.status, StatusCode::CREATED, "{}", posted.body);
    assert_eq!(posted.body["body"].as_str().unwrap().len(), 10_000);
}

#[tokio::test]
async fn body_limit_counts_characters() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;

    // 10 000 characters of two bytes each: within the limit, which counts characters.
    let at_limit = try_send(&alice, room, &"é".repeat(10_000)).await;
    let over_limit = try_send(&alice, room, &"é".repeat(10_001)).await;

    assert_eq!(at_limit.status, StatusCode::CREATED, "{}", at_limit.body);
    assert_eq!(over_limit.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(over_limit.code(), "invalid_body");
}

// --- Replies and threads ---

#[tokio::test]
async fn reply_carries_parent_preview() {
    let server = TestServer::start().await;
    let (alice, bob, room) = room_with_bob(&server, "general").await;
    let parent = alice.send(room, "what about **lunch**?").await;

    let request = json!({
        "body": "pizza",
        "client_id": Uuid::new_v4().to_string(),
        "reply_to": parent["id"],
    });
    let reply = post_message(&bob, room, request).await;

    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let preview = &reply.body["reply_to"];
    assert_eq!(preview["id"], parent["id"]);
    assert_eq!(preview["author"]["id"], alice.id.to_string());
    assert_eq!(preview["author"]["username"], "alice");
    assert_eq!(preview["excerpt"], "what about lunch?");
    assert_eq!(preview["deleted"], false);
}

#[tokio::test]
async fn reply_to_other_room_is_rejected() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let first_room = alice.create_public_room("first").await;
    let second_room = alice.create_public_room("second").await;
    let parent = alice.send(first_room, "elsewhere").await;

    let request = json!({
        "body": "reply",
        "client_id": Uuid::new_v4().to_string(),
        "reply_to": parent["id"],
    });
    let reply = post_message(&alice, second_room, request).await;

    assert_eq!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        reply.body
    );
    assert_eq!(reply.code(), "invalid_reply_to");
}

#[tokio::test]
async fn reply_to_unknown_message_is_rejected() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;

    let request = json!({
        "body": "reply",
        "client_id": Uuid::new_v4().to_string(),
        "reply_to": Uuid::new_v4(),
    });
    let reply = post_message(&alice, room, request).await;

    assert_eq!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        reply.body
    );
    assert_eq!(reply.code(), "invalid_reply_to");
}

#[tokio::test]
async fn thread_lists_replies_oldest_first() {
    let server = TestServer::start().await;
    let (alice, bob, room) = room_with_bob(&server, "general").await;
    let parent = alice.send(room, "parent").await;
    alice.send(room, "not a reply").await;
    let mut reply_ids = Vec::new();
    for (author, body) in [(&bob, "one"), (&alice, "two"), (&bob, "three")] {
        let request = json!({
            "body": body,
            "client_id": Uuid::new_v4().to_string(),
            "reply_to": parent["id"],
        });
        let reply = post_message(author, room, request).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        reply_ids.push(reply.body["id"].clone());
    }

    let thread = alice
        .get(&format!("/api/messages/{}/thread", message_id(&parent)))
        .await;

    assert_eq!(thread.status, StatusCode::OK, "{}", thread.body);
    let listed: Vec<Value> = page_messages(&thread)
        .iter()
        .map(|message| message["id"].clone())
        .collect();
    assert_eq!(listed, reply_ids);
    let parent_now = alice
        .get(&format!("/api/messages/{}", message_id(&parent)))
        .await;
    assert_eq!(parent_now.body["reply_count"], 3, "{}", parent_now.body);
}

#[tokio::test]
async fn thread_limit_is_validated() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;
    let parent = alice.send(room, "parent").await;

    let thread = alice
        .get(&format!(
            "/api/messages/{}/thread?limit=0",
            message_id(&parent)
        ))
        .await;

    assert_eq!(thread.status, StatusCode::BAD_REQUEST, "{}", thread.body);
    assert_eq!(thread.code(), "invalid_limit");
}

#[tokio::test]
async fn deleted_reply_leaves_reply_count() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;
    let parent = alice.send(room, "parent").await;
    let request = json!({
        "body": "reply",
        "client_id": Uuid::new_v4().to_string(),
        "reply_to": parent["id"],
    });
    let reply = post_message(&alice, room, request).await;

    let deleted = alice
        .delete(&format!("/api/messages/{}", message_id(&reply.body)))
        .await;

    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
    let parent_now = alice
        .get(&format!("/api/messages/{}", message_id(&parent)))
        .await;
    assert_eq!(parent_now.body["reply_count"], 0, "{}", parent_now.body);
}

// --- History ---

#[tokio::test]
async fn history_seqs_have_no_gaps() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;
    for index in 1..=12 {
        alice.send(room, &format!("message {index}")).await;
    }

    let page = history(&alice, room, "").await;

    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let expected: Vec<i64> = (1..=12).rev().collect();
    assert_eq!(seqs(&page_messages(&page)), expected, "newest first");
    assert_eq!(page_messages(&page)[0]["body"], "message 12");
}

#[tokio::test]
async fn history_seqs_are_per_room() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let first_room = alice.create_public_room("first").await;
    let second_room = alice.create_public_room("second").await;

    alice.send(first_room, "a").await;
    alice.send(first_room, "b").await;
    let other = alice.send(second_room, "c").await;

    assert_eq!(other["seq"], 1);
}

#[tokio::test]
async fn history_limit_returns_newest() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;
    for index in 1..=10 {
        alice.send(room, &format!("message {index}")).await;
    }

    let page = history(&alice, room, "?limit=3").await;

    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(seqs(&page_messages(&page)), [10, 9, 8]);
}

#[tokio::test]
async fn history_default_page_is_fifty() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;
    for index in 1..=55 {
        alice.send(room, &format!("message {index}")).await;
    }

    let page = history(&alice, room, "").await;

    let messages = page_messages(&page);
    assert_eq!(messages.len(), 50);
    assert_eq!(seqs(&messages)[0], 55);
    assert_eq!(seqs(&messages)[49], 6);
}

#[tokio::test]
async fn history_before_is_newest_first() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;
    for index in 1..=10 {
        alice.send(room, &format!("message {index}")).await;
    }

    let page = history(&alice, room, "?before=6&limit=3").await;

    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(seqs(&page_messages(&page)), [5, 4, 3]);
}

#[tokio::test]
async fn history_after_is_oldest_first() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;
    for index in 1..=10 {
        alice.send(room, &format!("message {index}")).await;
    }

    let page = history(&alice, room, "?after=6&limit=3").await;

    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(seqs(&page_messages(&page)), [7, 8, 9]);
}

#[tokio::test]
async fn history_after_zero_starts_at_first() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;
    for index in 1..=4 {
        alice.send(room, &format!("message {index}")).await;
    }

    let page = history(&alice, room, "?after=0").await;

    assert_eq!(seqs(&page_messages(&page)), [1, 2, 3, 4]);
}

#[tokio::test]
async fn history_before_one_is_empty() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;
    alice.send(room, "only").await;

    let page = history(&alice, room, "?before=1").await;

    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(page_messages(&page).len(), 0, "{}", page.body);
}

#[tokio::test]
async fn history_rejects_before_and_after() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;

    let page = history(&alice, room, "?before=5&after=1").await;

    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
    assert_eq!(page.code(), "invalid_query");
}

#[tokio::test]
async fn history_rejects_bad_limits() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;

    for limit in ["0", "201"] {
        let page = history(&alice, room, &format!("?limit={limit}")).await;
        assert_eq!(
            page.status,
            StatusCode::BAD_REQUEST,
            "limit {limit}: {}",
            page.body
        );
        assert_eq!(page.code(), "invalid_limit", "limit {limit}");
    }
    let page = history(&alice, room, "?limit=200").await;
    assert_eq!(page.status, StatusCode::OK, "limit 200: {}", page.body);
}

#[tokio::test]
async fn history_rejects_unparsable_query() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;

    for query in ["?limit=abc", "?limit=-1", "?before=x"] {
        let page = history(&alice, room, query).await;
        assert_eq!(
            page.status,
            StatusCode::BAD_REQUEST,
            "{query}: {}",
            page.body
        );
        assert_eq!(page.code(), "invalid_query", "{query}");
    }
}

#[tokio::test]
async fn pagination_walks_every_message_once() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;
    for index in 1..=23 {
        alice.send(room, &format!("message {index}")).await;
    }

    let mut backwards = Vec::new();
    let mut query = "?limit=5".to_string();
    loop {
        let page = history(&alice, room, &query).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let page_seqs = seqs(&page_messages(&page));
        let Some(oldest) = page_seqs.last() else {
            break;
        };
        query = format!("?limit=5&before={oldest}");
        backwards.extend(page_seqs);
    }
    let mut forwards = Vec::new();
    let mut query = "?limit=5&after=0".to_string();
    loop {
        let page = history(&alice, room, &query).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let page_seqs = seqs(&page_messages(&page));
        let Some(newest) = page_seqs.last() else {
            break;
        };
        query = format!("?limit=5&after={newest}");
        forwards.extend(page_seqs);
    }

    let expected_backwards: Vec<i64> = (1..=23).rev().collect();
    let expected_forwards: Vec<i64> = (1..=23).collect();
    assert_eq!(backwards, expected_backwards);
    assert_eq!(forwards, expected_forwards);
}

#[tokio::test]
async fn concurrent_posts_get_contiguous_seqs() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let carol = server.register("carol").await;
    let room = alice.create_public_room("general").await;
    bob.join("general").await;
    carol.join("general").await;

    // Each user posts 20 messages one after another, and the three users run at once.
    let posters = [&alice, &bob, &carol].map(|user| async move {
        let mut own_seqs = Vec::new();
        for index in 0..20 {
            let posted = try_send(user, room, &format!("{} {index}", user.username)).await;
            assert_eq!(posted.status, StatusCode::CREATED, "{}", posted.body);
            own_seqs.push(posted.body["seq"].as_i64().unwrap());
        }
        own_seqs
    });
    let per_user = join_all(posters).await;

    for own_seqs in &per_user {
        let ascending = own_seqs.windows(2).all(|pair| pair[0] < pair[1]);
        assert!(ascending, "one user's posts keep their order: {own_seqs:?}");
    }
    let mut all_seqs: Vec<i64> = per_user.into_iter().flatten().collect();
    all_seqs.sort_unstable();
    let expected: Vec<i64> = (1..=60).collect();
    assert_eq!(all_seqs, expected, "seqs are unique and contiguous");
    let page = history(&alice, room, "?limit=200").await;
    let listed = seqs(&page_messages(&page));
    let expected_listed: Vec<i64> = (1..=60).rev().collect();
    assert_eq!(listed, expected_listed);
}

#[tokio::test]
async fn concurrent_single_posts_get_contiguous_seqs() {
    let server = TestServer::start().await;
    let (alice, bob, room) = room_with_bob(&server, "general").await;

    let posts = (0..40).map(|index| {
        let author = if index % 2 == 0 { &alice } else { &bob };
        try_send(author, room, "burst")
    });
    let answers = join_all(posts).await;

    let mut all_seqs = Vec::new();
    for posted in &answers {
        assert_eq!(posted.status, StatusCode::CREATED, "{}", posted.body);
        all_seqs.push(posted.body["seq"].as_i64().unwrap());
    }
    all_seqs.sort_unstable();
    let expected: Vec<i64> = (1..=40).collect();
    assert_eq!(all_seqs, expected);
}

// --- Edits ---

#[tokio::test]
async fn edit_updates_body_and_html() {
    let server = TestServer::start().await;
    let (alice, bob, room) = room_with_bob(&server, "general").await;
    let message = alice.send(room, "first draft").await;
    let path = format!("/api/messages/{}", message_id(&message));

    let edited = alice.patch(&path, json!({"body": "**final** @bob"})).await;

    assert_eq!(edited.status, StatusCode::OK, "{}", edited.body);
    assert_eq!(edited.body["body"], "**final** @bob");
    let html = edited.body["html"].as_str().unwrap();
    assert!(html.contains("<strong>final</strong>"), "{html}");
    assert!(edited.body["edited_at"].is_string(), "{}", edited.body);
    assert_eq!(edited.body["seq"], message["seq"]);
    let expected = json!([{"kind": "user", "user_id": bob.id.to_string(), "username": "bob"}]);
    assert_eq!(edited.body["mentions"], expected);
    let fetched = alice.get(&path).await;
    assert_eq!(fetched.body["body"], "**final** @bob");
    assert!(fetched.body["edited_at"].is_string(), "{}", fetched.body);
}

#[tokio::test]
async fn edit_by_other_user_is_forbidden() {
    let server = TestServer::start().await;
    let (alice, bob, room) = room_with_bob(&server, "general").await;
    let message = alice.send(room, "mine").await;
    let path = format!("/api/messages/{}", message_id(&message));

    let edited = bob.patch(&path, json!({"body": "yours now"})).await;

    assert_eq!(edited.status, StatusCode::FORBIDDEN, "{}", edited.body);
    assert_eq!(edited.code(), "not_author");
    let fetched = alice.get(&path).await;
    assert_eq!(fetched.body["body"], "mine");
}

#[tokio::test]
async fn edit_by_room_owner_is_forbidden() {
    let server = TestServer::start().await;
    let (alice, bob, room) = room_with_bob(&server, "general").await;
    let message = bob.send(room, "bob's words").await;

    let edited = alice
        .patch(
            &format!("/api/messages/{}", message_id(&message)),
            json!({"body": "owner's words"}),
        )
        .await;

    assert_eq!(edited.status, StatusCode::FORBIDDEN, "{}", edited.body);
    assert_eq!(edited.code(), "not_author");
}

#[tokio::test]
async fn edit_of_deleted_message_conflicts() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;
    let message = alice.send(room, "soon gone").await;
    let path = format!("/api/messages/{}", message_id(&message));
    alice.delete(&path).await;

    let edited = alice.patch(&path, json!({"body": "back again"})).await;

    assert_eq!(edited.status, StatusCode::CONFLICT, "{}", edited.body);
    assert_eq!(edited.code(), "message_deleted");
}

#[tokio::test]
async fn edit_rejects_empty_body() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;
    let message = alice.send(room, "keep me").await;
    let path = format!("/api/messages/{}", message_id(&message));

    let empty = alice.patch(&path, json!({"body": "  "})).await;
    let too_long = alice
        .patch(&path, json!({"body": "x".repeat(10_001)}))
        .await;

    assert_eq!(
        empty.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        empty.body
    );
    assert_eq!(empty.code(), "invalid_body");
    assert_eq!(too_long.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(too_long.code(), "invalid_body");
    let fetched = alice.get(&path).await;
    assert_eq!(fetched.body["body"], "keep me");
    assert_eq!(fetched.body["edited_at"], Value::Null);
}

#[tokio::test]
async fn edit_of_unknown_message_is_not_found() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;

    let edited = alice
        .patch(
            &format!("/api/messages/{}", Uuid::new_v4()),
            json!({"body": "x"}),
        )
        .await;

    assert_eq!(edited.status, StatusCode::NOT_FOUND, "{}", edited.body);
    assert_eq!(edited.code(), "message_not_found");
}

/// Fails the test when any event stored for `user` still contains `text`.
async fn assert_events_lack(server: &TestServer, user: &TestUser, text: &str) {
    let events = server
        .state
        .store
        .events_since(user.id, 0, 1000)
        .await
        .unwrap();
    assert!(!events.is_empty(), "{} has events", user.username);
    let leaking: Vec<String> = events
        .iter()
        .map(|event| serde_json::to_value(event).unwrap())
        .filter(|event| event.to_string().contains(text))
        .map(|event| format!("{} {}: {}", event["seq"], event["type"], event["data"]))
        .collect();
    assert!(
        leaking.is_empty(),
        "{}'s stored events still contain {text:?}: {leaking:#?}",
        user.username
    );
}

#[tokio::test]
async fn edit_scrubs_stored_events() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;
    let message = alice.send(room, "the password is hunter2secret").await;

    alice
        .patch(
            &format!("/api/messages/{}", message_id(&message)),
            json!({"body": "the password is redacted"}),
        )
        .await;

    assert_events_lack(&server, &alice, "hunter2secret").await;
}

#[tokio::test]
async fn edit_scrubs_reply_events() {
    let server = TestServer::start().await;
    let (alice, bob, room) = room_with_bob(&server, "general").await;
    let parent = alice.send(room, "the password is hunter2secret").await;
    let request = json!({
        "body": "got it",
        "client_id": Uuid::new_v4().to_string(),
        "reply_to": parent["id"],
    });
    let reply = post_message(&bob, room, request).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);

    alice
        .patch(
            &format!("/api/messages/{}", message_id(&parent)),
            json!({"body": "the password is redacted"}),
        )
        .await;

    let fetched = bob
        .get(&format!("/api/messages/{}", message_id(&reply.body)))
        .await;
    assert_eq!(
        fetched.body["reply_to"]["excerpt"],
        "the password is redacted"
    );
    // A reply's event quotes the start of its parent. Deleting the parent rewrites
    // that event, so an edit should too.
    assert_events_lack(&server, &alice, "hunter2secret").await;
    assert_events_lack(&server, &bob, "hunter2secret").await;
}

#[tokio::test]
async fn edit_removes_old_text_from_search() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;
    let message = alice.send(room, "originalword here").await;

    alice
        .patch(
            &format!("/api/messages/{}", message_id(&message)),
            json!({"body": "replacementword here"}),
        )
        .await;

    let old = search(&alice, &[("q", "originalword")]).await;
    let new = search(&alice, &[("q", "replacementword")]).await;
    assert_eq!(hit_ids(&old), Vec::<Uuid>::new());
    assert_eq!(hit_ids(&new), [message_id(&message)]);
}

// --- Deletes ---

#[tokio::test]
async fn delete_leaves_tombstone() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;
    let message = alice.send(room, "regrettable").await;
    let path = format!("/api/messages/{}", message_id(&message));

    let deleted = alice.delete(&path).await;

    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
    let fetched = alice.get(&path).await;
    assert_eq!(fetched.status, StatusCode::OK, "{}", fetched.body);
    assert_eq!(fetched.body["deleted"], true);
    assert_eq!(fetched.body["body"], "");
    assert_eq!(fetched.body["html"], "");
    assert_eq!(fetched.body["seq"], message["seq"]);
    let page = history(&alice, room, "").await;
    let listed = page_messages(&page);
    assert_eq!(listed.len(), 1, "the tombstone stays in history");
    assert_eq!(listed[0]["deleted"], true);
    assert_eq!(listed[0]["body"], "");
}

#[tokio::test]
async fn delete_twice_succeeds() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;
    let message = alice.send(room, "gone").await;
    let path = format!("/api/messages/{}", message_id(&message));

    let first = alice.delete(&path).await;
    let second = alice.delete(&path).await;

    assert_eq!(first.status, StatusCode::NO_CONTENT);
    assert_eq!(second.status, StatusCode::NO_CONTENT, "{}", second.body);
}

#[tokio::test]
async fn owner_deletes_others_message() {
    let server = TestServer::start().await;
    let (alice, bob, room) = room_with_bob(&server, "general").await;
    let message = bob.send(room, "spam").await;
    let path = format!("/api/messages/{}", message_id(&message));

    let deleted = alice.delete(&path).await;

    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
    let fetched = bob.get(&path).await;
    assert_eq!(fetched.body["deleted"], true);
}

#[tokio::test]
async fn moderator_deletes_others_message() {
    let server = TestServer::start().await;
    let (alice, bob, room) = room_with_bob(&server, "general").await;
    let carol = server.register("carol").await;
    carol.join("general").await;
    let promoted = alice
        .put(
            &format!("/api/rooms/{room}/members/{}/role", bob.id),
            json!({"role": "moderator"}),
        )
        .await;
    assert_eq!(promoted.status, StatusCode::NO_CONTENT, "{}", promoted.body);
    let message = carol.send(room, "spam").await;

    let deleted = bob
        .delete(&format!("/api/messages/{}", message_id(&message)))
        .await;

    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
}

#[tokio::test]
async fn member_cannot_delete_others_message() {
    let server = TestServer::start().await;
    let (alice, bob, room) = room_with_bob(&server, "general").await;
    let message = alice.send(room, "owner's words").await;
    let path = format!("/api/messages/{}", message_id(&message));

    let deleted = bob.delete(&path).await;

    assert_eq!(deleted.status, StatusCode::FORBIDDEN, "{}", deleted.body);
    assert_eq!(deleted.code(), "not_author");
    let fetched = alice.get(&path).await;
    assert_eq!(fetched.body["deleted"], false);
    assert_eq!(fetched.body["body"], "owner's words");
}

#[tokio::test]
async fn delete_removes_text_from_search() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;
    let message = alice.send(room, "the secretword is swordfish").await;
    let found = search(&alice, &[("q", "secretword")]).await;
    assert_eq!(
        hit_ids(&found),
        [message_id(&message)],
        "found before deleting"
    );

    alice
        .delete(&format!("/api/messages/{}", message_id(&message)))
        .await;

    let results = search(&alice, &[("q", "secretword")]).await;
    assert_eq!(results.status, StatusCode::OK, "{}", results.body);
    assert_eq!(hit_ids(&results), Vec::<Uuid>::new());
}

#[tokio::test]
async fn delete_scrubs_stored_events() {
    let server = TestServer::start().await;
    let (alice, bob, room) = room_with_bob(&server, "general").await;
    let secret = "xylophonesecret";
    let message = alice.send(room, &format!("the code is {secret}")).await;
    let request = json!({
        "body": "noted",
        "client_id": Uuid::new_v4().to_string(),
        "reply_to": message["id"],
    });
    let reply = post_message(&bob, room, request).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    alice
        .patch(
            &format!("/api/messages/{}", message_id(&message)),
            json!({"body": format!("edited, still {secret}")}),
        )
        .await;
    alice
        .put(
            &format!("/api/messages/{}/pin", message_id(&message)),
            json!({}),
        )
        .await;
    bob.put(&reaction_path(message_id(&message), "🎉"), json!({}))
        .await;

    let deleted = alice
        .delete(&format!("/api/messages/{}", message_id(&message)))
        .await;

    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
    assert_events_lack(&server, &alice, secret).await;
    assert_events_lack(&server, &bob, secret).await;
}

#[tokio::test]
async fn reply_to_deleted_shows_tombstone() {
    let server = TestServer::start().await;
    let (alice, bob, room) = room_with_bob(&server, "general").await;
    let parent = alice.send(room, "soon gone").await;
    let request = json!({
        "body": "reply",
        "client_id": Uuid::new_v4().to_string(),
        "reply_to": parent["id"],
    });
    let reply = post_message(&bob, room, request).await;

    alice
        .delete(&format!("/api/messages/{}", message_id(&parent)))
        .await;

    let fetched = bob
        .get(&format!("/api/messages/{}", message_id(&reply.body)))
        .await;
    assert_eq!(
        fetched.body["reply_to"]["deleted"], true,
        "{}",
        fetched.body
    );
    assert_eq!(fetched.body["reply_to"]["excerpt"], "", "{}", fetched.body);
}

#[tokio::test]
async fn delete_of_unknown_message_is_not_found() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;

    let deleted = alice
        .delete(&format!("/api/messages/{}", Uuid::new_v4()))
        .await;

    assert_eq!(deleted.status, StatusCode::NOT_FOUND, "{}", deleted.body);
    assert_eq!(deleted.code(), "message_not_found");
}

#[tokio::test]
async fn malformed_message_id_is_bad_request() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;

    let fetched = alice.get("/api/messages/not-a-uuid").await;

    assert_eq!(fetched.status, StatusCode::BAD_REQUEST, "{}", fetched.body);
    assert_eq!(fetched.code(), "invalid_path");
}

// --- Reactions ---

#[tokio::test]
async fn reaction_appears_on_message() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;
    let message = alice.send(room, "ship it").await;
    let id = message_id(&message);

    let reacted = alice.put(&reaction_path(id, "🎉"), json!({})).await;

    assert_eq!(reacted.status, StatusCode::NO_CONTENT, "{}", reacted.body);
    let fetched = alice.get(&format!("/api/messages/{id}")).await;
    let expected = json!([{"emoji": "🎉", "count": 1, "user_ids": [alice.id.to_string()]}]);
    assert_eq!(fetched.body["reactions"], expected);
}

#[tokio::test]
async fn reaction_shortcodes_map_to_emoji() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;

    for written in ["tada", ":tada:", "🎉"] {
        let message = alice.send(room, "ship it").await;
        let id = message_id(&message);
        let reacted = alice.put(&reaction_path(id, written), json!({})).await;
        assert_eq!(
            reacted.status,
            StatusCode::NO_CONTENT,
            "{written}: {}",
            reacted.body
        );
        let fetched = alice.get(&format!("/api/messages/{id}")).await;
        assert_eq!(fetched.body["reactions"][0]["emoji"], "🎉", "{written}");
    }
}

#[tokio::test]
async fn shortcode_and_emoji_are_one_reaction() {
    let server = TestServer::start().await;
    let (alice, bob, room) = room_with_bob(&server, "general").await;
    let message = alice.send(room, "ship it").await;
    let id = message_id(&message);

    alice.put(&reaction_path(id, "tada"), json!({})).await;
    bob.put(&reaction_path(id, "🎉"), json!({})).await;

    let fetched = alice.get(&format!("/api/messages/{id}")).await;
    let reactions = fetched.body["reactions"].as_array().unwrap();
    assert_eq!(reactions.len(), 1, "{reactions:?}");
    assert_eq!(reactions[0]["emoji"], "🎉");
    assert_eq!(reactions[0]["count"], 2);
    let user_ids = reactions[0]["user_ids"].as_array().unwrap();
    assert!(
        user_ids.contains(&json!(alice.id.to_string())),
        "{user_ids:?}"
    );
    assert!(
        user_ids.contains(&json!(bob.id.to_string())),
        "{user_ids:?}"
    );
}

#[tokio::test]
async fn reaction_put_is_idempotent() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;
    let message = alice.send(room, "ship it").await;
    let id = message_id(&message);

    let first = alice.put(&reaction_path(id, "🎉"), json!({})).await;
    let second = alice.put(&reaction_path(id, ":tada:"), json!({})).await;

    assert_eq!(first.status, StatusCode::NO_CONTENT);
    assert_eq!(second.status, StatusCode::NO_CONTENT, "{}", second.body);
    let fetched = alice.get(&format!("/api/messages/{id}")).await;
    assert_eq!(fetched.body["reactions"][0]["count"], 1, "{}", fetched.body);
}

#[tokio::test]
async fn reaction_delete_removes_it() {
    let server = TestServer::start().await;
    let (alice, bob, room) = room_with_bob(&server, "general").await;
    let message = alice.send(room, "ship it").await;
    let id = message_id(&message);
    alice.put(&reaction_path(id, "🎉"), json!({})).await;
    bob.put(&reaction_path(id, "🎉"), json!({})).await;

    let removed = alice.delete(&reaction_path(id, "🎉")).await;

    assert_eq!(removed.status, StatusCode::NO_CONTENT, "{}", removed.body);
    let fetched = alice.get(&format!("/api/messages/{id}")).await;
    let expected = json!([{"emoji": "🎉", "count": 1, "user_ids": [bob.id.to_string()]}]);
    assert_eq!(fetched.body["reactions"], expected);

    let removed_again = bob.delete(&reaction_path(id, "tada")).await;
    let absent = alice.delete(&reaction_path(id, "🎉")).await;
    assert_eq!(removed_again.status, StatusCode::NO_CONTENT);
    assert_eq!(
        absent.status,
        StatusCode::NO_CONTENT,
        "removing twice succeeds"
    );
    let fetched = alice.get(&format!("/api/messages/{id}")).await;
    assert_eq!(fetched.body["reactions"], json!([]));
}

#[tokio::test]
async fn invalid_emoji_is_rejected() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;
    let message = alice.send(room, "ship it").await;
    let id = message_id(&message);

    for written in ["notanemoji", ":notanemoji:", "xyzzy", "<script>", "🎉🎉"] {
        let reacted = alice.put(&reaction_path(id, written), json!({})).await;
        assert_eq!(
            reacted.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{written:?}: {}",
            reacted.body
        );
        assert_eq!(reacted.code(), "invalid_emoji", "{written:?}");
    }
    let fetched = alice.get(&format!("/api/messages/{id}")).await;
    assert_eq!(fetched.body["reactions"], json!([]));
}

#[tokio::test]
async fn reaction_on_deleted_message_conflicts() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;
    let message = alice.send(room, "gone").await;
    let id = message_id(&message);
    alice.put(&reaction_path(id, "🎉"), json!({})).await;
    alice.delete(&format!("/api/messages/{id}")).await;

    let reacted = alice.put(&reaction_path(id, "👍"), json!({})).await;

    assert_eq!(reacted.status, StatusCode::CONFLICT, "{}", reacted.body);
    assert_eq!(reacted.code(), "message_deleted");
    let fetched = alice.get(&format!("/api/messages/{id}")).await;
    assert_eq!(
        fetched.body["reactions"],
        json!([]),
        "deleting drops reactions"
    );
}

// --- Pins ---

#[tokio::test]
async fn owner_pins_and_unpins() {
    let server = TestServer::start().await;
    let (alice, bob, room) = room_with_bob(&server, "general").await;
    let message = bob.send(room, "read this first").await;
    alice.send(room, "unpinned").await;
    let id = message_id(&message);

    let pinned = alice
        .put(&format!("/api/messages/{id}/pin"), json!({}))
        .await;

    assert_eq!(pinned.status, StatusCode::OK, "{}", pinned.body);
    assert_eq!(pinned.body["pinned"]["by"], alice.id.to_string());
    assert!(pinned.body["pinned"]["at"].is_string(), "{}", pinned.body);
    let pins = bob.get(&format!("/api/rooms/{room}/pins")).await;
    assert_eq!(pins.status, StatusCode::OK, "{}", pins.body);
    let pinned_ids: Vec<Uuid> = page_messages(&pins).iter().map(message_id).collect();
    assert_eq!(pinned_ids, [id]);

    let unpinned = alice.delete(&format!("/api/messages/{id}/pin")).await;

    assert_eq!(unpinned.status, StatusCode::OK, "{}", unpinned.body);
    assert_eq!(unpinned.body["pinned"], Value::Null);
    let pins = bob.get(&format!("/api/rooms/{room}/pins")).await;
    assert_eq!(page_messages(&pins).len(), 0, "{}", pins.body);
}

#[tokio::test]
async fn moderator_can_pin() {
    let server = TestServer::start().await;
    let (alice, bob, room) = room_with_bob(&server, "general").await;
    alice
        .put(
            &format!("/api/rooms/{room}/members/{}/role", bob.id),
            json!({"role": "moderator"}),
        )
        .await;
    let message = alice.send(room, "pin me").await;

    let pinned = bob
        .put(
            &format!("/api/messages/{}/pin", message_id(&message)),
            json!({}),
        )
        .await;

    assert_eq!(pinned.status, StatusCode::OK, "{}", pinned.body);
    assert_eq!(pinned.body["pinned"]["by"], bob.id.to_string());
}

#[tokio::test]
async fn member_cannot_pin() {
    let server = TestServer::start().await;
    let (alice, bob, room) = room_with_bob(&server, "general").await;
    let message = bob.send(room, "my own message").await;
    let id = message_id(&message);

    let pinned = bob.put(&format!("/api/messages/{id}/pin"), json!({})).await;

    assert_eq!(pinned.status, StatusCode::FORBIDDEN, "{}", pinned.body);
    assert_eq!(pinned.code(), "insufficient_role");
    let pins = alice.get(&format!("/api/rooms/{room}/pins")).await;
    assert_eq!(page_messages(&pins).len(), 0, "{}", pins.body);
}

#[tokio::test]
async fn member_cannot_unpin() {
    let server = TestServer::start().await;
    let (alice, bob, room) = room_with_bob(&server, "general").await;
    let message = alice.send(room, "pinned").await;
    let id = message_id(&message);
    alice
        .put(&format!("/api/messages/{id}/pin"), json!({}))
        .await;

    let unpinned = bob.delete(&format!("/api/messages/{id}/pin")).await;

    assert_eq!(unpinned.status, StatusCode::FORBIDDEN, "{}", unpinned.body);
    assert_eq!(unpinned.code(), "insufficient_role");
    let pins = alice.get(&format!("/api/rooms/{room}/pins")).await;
    assert_eq!(page_messages(&pins).len(), 1, "{}", pins.body);
}

#[tokio::test]
async fn pins_list_newest_first() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;
    let older = alice.send(room, "older pin").await;
    let newer = alice.send(room, "newer pin").await;

    alice
        .put(
            &format!("/api/messages/{}/pin", message_id(&older)),
            json!({}),
        )
        .await;
    // Pin times are stored in milliseconds, so a short wait gives the second pin a
    // later time.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    alice
        .put(
            &format!("/api/messages/{}/pin", message_id(&newer)),
            json!({}),
        )
        .await;

    let pins = alice.get(&format!("/api/rooms/{room}/pins")).await;
    let pinned_ids: Vec<Uuid> = page_messages(&pins).iter().map(message_id).collect();
    assert_eq!(pinned_ids, [message_id(&newer), message_id(&older)]);
}

#[tokio::test]
async fn delete_unpins_message() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;
    let message = alice.send(room, "pinned then deleted").await;
    let id = message_id(&message);
    alice
        .put(&format!("/api/messages/{id}/pin"), json!({}))
        .await;

    alice.delete(&format!("/api/messages/{id}")).await;

    let pins = alice.get(&format!("/api/rooms/{room}/pins")).await;
    assert_eq!(page_messages(&pins).len(), 0, "{}", pins.body);
    let pinned = alice
        .put(&format!("/api/messages/{id}/pin"), json!({}))
        .await;
    assert_eq!(pinned.status, StatusCode::CONFLICT, "{}", pinned.body);
    assert_eq!(pinned.code(), "message_deleted");
}

// --- Search ---

#[tokio::test]
async fn search_finds_word_and_prefix() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;
    let message = alice.send(room, "the quick brownfox jumps").await;
    alice.send(room, "something unrelated").await;

    let by_word = search(&alice, &[("q", "quick")]).await;
    let by_prefix = search(&alice, &[("q", "brow")]).await;
    let by_words = search(&alice, &[("q", "quick jum")]).await;
    let by_missing = search(&alice, &[("q", "zebra")]).await;

    assert_eq!(by_word.status, StatusCode::OK, "{}", by_word.body);
    assert_eq!(hit_ids(&by_word), [message_id(&message)]);
    assert_eq!(hit_ids(&by_prefix), [message_id(&message)]);
    assert_eq!(hit_ids(&by_words), [message_id(&message)]);
    assert_eq!(hit_ids(&by_missing), Vec::<Uuid>::new());
    let snippet = by_word.body["hits"][0]["snippet"].as_str().unwrap();
    assert!(snippet.contains("<mark>quick</mark>"), "{snippet}");
}

#[tokio::test]
async fn search_snippet_escapes_html() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;
    alice
        .send(room, "<script>alert(1)</script> findme & <b>")
        .await;

    let results = search(&alice, &[("q", "findme")]).await;

    assert_eq!(hit_ids(&results).len(), 1, "{}", results.body);
    let snippet = results.body["hits"][0]["snippet"].as_str().unwrap();
    assert!(!snippet.contains("<script"), "{snippet}");
    assert!(!snippet.contains("<b>"), "{snippet}");
    assert!(snippet.contains("&lt;script&gt;"), "{snippet}");
    assert!(snippet.contains("&amp;"), "{snippet}");
    assert!(snippet.contains("<mark>findme</mark>"), "{snippet}");
}

#[tokio::test]
async fn search_skips_rooms_of_others() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let carol = server.register("carol").await;
    let secret_room = carol
        .create_room(json!({"name": "secret", "kind": "private"}))
        .await;
    let public_room = carol.create_public_room("lobby").await;
    carol.send(secret_room, "hiddenword in private").await;
    carol.send(public_room, "hiddenword in public").await;
    let own_room = alice.create_public_room("general").await;
    let own = alice.send(own_room, "hiddenword of mine").await;

    let results = search(&alice, &[("q", "hiddenword")]).await;

    assert_eq!(results.status, StatusCode::OK, "{}", results.body);
    assert_eq!(hit_ids(&results), [message_id(&own)]);
    let carol_results = search(&carol, &[("q", "hiddenword")]).await;
    assert_eq!(hit_ids(&carol_results).len(), 2, "{}", carol_results.body);
}

#[tokio::test]
async fn search_filters_by_room() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let first_room = alice.create_public_room("first").await;
    let second_room = alice.create_public_room("second").await;
    let in_first = alice.send(first_room, "roomword one").await;
    alice.send(second_room, "roomword two").await;

    let all = search(&alice, &[("q", "roomword")]).await;
    let first_room_text = first_room.to_string();
    let filtered = search(&alice, &[("q", "roomword"), ("room_id", &first_room_text)]).await;

    assert_eq!(hit_ids(&all).len(), 2, "{}", all.body);
    assert_eq!(filtered.status, StatusCode::OK, "{}", filtered.body);
    assert_eq!(hit_ids(&filtered), [message_id(&in_first)]);
}

#[tokio::test]
async fn search_in_hidden_room_is_not_found() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let carol = server.register("carol").await;
    let secret_room = carol
        .create_room(json!({"name": "secret", "kind": "private"}))
        .await;
    carol.send(secret_room, "hiddenword").await;

    let secret_room_text = secret_room.to_string();
    let results = search(
        &alice,
        &[("q", "hiddenword"), ("room_id", &secret_room_text)],
    )
    .await;

    assert_eq!(results.status, StatusCode::NOT_FOUND, "{}", results.body);
    assert_eq!(results.code(), "room_not_found");
}

#[tokio::test]
async fn search_takes_operators_literally() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;
    alice.send(room, "plain text").await;

    for query in ["\"unbalanced", "NEAR(", "a OR", "*", "-", "col:umn", "   "] {
        let results = search(&alice, &[("q", query)]).await;
        assert_eq!(
            results.status,
            StatusCode::OK,
            "q {query:?}: {}",
            results.body
        );
        assert!(
            results.body["hits"].is_array(),
            "q {query:?}: {}",
            results.body
        );
    }
}

#[tokio::test]
async fn search_limit_is_validated() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;
    for index in 0..4 {
        alice.send(room, &format!("limitword {index}")).await;
    }

    let limited = search(&alice, &[("q", "limitword"), ("limit", "2")]).await;
    let zero = search(&alice, &[("q", "limitword"), ("limit", "0")]).await;

    assert_eq!(hit_ids(&limited).len(), 2, "{}", limited.body);
    assert_eq!(zero.status, StatusCode::BAD_REQUEST, "{}", zero.body);
    assert_eq!(zero.code(), "invalid_limit");
}

#[tokio::test]
async fn search_without_query_is_bad_request() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;

    let results = alice.get("/api/search").await;

    assert_eq!(results.status, StatusCode::BAD_REQUEST, "{}", results.body);
    assert_eq!(results.code(), "invalid_query");
}

// --- Visibility to non-members ---

#[tokio::test]
async fn private_message_is_hidden_from_non_member() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let room = alice
        .create_room(json!({"name": "secret", "kind": "private"}))
        .await;
    let parent = alice.send(room, "private words").await;
    let id = message_id(&parent);
    let path = format!("/api/messages/{id}");

    let fetched = bob.get(&path).await;
    let edited = bob.patch(&path, json!({"body": "intruder"})).await;
    let deleted = bob.delete(&path).await;
    let reacted = bob.put(&reaction_path(id, "🎉"), json!({})).await;
    let unreacted = bob.delete(&reaction_path(id, "🎉")).await;
    let thread = bob.get(&format!("{path}/thread")).await;
    let pinned = bob.put(&format!("{path}/pin"), json!({})).await;
    let unpinned = bob.delete(&format!("{path}/pin")).await;

    let answers = [
        ("GET", &fetched),
        ("PATCH", &edited),
        ("DELETE", &deleted),
        ("PUT reaction", &reacted),
        ("DELETE reaction", &unreacted),
        ("GET thread", &thread),
        ("PUT pin", &pinned),
        ("DELETE pin", &unpinned),
    ];
    for (request, response) in answers {
        assert_eq!(
            response.status,
            StatusCode::NOT_FOUND,
            "{request}: {}",
            response.body
        );
        assert_eq!(response.code(), "message_not_found", "{request}");
    }
    let unchanged = alice.get(&path).await;
    assert_eq!(unchanged.body["body"], "private words");
    assert_eq!(unchanged.body["deleted"], false);
    assert_eq!(unchanged.body["reactions"], json!([]));
    assert_eq!(unchanged.body["pinned"], Value::Null);
}

#[tokio::test]
async fn private_room_history_is_hidden() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let room = alice
        .create_room(json!({"name": "secret", "kind": "private"}))
        .await;
    alice.send(room, "private words").await;

    let page = history(&bob, room, "").await;
    let pins = bob.get(&format!("/api/rooms/{room}/pins")).await;
    let posted = try_send(&bob, room, "let me in").await;

    assert_eq!(page.status, StatusCode::NOT_FOUND, "{}", page.body);
    assert_eq!(page.code(), "room_not_found");
    assert_eq!(pins.status, StatusCode::NOT_FOUND, "{}", pins.body);
    assert_eq!(pins.code(), "room_not_found");
    assert_eq!(posted.status, StatusCode::NOT_FOUND, "{}", posted.body);
    assert_eq!(posted.code(), "room_not_found");
}

#[tokio::test]
async fn departed_member_loses_access() {
    let server = TestServer::start().await;
    let (alice, bob, room) = room_with_bob(&server, "general").await;
    let message = alice.send(room, "before you go").await;
    let left = bob
        .post(&format!("/api/rooms/{room}/leave"), json!({}))
        .await;
    assert!(left.status.is_success(), "bob leaves: {}", left.body);

    let fetched = bob
        .get(&format!("/api/messages/{}", message_id(&message)))
        .await;

    assert_eq!(fetched.status, StatusCode::NOT_FOUND, "{}", fetched.body);
    assert_eq!(fetched.code(), "message_not_found");
}

#[tokio::test]
async fn anonymous_request_is_unauthorized() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;

    let response = server
        .anonymous(Method::GET, &format!("/api/rooms/{room}/messages"))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}
