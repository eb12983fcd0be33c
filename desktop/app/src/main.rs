//! `roomler-desktop`: the Roomler desktop app. See the library for how it is built.

// Release builds on Windows open no console window next to the app.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Parsed before Tauri starts, so `--version` and `--help` need no display.
    let options = roomler_desktop::Options::parse();
    roomler_desktop::init_tracing();
    match roomler_desktop::run(options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "roomler-desktop stopped with an error");
            ExitCode::FAILURE
        }
    }
}
