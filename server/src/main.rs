//! `roomler-server`: runs the Roomler server, or administers its data.
//!
//! `roomler-server` alone serves on 127.0.0.1:3000 with SQLite in `./data`;
//! `roomler-server --help` lists the settings.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use roomler_server::admin::{self, AdminCommand};
use roomler_server::config::Settings;
use roomler_server::migrate::{self, MigrateArgs};
use roomler_server::{AppState, Server};
use tracing_subscriber::EnvFilter;

#[derive(Debug, Parser)]
#[command(version, about = "The Roomler team chat server")]
struct Cli {
    /// TOML settings file; environment variables override it.
    #[arg(long, env = "ROOMLER_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Listen address, e.g. 127.0.0.1:3000 (also ROOMLER_ADDR).
    #[arg(long, global = true)]
    addr: Option<std::net::SocketAddr>,
    /// Folder for the database and uploaded files (also ROOMLER_DATA_DIR).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serves the API (the default).
    Serve,
    /// Administers accounts and rooms.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Copies a SQLite database into MongoDB; run it again to resume.
    Migrate(MigrateArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut settings = Settings::load(cli.config.as_deref())?;
    if let Some(addr) = cli.addr {
        settings.addr = addr;
    }
    if let Some(data_dir) = cli.data_dir {
        settings.data_dir = data_dir;
    }
    init_logging(&settings.log_format);

    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(AppState::open(settings)?).await,
        Command::Admin(command) => {
            require_existing_database(&settings, &command)?;
            admin::run(AppState::open(settings)?, command).await
        }
        // Reads and writes only the databases it names, not the configured store.
        Command::Migrate(args) => migrate::run(args).await,
    }
}

/// Admin commands other than `create-user` work on an existing deployment, so a
/// wrong `--data-dir` must fail instead of creating an empty database.
fn require_existing_database(settings: &Settings, command: &AdminCommand) -> anyhow::Result<()> {
    if matches!(command, AdminCommand::CreateUser { .. }) {
        return Ok(());
    }
    if let roomler_server::config::Database::Sqlite(path) = settings.database()?
        && !path.exists()
    {
        anyhow::bail!(
            "no database at {}; pass the server's --data-dir (or ROOMLER_DATA_DIR or DB_CONN)",
            path.display()
        );
    }
    Ok(())
}

async fn serve(state: AppState) -> anyhow::Result<()> {
    let shutdown = state.shutdown.clone();
    let server = Server::bind(state).await?;
    let addr = server.local_addr();
    tracing::info!(%addr, version = env!("CARGO_PKG_VERSION"), "roomler-server listening");
    // A line on stdout that scripts can wait for, with the port that was bound.
    println!("roomler-server listening on http://{addr}");

    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down: closing WebSockets and finishing requests");
        shutdown.cancel();
    });
    server
        .run()
        .await
        .context("the server stopped with an error")?;
    tracing::info!("roomler-server stopped");
    Ok(())
}

async fn wait_for_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = signal(SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

/// Libraries whose debug and trace output can contain message bodies (the HTML
/// parser), tokens or request bytes (the HTTP and WebSocket stacks); they are capped
/// whatever `RUST_LOG` says, so that no level of logging leaks them.
const CAPPED_TARGETS: &[&str] = &[
    "html5ever=off",
    "markup5ever=off",
    "hyper=info",
    "hyper_util=info",
    "h2=info",
    "tungstenite=info",
    "tokio_tungstenite=info",
    "rusqlite=info",
];

fn init_logging(format: &str) {
    let mut filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("roomler_server=info,tower_http=info,warn"));
    for directive in CAPPED_TARGETS {
        filter = filter.add_directive(directive.parse().expect("a valid directive"));
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}
