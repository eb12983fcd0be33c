//! Registration, login, logout, sessions, the caller's own account, avatars and the
//! brute-force limits.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{Answer, PASSWORD, TestServer, TestUser, answer};

/// A valid 1x1 RGBA PNG: signature, IHDR, one zlib-compressed row of one
/// transparent pixel, and IEND, each chunk with its CRC-32.
const TINY_PNG: [u8; 67] = [
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, // signature
    0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52, // IHDR, 13 bytes
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, // width 1, height 1
    0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4, 0x89, // 8-bit RGBA, CRC
    0x00, 0x00, 0x00, 0x0A, 0x49, 0x44, 0x41, 0x54, // IDAT, 10 bytes
    0x78, 0x9C, 0x63, 0x00, 0x01, 0x00, 0x00, 0x05, 0x00, 0x01, // zlib data
    0x0D, 0x0A, 0x2D, 0xB4, // CRC
    0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82, // IEND, CRC
];

const PNG_SIGNATURE: &[u8] = &[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];

fn registration(username: &str, email: &str) -> Value {
    json!({"username": username, "email": email, "password": PASSWORD})
}

async fn post_anonymous(server: &TestServer, path: &str, body: Value) -> Answer {
    let request = server.anonymous(Method::POST, path).json(&body);
    answer(request.send().await.unwrap()).await
}

async fn register(server: &TestServer, body: Value) -> Answer {
    post_anonymous(server, "/api/auth/register", body).await
}

async fn login(server: &TestServer, login: &str, password: &str) -> Answer {
    let body = json!({"login": login, "password": password});
    post_anonymous(server, "/api/auth/login", body).await
}

/// Calls `GET /api/me` with a raw token.
async fn me_with_token(server: &TestServer, token: &str) -> Answer {
    let request = server.anonymous(Method::GET, "/api/me").bearer_auth(token);
    answer(request.send().await.unwrap()).await
}

async fn upload_avatar(user: &TestUser, bytes: Vec<u8>, name: &str, mime: &str) -> Answer {
    let part = reqwest::multipart::Part::bytes(bytes)
        .file_name(name.to_string())
        .mime_str(mime)
        .unwrap();
    let form = reqwest::multipart::Form::new().part("file", part);
    let request = user.request(Method::PUT, "/api/me/avatar").multipart(form);
    answer(request.send().await.unwrap()).await
}

fn retry_after_secs(answer: &Answer) -> u64 {
    let header = answer
        .headers
        .get(reqwest::header::RETRY_AFTER)
        .expect("a Retry-After header");
    header.to_str().unwrap().parse().unwrap()
}

// Registration.

#[tokio::test]
async fn register_returns_user_and_token() {
    let server = TestServer::start().await;

    let created = register(&server, registration("Alice", "Alice@Example.com")).await;

    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let user = &created.body["user"];
    assert_eq!(user["username"], "Alice");
    assert_eq!(user["display_name"], "Alice");
    assert_eq!(user["email"], "alice@example.com");
    assert!(user["avatar_url"].is_null(), "{user}");
    let token = created.body["token"].as_str().unwrap();
    assert!(!token.is_empty());
    let me = me_with_token(&server, token).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    assert_eq!(me.body["id"], user["id"]);
}

#[tokio::test]
async fn register_uses_given_display_name() {
    let server = TestServer::start().await;
    let mut body = registration("alice", "alice@example.com");
    body["display_name"] = json!("  Alice Liddell  ");

    let created = register(&server, body).await;

    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["user"]["display_name"], "Alice Liddell");
}

#[tokio::test]
async fn register_normalises_fullwidth_username() {
    let server = TestServer::start().await;

    let created = register(&server, registration("Ｂｏｂ", "bob@example.com")).await;

    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["user"]["username"], "Bob");
}

