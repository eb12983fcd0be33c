//! The tray icon: the unread count, and Show and Quit items.
//!
//! The count is in the menu on every platform and in the tooltip where there is one:
//! Tauri 2 documents tray tooltips as unsupported on Linux.

use std::sync::Arc;
use std::time::Duration;

use roomler_client::Engine;
use tauri::async_runtime::JoinHandle;
use tauri::menu::{Menu, MenuEvent, MenuItem, PredefinedMenuItem};
use tauri::tray::{MouseButton, MouseButtonState, TrayIcon, TrayIconBuilder, TrayIconEvent};
use tauri::{AppHandle, Manager, Wry};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

const TRAY_ID: &str = "main";
const UNREAD_ITEM: &str = "unread";
const SHOW_ITEM: &str = "show";
const QUIT_ITEM: &str = "quit";

/// Shortest time between two recounts, so that a burst of changes, such as a resync's one
/// per room, costs one count.
const RECOUNT_INTERVAL: Duration = Duration::from_millis(500);

/// The tray icon and its unread item, kept in Tauri's state.
struct Tray {
    icon: TrayIcon,
    unread_item: MenuItem<Wry>,
}

/// Creates the tray icon.
pub fn create(app: &AppHandle) -> tauri::Result<()> {
    let unread_item = MenuItem::with_id(app, UNREAD_ITEM, unread_label(None), false, None::<&str>)?;
    let show = MenuItem::with_id(app, SHOW_ITEM, "Show Roomler", true, None::<&str>)?;
    let quit = MenuItem::with_id(app, QUIT_ITEM, "Quit Roomler", true, None::<&str>)?;
    let separator = PredefinedMenuItem::separator(app)?;
    let menu = Menu::with_items(app, &[&unread_item, &separator, &show, &quit])?;

    let mut builder = TrayIconBuilder::with_id(TRAY_ID)
        .tooltip("Roomler")
        .menu(&menu)
        .show_menu_on_left_click(false)
        .on_menu_event(on_menu_event)
        .on_tray_icon_event(on_tray_icon_event);
    if let Some(icon) = app.default_window_icon() {
        builder = builder.icon(icon.clone());
    }
    let icon = builder.build(app)?;
    app.manage(Tray { icon, unread_item });
    Ok(())
}

fn on_menu_event(app: &AppHandle, event: MenuEvent) {
    match event.id().as_ref() {
        SHOW_ITEM => crate::show_main_window(app),
        QUIT_ITEM => {
            tracing::info!("quitting from the tray menu");
            app.exit(0);
        }
        _ => {}
    }
}

/// Shows the window on a left click. Linux reports no tray clicks, so there the menu's
/// Show item does it.
fn on_tray_icon_event(tray: &TrayIcon, event: TrayIconEvent) {
    if let TrayIconEvent::Click {
        button: MouseButton::Left,
        button_state: MouseButtonState::Up,
        ..
    } = event
    {
        crate::show_main_window(tray.app_handle());
    }
}

/// Returns the text of the unread item for `total`, which is `None` while logged out.
pub fn unread_label(total: Option<u32>) -> String {
    match total {
        None => "Not logged in".to_string(),
        Some(0) => "No unread messages".to_string(),
        Some(1) => "1 unread message".to_string(),
        Some(count) => format!("{count} unread messages"),
    }
}

/// Shows the unread count in the tray menu and tooltip, or `None` while logged out.
pub fn show_unread(app: &AppHandle, total: Option<u32>) {
    let Some(tray) = app.try_state::<Tray>() else {
        return;
    };
    let label = unread_label(total);
    if let Err(error) = tray.unread_item.set_text(&label) {
        tracing::warn!(%error, "failed to update the tray menu");
    }
    let tooltip = match total {
        Some(count) if count > 0 => format!("Roomler: {label}"),
        _ => "Roomler".to_string(),
    };
    if let Err(error) = tray.icon.set_tooltip(Some(tooltip)) {
        tracing::debug!(%error, "failed to update the tray tooltip");
    }
}

/// A handle that asks the unread updater to recount. Calls that arrive while it counts or
/// waits are merged into one recount.
#[derive(Debug, Clone, Default)]
pub struct UnreadSignal(Arc<Notify>);

impl UnreadSignal {
    pub fn notify(&self) {
        // `notify_one` keeps one permit when the updater is not waiting yet.
        self.0.notify_one();
    }
}

/// Starts the task that recounts the unread messages of the cache whenever `signal` is
/// notified, at most once per [`RECOUNT_INTERVAL`], and shows the total in the tray.
pub(crate) fn spawn_unread_updater(
    app: AppHandle,
    engine: Arc<Engine>,
    signal: UnreadSignal,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    // The first count runs at once.
    signal.notify();
    tauri::async_runtime::spawn(async move {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = signal.0.notified() => {}
            }
            match engine.rooms() {
                Ok(rooms) => {
                    let total = rooms.iter().map(|cached| cached.unread).sum();
                    tracing::debug!(total, "counted the unread messages");
                    show_unread(&app, Some(total));
                }
                Err(error) => tracing::warn!(%error, "failed to count the unread messages"),
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(RECOUNT_INTERVAL) => {}
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unread_label_counts() {
        assert_eq!(unread_label(None), "Not logged in");
        assert_eq!(unread_label(Some(0)), "No unread messages");
        assert_eq!(unread_label(Some(1)), "1 unread message");
        assert_eq!(unread_label(Some(12)), "12 unread messages");
    }
}
