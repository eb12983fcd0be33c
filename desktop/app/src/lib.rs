//! The Tauri 2 shell of the Roomler desktop app.
//!
//! It connects the UI in `ui/` to the headless engine `roomler-client` and owns what only
//! a desktop app has: the window, the tray icon and native notifications. Everything the
//! UI shows comes from the engine's offline cache, and every change the engine makes
//! reaches the UI as an `engine-event`.
//!
//! - [`attachments`]: the commands for attachments: thumbnails, images, downloads.
//! - [`calls`]: the commands of a room's call, and the `roomler-frame` scheme that serves
//!   its pictures.
//! - [`cli`]: the command line: `--version`, `--server`, `--profile`.
//! - [`commands`]: the Tauri commands the UI invokes.
//! - [`defaults`]: the default server URL that administrators push.
//! - [`dto`]: mirrors of the engine's types, for the TypeScript bindings.
//! - [`error`]: [`CommandError`], the one error type of every command.
//! - [`events`]: the events sent to the UI and the task that forwards the engine's changes.
//! - [`moderation`]: the commands for room settings, invites, kicks, bans, roles, pins, a
//!   room's files and direct messages.
//! - [`notification_level`]: which messages notify the user, as chosen in Settings.
//! - [`notifications`]: which messages notify the user, and the notifications themselves.
//! - [`state`]: the session: the open engine and the tasks that keep it live.
//! - [`tray`]: the tray icon with the unread count.
//! - [`uploads`]: the commands for uploads: the file dialog, progress and cancel.
//!
//! The TypeScript bindings in `ui/src/api/generated.ts` are generated from the command and
//! event types here by [`bindings`]; a test fails when the committed file is out of date.

pub mod attachments;
pub mod calls;
pub mod cli;
pub mod commands;
pub mod compositing;
pub mod defaults;
pub mod dto;
pub mod error;
pub mod events;
pub mod moderation;
pub mod notification_level;
pub mod notifications;
pub mod state;
pub mod tray;
pub mod uploads;

use std::path::PathBuf;

use roomler_client::Profile;
use tauri::{DragDropEvent, Manager, RunEvent, WindowEvent};
use tauri_plugin_window_state::StateFlags;

pub use cli::Options;
pub use error::CommandError;

/// Label of the one main window, as in `tauri.conf.json5`.
pub const MAIN_WINDOW: &str = "main";