#[tokio::test]
async fn register_rejects_username_in_other_case() {
    let server = TestServer::start().await;
    server.register("alice").await;

    let taken = register(&server, registration("ALICE", "other@example.com")).await;

    assert_eq!(taken.status, StatusCode::CONFLICT, "{}", taken.body);
    assert_eq!(taken.code(), "username_taken");
    assert!(taken.message().contains("\"ALICE\""), "{}", taken.body);
}

#[tokio::test]
async fn register_rejects_fullwidth_duplicate() {
    let server = TestServer::start().await;
    server.register("alice").await;

    let taken = register(&server, registration("ａｌｉｃｅ", "other@example.com")).await;

    assert_eq!(taken.status, StatusCode::CONFLICT, "{}", taken.body);
    assert_eq!(taken.code(), "username_taken");
}

#[tokio::test]
async fn register_rejects_reserved_name() {
    let server = TestServer::start().await;

    for name in [
        "admin",
        "Admin",
        "ROOT",
        "here",
        "room",
        "everyone",
        "ｓｙｓｔｅｍ",
    ] {
        let rejected = register(&server, registration(name, "someone@example.com")).await;

        assert_eq!(
            rejected.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{name}: {}",
            rejected.body
        );
        assert_eq!(rejected.code(), "invalid_username", "{name}");
    }
}

