//! The Roomler desktop app.
//!
//! NOTE: the Tauri shell is not built yet; this binary only prints its version so that
//! the workspace layout is in place for it.

fn main() {
    println!("roomler-desktop {}", env!("CARGO_PKG_VERSION"));
}