/// Initializes logging to standard error, filtered by `RUST_LOG` (default `info`).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// The tauri-specta builder with every command and event: the app's invoke handler and
/// the source of the TypeScript bindings.
pub fn bindings() -> tauri_specta::Builder<tauri::Wry> {
    tauri_specta::Builder::<tauri::Wry>::new()
        .commands(tauri_specta::collect_commands![
            commands::session_status,
            commands::login,
            commands::register,
            commands::logout,
            commands::list_rooms,
            commands::directory,
            commands::join_room,
            commands::create_room,
            commands::history,
            attachments::attachment_thumbnail,
            attachments::download_attachment,
            attachments::cancel_download,
            attachments::attachment_image,
            attachments::open_attachment,
            attachments::download_room_file,
            attachments::open_room_file,
            commands::history_page,
            commands::history_around,
            commands::load_older,
            commands::outbox,
            commands::send_message,
            commands::edit_message,
            commands::delete_message,
            commands::set_reaction,
            commands::retry_outbox,
            commands::discard_outbox,
            commands::search,
            commands::members,
            commands::mark_read,
            uploads::choose_files,
            uploads::upload_file,
            uploads::cancel_upload,
            uploads::stage_upload,
            moderation::update_room,
            moderation::create_invite,
            moderation::accept_invite,
            moderation::open_direct,
            moderation::kick_member,
            moderation::ban_member,
            moderation::bans,
            moderation::unban_member,
            moderation::set_member_role,
            moderation::transfer_ownership,
            moderation::set_pin,
            moderation::pins,
            moderation::room_files,
            calls::call_devices,
            calls::start_call_preview,
            calls::stop_call_preview,
            calls::join_call,
            calls::leave_call,
            calls::switch_call_media,
            calls::set_call_muted,
            calls::raise_call_hand,
            calls::lower_call_hand,
            calls::invite_to_speak,
            calls::move_to_audience,
            calls::set_call_camera_off,
            calls::set_visible_tiles,
            calls::call_levels,
            calls::call_stats,
            calls::room_calls,
            notification_level::notification_level,
            notification_level::set_notification_level,
        ])
        .events(tauri_specta::collect_events![
            events::EngineEvent,
            events::OpenRoom,
            events::CallEnded,
            events::CallParticipants,
            events::CallMedia
        ])
        .constant("HISTORY_MAX_LIMIT", commands::HISTORY_MAX_LIMIT)
        .constant("FRAME_SCHEME", calls::FRAME_SCHEME)
        .constant("FRAME_HEADER_BYTES", calls::FRAME_HEADER_BYTES)
        .constant("STAGED_UPLOAD_MAX_BYTES", uploads::STAGED_UPLOAD_MAX_BYTES)
        // Every exported type only goes to the UI, so one TypeScript type per Rust type is
        // enough. With serde phases, specta-serde would add a `_Deserialize` variant of each.
        .disable_serde_phases()
        // Sequence numbers, outbox ids and file sizes are i64 and u64 in Rust, and JSON.parse
        // turns them into a JavaScript number either way. They stay far below 2^53, where a
        // number would lose precision, so `number` is their honest TypeScript type.
        .dangerously_cast_bigints_to_number()
}

/// Writes the TypeScript bindings of [`bindings`] to `path`.
pub fn export_bindings(path: &std::path::Path) -> Result<(), specta_typescript::Error> {
    // The generated runtime uses `any`, which the UI's lint rules reject in written code.
    let header = "// Generated from the Rust types of desktop/app. Regenerate with:\n\
                  //   ROOMLER_UPDATE_BINDINGS=1 cargo test -p roomler-desktop bindings\n\
                  /* eslint-disable */\n";
    bindings().export(
        specta_typescript::Typescript::default().header(header),
        path,
    )
}

/// Runs the app until the user quits it.
pub fn run(options: Options) -> tauri::Result<()> {
    let bindings = bindings();
    let invoke_handler = bindings.invoke_handler();
    // Saving visibility would start the app hidden after a quit from the tray.
    let window_state = tauri_plugin_window_state::Builder::default()
        .with_state_flags(StateFlags::all() - StateFlags::VISIBLE)
        .build();

    let app = tauri::Builder::default()
        // The single-instance plugin goes first, so a second launch hands over before it
        // opens anything of its own.
        .plugin(tauri_plugin_single_instance::init(|app, _argv, _cwd| {
            tracing::info!("a second launch focuses the running app");
            show_main_window(app);
        }))
        .plugin(window_state)
        .plugin(tauri_plugin_notification::init())
        .register_asynchronous_uri_scheme_protocol(calls::FRAME_SCHEME, |context, request, responder| {
            let board = context.app_handle().state::<state::AppState>().calls().board().clone();
            // Converting a picture to RGBA takes a moment; it runs off the webview's thread.
            tauri::async_runtime::spawn_blocking(move || {
                let uri = request.uri();
                responder.respond(calls::frame_response(&board, uri.path(), uri.query()));
            });
        })
        .plugin(tauri_plugin_dialog::init())
        .invoke_handler(invoke_handler)
        .setup(move |app| {
            bindings.mount_events(app);
            let profile_dir = match options.profile {
                Some(dir) => dir,
                None => default_profile_dir(app.handle())?,
            };
            tracing::info!(profile = %profile_dir.display(), "starting roomler-desktop {}", env!("CARGO_PKG_VERSION"));
            let server_hint =
                defaults::default_server_url(options.server, &defaults::system_config_path());
            app.manage(state::AppState::new(Profile::new(profile_dir), server_hint));
            if let Some(window) = app.get_webview_window(MAIN_WINDOW)
                && compositing::disable_without_gpu(&window)?
            {
                tracing::info!(
                    "found no GPU render node in /dev/dri, so WebKit draws the page without \
                     accelerated compositing"
                );
            }
            tray::create(app.handle())?;
            notifications::handle_clicks(app.handle());
            state::resume_session(app.handle());
            Ok(())
        })
        .on_window_event(|window, event| {
            // Files dropped on the window may be uploaded, as files chosen in the dialog.
            if let WindowEvent::DragDrop(DragDropEvent::Drop { paths, .. }) = event {
                let state = window.state::<state::AppState>();
                state.uploads().allow(paths.iter().cloned());
            }
            // Closing the main window hides it, so live sync and notifications go on. The
            // tray's Quit item ends the app.
            if let WindowEvent::CloseRequested { api, .. } = event
                && window.label() == MAIN_WINDOW
            {
                api.prevent_close();
                if let Err(error) = window.hide() {
                    tracing::warn!(%error, "failed to hide the main window");
                }
            }
        })
        .build(tauri::generate_context!())?;

    app.run(|app, event| {
        if let RunEvent::Exit = event {
            tracing::info!("roomler-desktop is exiting");
            app.state::<state::AppState>().cancel_live();
        }
    });
    Ok(())
}

