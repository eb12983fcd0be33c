//! The headless engine of the Roomler desktop app, and the `roomler` CLI built on it.
//!
//! It never links Tauri or WebKit, so tests, benchmarks and bots run the real engine.
//!
//! - [`api`]: the HTTP API client (reqwest with rustls).
//! - [`attachments`]: uploads and resumable downloads with progress, cached
//!   thumbnails, and queued edits, deletes and reactions.
//! - [`cache`]: the offline SQLite cache and the outbox.
//! - [`call`]: call signaling and the two WebRTC peer connections of a call.
//! - [`engine`]: the facade the app calls, live sync over tokio-tungstenite with
//!   resume, resync and reconnect, and the change stream for the UI.
//! - [`moderation`]: room settings, invites, kicks, bans, roles, pins, a room's files
//!   and direct messages.
//! - [`profile`]: a profile folder with the server, the account and the token.
//! - [`error`]: the error type, whose kinds tell usage, rejection and network apart.

pub mod api;
pub mod attachments;
pub mod cache;
pub mod call;
pub mod engine;
pub mod error;
pub mod moderation;
pub mod profile;

pub use engine::{ConnectionState, Engine, EngineEvent, HistoryWindow};
pub use error::{ClientError, Result};
pub use profile::Profile;
pub use roomler_shared as shared;
