//! Types and rules that the Roomler server and client share.
//!
//! Nothing here does I/O. The modules:
//!
//! - [`model`]: the domain objects as the API returns them (users, rooms, messages).
//! - [`api`]: request and response bodies of the HTTP API.
//! - [`ws`]: the WebSocket protocol, its frames and event types.
//! - [`call`]: the call signaling carried over the WebSocket, and call state events.
//! - [`rich_text`]: Markdown to safe HTML, mention extraction and emoji shortcodes.
//! - [`search`]: the FTS5 query and the HTML snippets of full-text search.
//! - [`limits`]: validation of every user-supplied field, with the limits as constants.

pub mod api;
pub mod call;
pub mod limits;
pub mod model;
pub mod rich_text;
pub mod search;
pub mod ws;

pub use limits::Invalid;