#[tokio::test]
async fn register_checks_username_length() {
    let server = TestServer::start().await;
    let longest = "a".repeat(32);
    let too_long = "a".repeat(33);

    let short = register(&server, registration("ab", "short@example.com")).await;
    let long = register(&server, registration(&too_long, "long@example.com")).await;
    let blank = register(&server, registration("   ", "blank@example.com")).await;
    let min = register(&server, registration("abc", "min@example.com")).await;
    let max = register(&server, registration(&longest, "max@example.com")).await;

    assert_eq!(short.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(short.code(), "invalid_username");
    assert_eq!(long.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(long.code(), "invalid_username");
    assert_eq!(blank.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(blank.code(), "invalid_username");
    assert_eq!(min.status, StatusCode::CREATED, "{}", min.body);
    assert_eq!(max.status, StatusCode::CREATED, "{}", max.body);
}

#[tokio::test]
async fn register_rejects_bad_characters() {
    let server = TestServer::start().await;

    for name in [
        "bob smith",
        "bob.smith",
        "_bob",
        "-bob",
        "bob@home",
        "bob!",
        "bob\u{0}x",
    ] {
        let rejected = register(&server, registration(name, "bob@example.com")).await;

        assert_eq!(
            rejected.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{name:?}: {}",
            rejected.body
        );
        assert_eq!(rejected.code(), "invalid_username", "{name:?}");
    }
}

#[tokio::test]
async fn register_accepts_non_ascii_letters() {
    let server = TestServer::start().await;

    let created = register(&server, registration("björn_2", "bjorn@example.com")).await;

    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["user"]["username"], "björn_2");
}

#[tokio::test]
async fn register_rejects_invalid_email() {
    let server = TestServer::start().await;
    let too_long = format!("{}@example.com", "a".repeat(250));
    let addresses = [
        "bob",
        "bob@localhost",
        "a@b@c.d",
        "@example.com",
        "bob@exa mple.com",
        "bob@example..com",
        "",
        too_long.as_str(),
    ];

    for address in addresses {
        let rejected = register(&server, registration("bob", address)).await;

        assert_eq!(
            rejected.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{address:?}: {}",
            rejected.body
        );
        assert_eq!(rejected.code(), "invalid_email", "{address:?}");
    }
}

#[tokio::test]
async fn register_rejects_email_in_other_case() {
    let server = TestServer::start().await;
    let first = register(&server, registration("alice", "alice@example.com")).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);

    let taken = register(&server, registration("alice2", "ALICE@Example.COM")).await;

    assert_eq!(taken.status, StatusCode::CONFLICT, "{}", taken.body);
    assert_eq!(taken.code(), "email_taken");
    assert!(
        taken.message().contains("alice@example.com"),
        "{}",
        taken.body
    );
}

#[tokio::test]
async fn register_checks_password_length() {
    let server = TestServer::start().await;
    let mut short = registration("alice", "alice@example.com");
    short["password"] = json!("seven77");
    let mut long = registration("alice", "alice@example.com");
    long["password"] = json!("x".repeat(1025));
    let mut min = registration("alice", "alice@example.com");
    min["password"] = json!("eight888");

    let short = register(&server, short).await;
    let long = register(&server, long).await;
    let min = register(&server, min).await;

    assert_eq!(short.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(short.code(), "invalid_password");
    assert_eq!(long.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(long.code(), "invalid_password");
    assert_eq!(min.status, StatusCode::CREATED, "{}", min.body);
}

#[tokio::test]
async fn register_rejects_missing_field() {
    let server = TestServer::start().await;

    for field in ["username", "email", "password"] {
        let mut body = registration("alice", "alice@example.com");
        body.as_object_mut().unwrap().remove(field);

        let rejected = register(&server, body).await;

        assert_eq!(rejected.status, StatusCode::BAD_REQUEST, "{field}");
        assert_eq!(rejected.code(), "invalid_request", "{field}");
    }
}

#[tokio::test]
async fn register_rejects_wrong_type() {
    let server = TestServer::start().await;
    let mut body = registration("alice", "alice@example.com");
    body["username"] = json!(42);

    let rejected = register(&server, body).await;

    assert_eq!(
        rejected.status,
        StatusCode::BAD_REQUEST,
        "{}",
        rejected.body
    );
    assert_eq!(rejected.code(), "invalid_request");
}

#[tokio::test]
async fn register_rejects_invalid_json() {
    let server = TestServer::start().await;
    let request = server
        .anonymous(Method::POST, "/api/auth/register")
        .header("content-type", "application/json")
        .body("{\"username\": \"alice\",");

    let rejected = answer(request.send().await.unwrap()).await;

    assert_eq!(
        rejected.status,
        StatusCode::BAD_REQUEST,
        "{}",
        rejected.body
    );
    assert_eq!(rejected.code(), "invalid_json");
}

#[tokio::test]
async fn register_rejects_wrong_content_type() {
    let server = TestServer::start().await;
    let body = registration("alice", "alice@example.com").to_string();
    let request = server
        .anonymous(Method::POST, "/api/auth/register")
        .header("content-type", "text/plain")
        .body(body);

    let rejected = answer(request.send().await.unwrap()).await;

    assert_eq!(
        rejected.status,
        StatusCode::BAD_REQUEST,
        "{}",
        rejected.body
    );
    assert_eq!(rejected.code(), "invalid_content_type");
}

#[tokio::test]
async fn register_rejects_long_display_name() {
    let server = TestServer::start().await;
    let mut body = registration("alice", "alice@example.com");
    body["display_name"] = json!("x".repeat(65));

    let rejected = register(&server, body).await;

    assert_eq!(rejected.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(rejected.code(), "invalid_display_name");
}

// Login and logout.

#[tokio::test]
async fn login_with_username_works() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;

    let logged_in = login(&server, "alice", PASSWORD).await;

    assert_eq!(logged_in.status, StatusCode::OK, "{}", logged_in.body);
    assert_eq!(logged_in.body["user"]["id"], alice.id.to_string());
    assert_eq!(logged_in.body["user"]["email"], "alice@example.com");
    let token = logged_in.body["token"].as_str().unwrap();
    assert_ne!(token, alice.token);
    assert_eq!(me_with_token(&server, token).await.status, StatusCode::OK);
}

#[tokio::test]
async fn login_ignores_username_case() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;

    for name in ["ALICE", "Alice", "  alice  ", "ａｌｉｃｅ"] {
        let logged_in = login(&server, name, PASSWORD).await;

        assert_eq!(
            logged_in.status,
            StatusCode::OK,
            "{name:?}: {}",
            logged_in.body
        );
        assert_eq!(
            logged_in.body["user"]["id"],
            alice.id.to_string(),
            "{name:?}"
        );
    }
}

#[tokio::test]
async fn login_with_email_works() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;

    for email in ["alice@example.com", "ALICE@Example.COM"] {
        let logged_in = login(&server, email, PASSWORD).await;

        assert_eq!(
            logged_in.status,
            StatusCode::OK,
            "{email}: {}",
            logged_in.body
        );
        assert_eq!(
            logged_in.body["user"]["id"],
            alice.id.to_string(),
            "{email}"
        );
    }
}

#[tokio::test]
async fn login_rejects_wrong_password() {
    let server = TestServer::start().await;
    server.register("alice").await;

    let rejected = login(&server, "alice", "wrong horse battery").await;

    assert_eq!(
        rejected.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        rejected.body
    );
    assert_eq!(rejected.code(), "invalid_credentials");
    assert!(rejected.body.get("token").is_none(), "{}", rejected.body);
}

#[tokio::test]
async fn login_rejects_unknown_user_alike() {
    let server = TestServer::start().await;
    server.register("alice").await;
    let wrong_password = login(&server, "alice", "wrong horse battery").await;

    let unknown_name = login(&server, "nobody", PASSWORD).await;
    let unknown_email = login(&server, "nobody@example.com", PASSWORD).await;

    assert_eq!(unknown_name.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown_name.code(), "invalid_credentials");
    assert_eq!(unknown_email.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown_email.code(), "invalid_credentials");
    // The same message for both, so the response does not reveal which accounts exist.
    assert_eq!(unknown_name.body, wrong_password.body);
}

#[tokio::test]
async fn logout_revokes_token_at_once() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;

    let logged_out = alice.post("/api/auth/logout", json!({})).await;
    let me = alice.get("/api/me").await;

    assert_eq!(
        logged_out.status,
        StatusCode::NO_CONTENT,
        "{}",
        logged_out.body
    );
    assert_eq!(me.status, StatusCode::UNAUTHORIZED, "{}", me.body);
    assert_eq!(me.code(), "invalid_token");
}

