//! The choice between WebKitGTK's two ways of drawing the page on Linux:
//! accelerated compositing through OpenGL, or drawing with the CPU.
//!
//! Without a GPU, WebKitGTK composites through Mesa's software OpenGL. In the call
//! view benchmark under Xvfb (`docs/benchmarks.md`), that took twice the web
//! process's CPU and made picture fetches about ten times slower than drawing with
//! the CPU. It also crashed WebKit 2.50's compositor thread in the speaker view of a
//! 25-tile call. So on a machine without a DRM render node the app turns
//! compositing off.

use std::path::Path;

/// Environment variable with which WebKitGTK draws without accelerated compositing.
/// When it is set, the user has decided, and the app leaves the setting alone.
pub const DISABLE_COMPOSITING: &str = "WEBKIT_DISABLE_COMPOSITING_MODE";

/// Folder of the DRM device nodes on Linux.
const DRM_DIR: &str = "/dev/dri";

/// Turns accelerated compositing off in `window`'s webview when the machine has no
/// GPU render node and [`DISABLE_COMPOSITING`] is not set. Returns whether it did.
#[cfg(target_os = "linux")]
pub fn disable_without_gpu(window: &tauri::WebviewWindow) -> tauri::Result<bool> {
    use webkit2gtk::{HardwareAccelerationPolicy, SettingsExt, WebViewExt};

    if std::env::var_os(DISABLE_COMPOSITING).is_some() || has_render_node(Path::new(DRM_DIR)) {
        return Ok(false);
    }
    window.with_webview(|webview| match webview.inner().settings() {
        Some(settings) => {
            settings.set_hardware_acceleration_policy(HardwareAccelerationPolicy::Never)
        }
        None => tracing::warn!("the webview has no settings, so compositing stays on"),
    })?;
    Ok(true)
}

/// Does nothing: other systems' webviews are not WebKitGTK.
#[cfg(not(target_os = "linux"))]
pub fn disable_without_gpu(_window: &tauri::WebviewWindow) -> tauri::Result<bool> {
    Ok(false)
}

/// Returns whether `dir` contains a DRM render node (`renderD128` and up), which a
/// GPU driver creates. A missing or unreadable folder counts as none.
fn has_render_node(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries
        .flatten()
        .any(|entry| entry.file_name().to_string_lossy().starts_with("renderD"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_node_found_among_devices() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("card0"), "").unwrap();
        assert!(!has_render_node(dir.path()));

        std::fs::write(dir.path().join("renderD128"), "").unwrap();
        assert!(has_render_node(dir.path()));
    }

    #[test]
    fn missing_drm_folder_has_no_render_node() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!has_render_node(&dir.path().join("dri")));
    }
}
