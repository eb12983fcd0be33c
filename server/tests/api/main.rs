//! Integration tests of the HTTP and WebSocket API, against the real router, store
//! and listener on `127.0.0.1:0`, one module per area.

mod accounts;
mod common;
mod files;
mod live;
mod messages;
mod metrics;
mod rooms;