#[tokio::test]
async fn logout_keeps_other_sessions() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let second = login(&server, "alice", PASSWORD).await;
    let second_token = second.body["token"].as_str().unwrap().to_string();

    let logged_out = alice.post("/api/auth/logout", json!({})).await;

    assert_eq!(logged_out.status, StatusCode::NO_CONTENT);
    let me = me_with_token(&server, &second_token).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    assert_eq!(me.body["id"], alice.id.to_string());
}

#[tokio::test]
async fn logout_without_token_is_rejected() {
    let server = TestServer::start().await;

    let rejected = post_anonymous(&server, "/api/auth/logout", json!({})).await;

    assert_eq!(rejected.status, StatusCode::UNAUTHORIZED);
    assert_eq!(rejected.code(), "missing_token");
}

// Tokens.

#[tokio::test]
async fn missing_token_is_rejected() {
    let server = TestServer::start().await;
    let request = server.anonymous(Method::GET, "/api/me");

    let rejected = answer(request.send().await.unwrap()).await;

    assert_eq!(
        rejected.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        rejected.body
    );
    assert_eq!(rejected.code(), "missing_token");
}

#[tokio::test]
async fn non_bearer_scheme_is_rejected() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let request = server
        .anonymous(Method::GET, "/api/me")
        .header("authorization", format!("Basic {}", alice.token));

    let rejected = answer(request.send().await.unwrap()).await;

    assert_eq!(
        rejected.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        rejected.body
    );
    assert_eq!(rejected.code(), "missing_token");
}

#[tokio::test]
async fn garbage_token_is_rejected() {
    let server = TestServer::start().await;
    server.register("alice").await;

    let rejected = me_with_token(&server, "not-a-real-token").await;

    assert_eq!(
        rejected.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        rejected.body
    );
    assert_eq!(rejected.code(), "invalid_token");
}