/// Shows, unminimizes and focuses the main window.
pub(crate) fn show_main_window(app: &tauri::AppHandle) {
    let Some(window) = app.get_webview_window(MAIN_WINDOW) else {
        tracing::warn!("the main window is missing");
        return;
    };
    let focused = window
        .show()
        .and_then(|()| window.unminimize())
        .and_then(|()| window.set_focus());
    if let Err(error) = focused {
        tracing::warn!(%error, "failed to show the main window");
    }
}

/// Returns the profile folder inside the platform's app data folder, e.g.
/// `~/.local/share/org.roomler.desktop/profile` on Linux.
fn default_profile_dir(app: &tauri::AppHandle) -> tauri::Result<PathBuf> {
    Ok(app.path().app_data_dir()?.join("profile"))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    const GENERATED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../ui/src/api/generated.ts");

    /// Fails when `ui/src/api/generated.ts` differs from what the Rust types generate.
    /// `ROOMLER_UPDATE_BINDINGS=1` rewrites the file instead.
    #[test]
    fn bindings_are_up_to_date() {
        let committed_path = Path::new(GENERATED);
        if std::env::var_os("ROOMLER_UPDATE_BINDINGS").is_some() {
            std::fs::create_dir_all(committed_path.parent().unwrap()).unwrap();
            export_bindings(committed_path).unwrap();
            return;
        }

        let dir = tempfile::tempdir().unwrap();
        let fresh_path = dir.path().join("generated.ts");
        export_bindings(&fresh_path).unwrap();
        let fresh = std::fs::read_to_string(&fresh_path).unwrap();
        let committed = std::fs::read_to_string(committed_path).unwrap_or_else(|error| {
            panic!(
                "failed to read {GENERATED}: {error}; generate it with \
                 ROOMLER_UPDATE_BINDINGS=1 cargo test -p roomler-desktop bindings"
            )
        });

        let first_difference = fresh
            .lines()
            .zip(committed.lines())
            .position(|(fresh, committed)| fresh != committed)
            .map_or_else(
                || "the line counts".to_string(),
                |line| format!("line {}", line + 1),
            );
        assert!(
            fresh == committed,
            "{GENERATED} is out of date (first difference: {first_difference}); regenerate it \
             with ROOMLER_UPDATE_BINDINGS=1 cargo test -p roomler-desktop bindings"
        );
    }
}
