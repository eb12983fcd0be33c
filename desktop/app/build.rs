fn main() {
    check_default_server_url();
    tauri_build::build();
}

/// Fails the build when `ROOMLER_DEFAULT_SERVER_URL`, which the app bakes in as the
/// sign-in form's default server, is not an http or https URL with a host.
fn check_default_server_url() {
    println!("cargo:rerun-if-env-changed=ROOMLER_DEFAULT_SERVER_URL");
    let Ok(url) = std::env::var("ROOMLER_DEFAULT_SERVER_URL") else {
        return;
    };
    let host = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    if !matches!(host, Some(host) if !host.is_empty() && !host.starts_with('/')) {
        panic!(
            "invalid ROOMLER_DEFAULT_SERVER_URL {url:?}: expected http:// or https:// and a \
             host, e.g. https://chat.example.com"
        );
    }
}