// The caller's account and other users.

#[tokio::test]
async fn me_returns_own_account() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;

    let me = alice.get("/api/me").await;

    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    assert_eq!(me.body["id"], alice.id.to_string());
    assert_eq!(me.body["username"], "alice");
    assert_eq!(me.body["email"], "alice@example.com");
    assert!(me.body.get("password_hash").is_none(), "{}", me.body);
}

#[tokio::test]
async fn user_by_id_hides_email() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;

    let found = bob.get(&format!("/api/users/{}", alice.id)).await;

    assert_eq!(found.status, StatusCode::OK, "{}", found.body);
    assert_eq!(found.body["username"], "alice");
    assert!(found.body.get("email").is_none(), "{}", found.body);
}

#[tokio::test]
async fn user_by_unknown_id_is_not_found() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;

    let missing = alice
        .get(&format!("/api/users/{}", uuid::Uuid::new_v4()))
        .await;

    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.code(), "user_not_found");
}

#[tokio::test]
async fn find_user_by_username_works() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;

    let exact = bob.get("/api/users?username=alice").await;
    let other_case = bob.get("/api/users?username=ALICE").await;

    assert_eq!(exact.status, StatusCode::OK, "{}", exact.body);
    assert_eq!(exact.body["id"], alice.id.to_string());
    assert!(exact.body.get("email").is_none(), "{}", exact.body);
    assert_eq!(other_case.status, StatusCode::OK, "{}", other_case.body);
    assert_eq!(other_case.body["id"], alice.id.to_string());
}

#[tokio::test]
async fn find_user_rejects_bad_queries() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;

    let unknown = alice.get("/api/users?username=nobody").await;
    let partial = alice.get("/api/users?username=ali").await;
    let missing = alice.get("/api/users").await;

    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.code(), "user_not_found");
    assert_eq!(partial.status, StatusCode::NOT_FOUND);
    assert_eq!(partial.code(), "user_not_found");
    assert_eq!(missing.status, StatusCode::BAD_REQUEST, "{}", missing.body);
    assert_eq!(missing.code(), "invalid_query");
}

#[tokio::test]
async fn find_user_needs_token() {
    let server = TestServer::start().await;
    server.register("alice").await;
    let request = server.anonymous(Method::GET, "/api/users?username=alice");

    let rejected = answer(request.send().await.unwrap()).await;

    assert_eq!(rejected.status, StatusCode::UNAUTHORIZED);
    assert_eq!(rejected.code(), "missing_token");
}

// Profile.

#[tokio::test]
async fn update_display_name_works() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;

    let updated = alice
        .patch("/api/me", json!({"display_name": "  Alice Liddell "}))
        .await;

    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    assert_eq!(updated.body["display_name"], "Alice Liddell");
    assert_eq!(updated.body["username"], "alice");
    assert_eq!(
        alice.get("/api/me").await.body["display_name"],
        "Alice Liddell"
    );
}

#[tokio::test]
async fn update_display_name_counts_characters() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    // 64 characters but 128 bytes: the limit is on characters.
    let longest = "é".repeat(64);

    let updated = alice
        .patch("/api/me", json!({"display_name": longest}))
        .await;

    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    assert_eq!(updated.body["display_name"], longest);
}

#[tokio::test]
async fn update_display_name_checks_limits() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let names = [
        json!(""),
        json!("   "),
        json!("x".repeat(65)),
        json!("tab\there"),
    ];

    for name in names {
        let rejected = alice.patch("/api/me", json!({"display_name": name})).await;

        assert_eq!(
            rejected.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{name}: {}",
            rejected.body
        );
        assert_eq!(rejected.code(), "invalid_display_name", "{name}");
    }
    assert_eq!(alice.get("/api/me").await.body["display_name"], "alice");
}

