//! The HTTP API client, over reqwest with rustls.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use roomler_shared::api::{
    AuthResponse, Ban, BanList, CreateDirectRequest, CreateInviteRequest, CreateRoomRequest,
    EditMessageRequest, ErrorBody, FileInfo, JoinRoomRequest, LoginRequest, MessagePage,
    PostMessageRequest, RegisterRequest, RoomFileInfo, RoomList, SearchResults, SetRoleRequest,
    TransferOwnershipRequest, UpdateRoomRequest,
};
use roomler_shared::model::{Invite, Message, Role, Room, RoomKind, User};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{ClientError, Result};

/// Time one request may take before it counts as a network failure.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// An invite the server created, with the link to share when the server has a public
/// URL configured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreatedInvite {
    #[serde(flatten)]
    pub invite: Invite,
    pub url: Option<String>,
}

/// The body of `GET /api/rooms/{id}/files`.
#[derive(Deserialize)]
struct FileList {
    files: Vec<RoomFileInfo>,
}

#[derive(Clone)]
pub struct ApiClient {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token stays out of debug output, and so out of logs.
        f.debug_struct("ApiClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl ApiClient {
    pub fn new(base: &str, token: Option<String>) -> Result<Self> {
        let trimmed = base.trim();
        if !(trimmed.starts_with("http://") || trimmed.starts_with("https://")) {
            return Err(ClientError::Usage(format!(
                "the server URL {trimmed:?} is invalid: start it with http:// or https://"
            )));
        }
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("roomler-client/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(ApiClient {
            base: trimmed.trim_end_matches('/').to_string(),
            token,
            http,
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    pub fn with_token(&self, token: String) -> Self {
        ApiClient {
            token: Some(token),
            ..self.clone()
        }
    }

    /// The WebSocket URL of the event stream.
    pub fn ws_url(&self, since: Option<i64>) -> String {
        let base = if let Some(rest) = self.base.strip_prefix("https://") {
            format!("wss://{rest}")
        } else {
            format!("ws://{}", self.base.trim_start_matches("http://"))
        };
        match since {
            Some(since) => format!("{base}/api/ws?since={since}"),
            None => format!("{base}/api/ws"),
        }
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let builder = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    async fn send<T: DeserializeOwned>(&self, builder: reqwest::RequestBuilder) -> Result<T> {
        let response = builder.send().await?;
        let status = response.status();
        if status.is_success() {
            return Ok(response.json().await?);
        }
        Err(rejection(status, response).await)
    }

    async fn send_empty(&self, builder: reqwest::RequestBuilder) -> Result<()> {
        let response = builder.send().await?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        Err(rejection(status, response).await)
    }

    async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: &impl Serialize,
    ) -> Result<T> {
        self.send(self.request(method, path).json(body)).await
    }

    pub async fn register(
        &self,
        username: &str,
        email: &str,
        password: &str,
    ) -> Result<AuthResponse> {
        let body = RegisterRequest {
            username: username.to_string(),
            email: email.to_string(),
            password: password.to_string(),
            display_name: None,
        };
        self.json(Method::POST, "/api/auth/register", &body).await
    }

    pub async fn login(&self, login: &str, password: &str) -> Result<AuthResponse> {
        let body = LoginRequest {
            login: login.to_string(),
            password: password.to_string(),
        };
        self.json(Method::POST, "/api/auth/login", &body).await
    }

    pub async fn logout(&self) -> Result<()> {
        self.send_empty(self.request(Method::POST, "/api/auth/logout"))
            .await
    }

    pub async fn me(&self) -> Result<User> {
        self.send(self.request(Method::GET, "/api/me")).await
    }

    pub async fn rooms(&self) -> Result<Vec<Room>> {
        let list: RoomList = self.send(self.request(Method::GET, "/api/rooms")).await?;
        Ok(list.rooms)
    }

    pub async fn members(&self, room_id: Uuid) -> Result<Vec<roomler_shared::model::Member>> {
        let path = format!("/api/rooms/{room_id}/members");
        let list: roomler_shared::api::MemberList =
            self.send(self.request(Method::GET, &path)).await?;
        Ok(list.members)
    }

    /// Changes a room's name, topic or password. Fields that are `None` stay as they are.
    pub async fn update_room(&self, room_id: Uuid, changes: &UpdateRoomRequest) -> Result<Room> {
        self.json(Method::PATCH, &format!("/api/rooms/{room_id}"), changes)
            .await
    }

    /// Creates an invite to a room that lasts `expires_in_secs` (the server's default
    /// when `None`) and, with `single_use`, admits one person.
    pub async fn create_invite(
        &self,
        room_id: Uuid,
        expires_in_secs: Option<u64>,
        single_use: bool,
    ) -> Result<CreatedInvite> {
        let body = CreateInviteRequest {
            expires_in_secs,
            single_use,
        };
        let path = format!("/api/rooms/{room_id}/invites");
        self.json(Method::POST, &path, &body).await
    }

    /// Joins the room of an invite code and returns the room.
    pub async fn accept_invite(&self, code: &str) -> Result<Room> {
        let path = format!("/api/invites/{}", percent_encode(code));
        self.send(self.request(Method::POST, &path)).await
    }

    /// Removes a member from a room, who may join again.
    pub async fn kick(&self, room_id: Uuid, user_id: Uuid) -> Result<()> {
        let path = format!("/api/rooms/{room_id}/members/{user_id}");
        self.send_empty(self.request(Method::DELETE, &path)).await
    }

    /// Removes a user from a room and keeps them from joining again.
    pub async fn ban(&self, room_id: Uuid, user_id: Uuid) -> Result<()> {
        let path = format!("/api/rooms/{room_id}/bans/{user_id}");
        self.send_empty(self.request(Method::PUT, &path)).await
    }

    /// Fetches the users banned from a room, newest first. Needs the moderator role.
    pub async fn bans(&self, room_id: Uuid) -> Result<Vec<Ban>> {
        let path = format!("/api/rooms/{room_id}/bans");
        let list: BanList = self.send(self.request(Method::GET, &path)).await?;
        Ok(list.bans)
    }

    /// Lifts a user's ban from a room, so they may join again.
    pub async fn unban(&self, room_id: Uuid, user_id: Uuid) -> Result<()> {
        let path = format!("/api/rooms/{room_id}/bans/{user_id}");
        self.send_empty(self.request(Method::DELETE, &path)).await
    }

    /// Makes the member `user_id` the room's owner. The caller, the owner until now,
    /// becomes a moderator.
    pub async fn transfer_ownership(&self, room_id: Uuid, user_id: Uuid) -> Result<()> {
        let path = format!("/api/rooms/{room_id}/owner");
        let builder = self
            .request(Method::PUT, &path)
            .json(&TransferOwnershipRequest { user_id });
        self.send_empty(builder).await
    }

    pub async fn set_role(&self, room_id: Uuid, user_id: Uuid, role: Role) -> Result<()> {
        let path = format!("/api/rooms/{room_id}/members/{user_id}/role");
        let builder = self
            .request(Method::PUT, &path)
            .json(&SetRoleRequest { role });
        self.send_empty(builder).await
    }

    /// Pins a message (`pinned`) or unpins it, and returns the message as it is now.
    pub async fn set_pin(&self, message_id: Uuid, pinned: bool) -> Result<Message> {
        let method = if pinned { Method::PUT } else { Method::DELETE };
        let path = format!("/api/messages/{message_id}/pin");
        self.send(self.request(method, &path)).await
    }

    /// Fetches the pinned messages of a room.
    pub async fn pins(&self, room_id: Uuid) -> Result<Vec<Message>> {
        let path = format!("/api/rooms/{room_id}/pins");
        let page: MessagePage = self.send(self.request(Method::GET, &path)).await?;
        Ok(page.messages)
    }

    /// Fetches the files attached to a room's messages that are not deleted, newest first,
    /// with who uploaded each one and when.
    pub async fn room_files(&self, room_id: Uuid) -> Result<Vec<RoomFileInfo>> {
        let path = format!("/api/rooms/{room_id}/files");
        let list: FileList = self.send(self.request(Method::GET, &path)).await?;
        Ok(list.files)
    }

    /// Finds a user by exact username, without regard to case.
    pub async fn find_user(&self, username: &str) -> Result<User> {
        let builder = self
            .request(Method::GET, "/api/users")
            .query(&[("username", username)]);
        self.send(builder).await
    }

    pub async fn directory(&self, query: &str) -> Result<Vec<Room>> {
        let builder = self
            .request(Method::GET, "/api/rooms/directory")
            .query(&[("q", query)]);
        let list: RoomList = self.send(builder).await?;
        Ok(list.rooms)
    }

    pub async fn join(&self, name: &str, password: Option<String>) -> Result<Room> {
        let body = JoinRoomRequest {
            name: name.to_string(),
            password,
        };
        self.json(Method::POST, "/api/rooms/join", &body).await
    }

    pub async fn create_room(
        &self,
        name: &str,
        kind: RoomKind,
        password: Option<String>,
        parent_id: Option<Uuid>,
    ) -> Result<Room> {
        let body = CreateRoomRequest {
            name: name.to_string(),
            kind,
            password,
            parent_id,
            topic: None,
        };
        self.json(Method::POST, "/api/rooms", &body).await
    }

    pub async fn create_direct(&self, user_ids: Vec<Uuid>) -> Result<Room> {
        self.json(
            Method::POST,
            "/api/direct",
            &CreateDirectRequest { user_ids },
        )
        .await
    }

    /// A page of history: newest first with `before`, oldest first with `after`.
    pub async fn history(
        &self,
        room_id: Uuid,
        before: Option<i64>,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Message>> {
        let mut query = vec![("limit", limit.to_string())];
        if let Some(before) = before {
            query.push(("before", before.to_string()));
        }
        if let Some(after) = after {
            query.push(("after", after.to_string()));
        }
        let path = format!("/api/rooms/{room_id}/messages");
        let page: MessagePage = self
            .send(self.request(Method::GET, &path).query(&query))
            .await?;
        Ok(page.messages)
    }

    pub async fn post_message(
        &self,
        room_id: Uuid,
        request: &PostMessageRequest,
    ) -> Result<Message> {
        self.json(
            Method::POST,
            &format!("/api/rooms/{room_id}/messages"),
            request,
        )
        .await
    }

    pub async fn edit_message(&self, id: Uuid, body: &str) -> Result<Message> {
        let request = EditMessageRequest {
            body: body.to_string(),
        };
        self.json(Method::PATCH, &format!("/api/messages/{id}"), &request)
            .await
    }

    pub async fn delete_message(&self, id: Uuid) -> Result<()> {
        self.send_empty(self.request(Method::DELETE, &format!("/api/messages/{id}")))
            .await
    }

    pub async fn set_reaction(&self, id: Uuid, emoji: &str, present: bool) -> Result<()> {
        let method = if present { Method::PUT } else { Method::DELETE };
        let path = format!("/api/messages/{id}/reactions/{}", percent_encode(emoji));
        self.send_empty(self.request(method, &path)).await
    }

    pub async fn search(&self, query: &str) -> Result<SearchResults> {
        self.send(
            self.request(Method::GET, "/api/search")
                .query(&[("q", query)]),
        )
        .await
    }

    /// Uploads a file as a stream, calling `progress` with the bytes sent so far.
    pub async fn upload(
        &self,
        room_id: Uuid,
        name: &str,
        body: reqwest::Body,
        size: u64,
    ) -> Result<FileInfo> {
        let mime = mime_for(name);
        let part = reqwest::multipart::Part::stream_with_length(body, size)
            .file_name(name.to_string())
            .mime_str(mime)
            .map_err(|error| ClientError::Usage(error.to_string()))?;
        let form = reqwest::multipart::Form::new().part("file", part);
        let path = format!("/api/rooms/{room_id}/files");
        // Large uploads may take longer than one ordinary request.
        let builder = self
            .request(Method::POST, &path)
            .multipart(form)
            .timeout(Duration::from_secs(3600));
        self.send(builder).await
    }

    /// Starts a download, from `offset` when resuming a partial file.
    pub async fn download(&self, url_path: &str, offset: u64) -> Result<reqwest::Response> {
        let mut builder = self
            .request(Method::GET, url_path)
            .timeout(Duration::from_secs(3600));
        if offset > 0 {
            builder = builder.header(reqwest::header::RANGE, format!("bytes={offset}-"));
        }
        let response = builder.send().await?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        Err(rejection(status, response).await)
    }
}

async fn rejection(status: StatusCode, response: reqwest::Response) -> ClientError {
    let text = response.text().await.unwrap_or_default();
    match serde_json::from_str::<ErrorBody>(&text) {
        Ok(body) => ClientError::Rejected {
            status,
            code: body.error.code,
            message: body.error.message,
        },
        Err(_) => ClientError::Rejected {
            status,
            code: "unexpected_response".to_string(),
            message: format!("the server answered {status} without an error body"),
        },
    }
}

fn mime_for(name: &str) -> &'static str {
    let extension = name
        .rsplit('.')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    match extension.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "pdf" => "application/pdf",
        "txt" | "md" => "text/plain",
        _ => "application/octet-stream",
    }
}

fn percent_encode(text: &str) -> String {
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
