//! The headless engine of the Roomler desktop app.
//!
//! NOTE: this crate is still empty. It is to own the API client (reqwest), live sync
//! (tokio-tungstenite), the offline cache (rusqlite) and the `roomler` command-line
//! client, and it must never link Tauri or WebKit.

pub use roomler_shared as shared;