#[tokio::test]
async fn update_profile_without_changes_keeps_name() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;

    let updated = alice.patch("/api/me", json!({})).await;

    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    assert_eq!(updated.body["display_name"], "alice");
}

// Password changes.

#[tokio::test]
async fn change_password_rejects_wrong_current() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let body =
        json!({"current_password": "wrong horse battery", "new_password": "new horse battery"});

    let rejected = alice.post("/api/me/password", body).await;

    assert_eq!(rejected.status, StatusCode::FORBIDDEN, "{}", rejected.body);
    assert_eq!(rejected.code(), "wrong_password");
    assert_eq!(alice.get("/api/me").await.status, StatusCode::OK);
    assert_eq!(
        login(&server, "alice", PASSWORD).await.status,
        StatusCode::OK
    );
    let new_login = login(&server, "alice", "new horse battery").await;
    assert_eq!(new_login.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn change_password_revokes_old_sessions() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let other_session = login(&server, "alice", PASSWORD).await;
    let other_token = other_session.body["token"].as_str().unwrap().to_string();
    let body = json!({"current_password": PASSWORD, "new_password": "new horse battery"});

    let changed = alice.post("/api/me/password", body).await;

    assert_eq!(changed.status, StatusCode::NO_CONTENT, "{}", changed.body);
    let me = alice.get("/api/me").await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);
    assert_eq!(me.code(), "invalid_token");
    let other = me_with_token(&server, &other_token).await;
    assert_eq!(other.status, StatusCode::UNAUTHORIZED);
    let old_login = login(&server, "alice", PASSWORD).await;
    assert_eq!(old_login.status, StatusCode::UNAUTHORIZED);
    assert_eq!(old_login.code(), "invalid_credentials");
    let new_login = login(&server, "alice", "new horse battery").await;
    assert_eq!(new_login.status, StatusCode::OK, "{}", new_login.body);
}

#[tokio::test]
async fn change_password_rejects_short_new() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let body = json!({"current_password": PASSWORD, "new_password": "short"});

    let rejected = alice.post("/api/me/password", body).await;

    assert_eq!(rejected.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(rejected.code(), "invalid_password");
    assert_eq!(alice.get("/api/me").await.status, StatusCode::OK);
    assert_eq!(
        login(&server, "alice", PASSWORD).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn change_password_rejects_missing_field() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;

    let rejected = alice
        .post(
            "/api/me/password",
            json!({"new_password": "new horse battery"}),
        )
        .await;

    assert_eq!(rejected.status, StatusCode::BAD_REQUEST);
    assert_eq!(rejected.code(), "invalid_request");
}

// Avatars.

#[tokio::test]
async fn avatar_upload_sets_avatar_url() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;

    let uploaded = upload_avatar(&alice, TINY_PNG.to_vec(), "dot.png", "image/png").await;

    assert_eq!(uploaded.status, StatusCode::OK, "{}", uploaded.body);
    let expected_url = format!("/api/users/{}/avatar", alice.id);
    assert_eq!(uploaded.body["avatar_url"], expected_url);
    assert_eq!(alice.get("/api/me").await.body["avatar_url"], expected_url);
}

#[tokio::test]
async fn avatar_download_returns_png() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let uploaded = upload_avatar(&alice, TINY_PNG.to_vec(), "dot.png", "image/png").await;
    assert_eq!(uploaded.status, StatusCode::OK, "{}", uploaded.body);

    let path = format!("/api/users/{}/avatar", alice.id);
    let response = bob.request(Method::GET, &path).send().await.unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(content_type, "image/png");
    let bytes = response.bytes().await.unwrap();
    assert!(
        bytes.starts_with(PNG_SIGNATURE),
        "{:?}",
        &bytes[..8.min(bytes.len())]
    );
}

#[tokio::test]
async fn avatar_upload_rejects_non_image() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let text = b"just some text, not an image".to_vec();

    let rejected = upload_avatar(&alice, text, "avatar.png", "image/png").await;

    assert_eq!(
        rejected.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        rejected.body
    );
    assert_eq!(rejected.code(), "invalid_image");
    assert!(alice.get("/api/me").await.body["avatar_url"].is_null());
}

#[tokio::test]
async fn avatar_upload_rejects_truncated_png() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let truncated = TINY_PNG[..40].to_vec();

    let rejected = upload_avatar(&alice, truncated, "avatar.png", "image/png").await;

    assert_eq!(
        rejected.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        rejected.body
    );
    assert_eq!(rejected.code(), "invalid_image");
}

#[tokio::test]
async fn avatar_upload_needs_file_part() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let form = reqwest::multipart::Form::new().text("other", "value");
    let request = alice.request(Method::PUT, "/api/me/avatar").multipart(form);

    let rejected = answer(request.send().await.unwrap()).await;

    assert_eq!(
        rejected.status,
        StatusCode::BAD_REQUEST,
        "{}",
        rejected.body
    );
    assert_eq!(rejected.code(), "missing_file");
}

#[tokio::test]
async fn avatar_missing_is_not_found() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;

    let no_avatar = bob.get(&format!("/api/users/{}/avatar", alice.id)).await;
    let unknown_user = bob
        .get(&format!("/api/users/{}/avatar", uuid::Uuid::new_v4()))
        .await;

    assert_eq!(no_avatar.status, StatusCode::NOT_FOUND);
    assert_eq!(no_avatar.code(), "avatar_not_found");
    assert_eq!(unknown_user.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown_user.code(), "user_not_found");
}

// Disabled accounts.

#[tokio::test]
async fn disabled_account_cannot_log_in() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    server
        .state
        .store
        .set_disabled(alice.id, true)
        .await
        .unwrap();

    let rejected = login(&server, "alice", PASSWORD).await;

    assert_eq!(rejected.status, StatusCode::FORBIDDEN, "{}", rejected.body);
    assert_eq!(rejected.code(), "account_disabled");
}

#[tokio::test]
async fn disabled_account_hides_behind_wrong_password() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    server
        .state
        .store
        .set_disabled(alice.id, true)
        .await
        .unwrap();

    let rejected = login(&server, "alice", "wrong horse battery").await;

    assert_eq!(
        rejected.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        rejected.body
    );
    assert_eq!(rejected.code(), "invalid_credentials");
}

#[tokio::test]
async fn disabled_account_token_stops_working() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    assert_eq!(alice.get("/api/me").await.status, StatusCode::OK);

    server
        .state
        .store
        .set_disabled(alice.id, true)
        .await
        .unwrap();
    let me = alice.get("/api/me").await;

    assert_eq!(me.status, StatusCode::UNAUTHORIZED, "{}", me.body);
    assert_eq!(me.code(), "invalid_token");
}

#[tokio::test]
async fn enabled_again_account_can_log_in() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    server
        .state
        .store
        .set_disabled(alice.id, true)
        .await
        .unwrap();
    server
        .state
        .store
        .set_disabled(alice.id, false)
        .await
        .unwrap();

    let logged_in = login(&server, "alice", PASSWORD).await;

    assert_eq!(logged_in.status, StatusCode::OK, "{}", logged_in.body);
}

// Rate limits.

async fn start_with_login_limit(per_account: u32) -> TestServer {
    TestServer::start_with(|settings| {
        settings.rate_limit.enabled = true;
        settings.rate_limit.login_per_account_per_minute = per_account;
    })
    .await
}

#[tokio::test]
async fn login_limit_per_account_applies() {
    let server = start_with_login_limit(3).await;
    server.register("alice").await;
    for attempt in 1..=3 {
        let allowed = login(&server, "alice", "wrong horse battery").await;
        assert_eq!(
            allowed.status,
            StatusCode::UNAUTHORIZED,
            "attempt {attempt}"
        );
    }

    // The right password does not get past the limit either.
    let limited = login(&server, "alice", PASSWORD).await;

    assert_eq!(
        limited.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        limited.body
    );
    assert_eq!(limited.code(), "rate_limited");
    assert!(retry_after_secs(&limited) >= 1);
}

#[tokio::test]
async fn login_limit_ignores_username_case() {
    let server = start_with_login_limit(3).await;
    server.register("alice").await;
    for name in ["alice", "ALICE", "Alice"] {
        let allowed = login(&server, name, PASSWORD).await;
        assert_eq!(allowed.status, StatusCode::OK, "{name}: {}", allowed.body);
    }

    let limited = login(&server, "aLiCe", PASSWORD).await;

    assert_eq!(
        limited.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        limited.body
    );
    assert_eq!(limited.code(), "rate_limited");
}

#[tokio::test]

async fn login_limit_counts_email_with_username() {
    let server = start_with_login_limit(3).await;
    server.register("alice").await;
    for attempt in 1..=3 {
        let allowed = login(&server, "alice", "wrong horse battery").await;
        assert_eq!(
            allowed.status,
            StatusCode::UNAUTHORIZED,
            "attempt {attempt}"
        );
    }

    let by_email = login(&server, "alice@example.com", "wrong horse battery").await;

    assert_eq!(
        by_email.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        by_email.body
    );
    assert_eq!(by_email.code(), "rate_limited");
}

#[tokio::test]
async fn login_limit_spares_other_accounts() {
    let server = start_with_login_limit(3).await;
    server.register("alice").await;
    server.register("bob").await;
    for _ in 0..4 {
        login(&server, "alice", "wrong horse battery").await;
    }

    let bob = login(&server, "bob", PASSWORD).await;

    assert_eq!(bob.status, StatusCode::OK, "{}", bob.body);
}

#[tokio::test]
async fn login_limit_per_ip_applies() {
    let server = TestServer::start_with(|settings| {
        settings.rate_limit.enabled = true;
        settings.rate_limit.login_per_ip_per_minute = 3;
    })
    .await;
    for name in ["carol", "dave", "erin"] {
        let allowed = login(&server, name, PASSWORD).await;
        assert_eq!(allowed.status, StatusCode::UNAUTHORIZED, "{name}");
    }

    let limited = login(&server, "frank", PASSWORD).await;

    assert_eq!(
        limited.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        limited.body
    );
    assert_eq!(limited.code(), "rate_limited");
    assert!(retry_after_secs(&limited) >= 1);
}

#[tokio::test]
async fn register_limit_per_ip_applies() {
    let server = TestServer::start_with(|settings| {
        settings.rate_limit.enabled = true;
        settings.rate_limit.register_per_ip_per_hour = 3;
    })
    .await;
    for name in ["alice", "bob", "carol"] {
        let allowed = register(&server, registration(name, &format!("{name}@example.com"))).await;
        assert_eq!(
            allowed.status,
            StatusCode::CREATED,
            "{name}: {}",
            allowed.body
        );
    }

    let limited = register(&server, registration("dave", "dave@example.com")).await;

    assert_eq!(
        limited.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        limited.body
    );
    assert_eq!(limited.code(), "rate_limited");
    assert!(retry_after_secs(&limited) >= 1);
    let dave = login(&server, "dave", PASSWORD).await;
    assert_eq!(
        dave.status,
        StatusCode::UNAUTHORIZED,
        "no account was created"
    );
}

#[tokio::test]
async fn rate_limits_off_allow_many_logins() {
    let server = TestServer::start_with(|settings| {
        settings.rate_limit.enabled = false;
        settings.rate_limit.login_per_account_per_minute = 1;
    })
    .await;
    server.register("alice").await;

    for attempt in 1..=3 {
        let allowed = login(&server, "alice", PASSWORD).await;
        assert_eq!(allowed.status, StatusCode::OK, "attempt {attempt}");
    }
}
