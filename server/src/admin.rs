//! `roomler-server admin`: account and room administration on the server's own data,
//! for the operator at the server's shell.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Subcommand;
use roomler_shared::limits;
use uuid::Uuid;

use crate::AppState;
use crate::auth::hash_password;
use crate::store::NewUser;

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Creates an account; the password is read from standard input.
    CreateUser {
        #[arg(long)]
        username: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        display_name: Option<String>,
    },
    /// Lists every account.
    ListUsers,
    /// Disables an account and ends its sessions.
    DisableUser { username: String },
    /// Enables a disabled account.
    EnableUser { username: String },
    /// Sets a new password, read from standard input, and ends the account's sessions.
    ResetPassword { username: String },
    /// Lists every room, direct rooms included.
    ListRooms,
    /// Deletes a room, its sub-rooms and their messages.
    DeleteRoom {
        /// The room's id or dotted path.
        room: String,
    },
    /// Prints the number of users, rooms, messages, files, sessions and events.
    Counts,
    /// Copies the SQLite database to a file while the server may be running.
    Backup {
        /// The backup file to write. It must not exist unless `--force` is given.
        target: PathBuf,
        /// Replaces `target` when it exists.
        #[arg(long)]
        force: bool,
    },
}

pub async fn run(state: AppState, command: AdminCommand) -> anyhow::Result<()> {
    let store = &state.store;
    match command {
        AdminCommand::CreateUser {
            username,
            email,
            display_name,
        } => {
            let username = limits::username(&username)?;
            let email = limits::email(&email)?;
            let password = read_password()?;
            limits::password(&password)?;
            let display_name = match display_name {
                Some(name) => limits::display_name(&name)?,
                None => username.display.clone(),
            };
            let password_hash = hash_password(password).await?;
            let user = store
                .create_user(NewUser {
                    username: username.display,
                    username_key: username.key,
                    display_name,
                    email,
                    password_hash,
                })
                .await?;
            println!("created user {} ({})", user.username, user.id);
        }
        AdminCommand::ListUsers => {
            println!("{:<36}  {:<32}  {:<8}  email", "id", "username", "state");
            for user in store.list_users().await? {
                let status = if user.disabled { "disabled" } else { "active" };
                println!(
                    "{:<36}  {:<32}  {:<8}  {}",
                    user.id, user.username, status, user.email
                );
            }
        }
        AdminCommand::DisableUser { username } => {
            let user = find_user(&state, &username).await?;
            store.set_disabled(user, true).await?;
            println!("disabled {username} and ended its sessions");
        }
        AdminCommand::EnableUser { username } => {
            let user = find_user(&state, &username).await?;
            store.set_disabled(user, false).await?;
            println!("enabled {username}");
        }
        AdminCommand::ResetPassword { username } => {
            let user = find_user(&state, &username).await?;
            let password = read_password()?;
            limits::password(&password)?;
            store
                .set_password(user, hash_password(password).await?)
                .await?;
            println!("set a new password for {username} and ended its sessions");
        }
        AdminCommand::ListRooms => {
            println!("{:<36}  {:<8}  {:>7}  path", "id", "kind", "members");
            for room in store.all_rooms().await? {
                println!(
                    "{:<36}  {:<8}  {:>7}  {}",
                    room.id,
                    room.kind.as_str(),
                    room.member_count,
                    room.path
                );
            }
        }
        AdminCommand::DeleteRoom { room } => {
            let record = match Uuid::parse_str(&room) {
                Ok(id) => store.room_by_id(id).await?,
                Err(_) => store.room_by_path(&limits::room_path(&room)?).await?,
            };
            let Some(record) = record else {
                bail!("no room has the id or path {room:?}")
            };
            let fanouts = store.delete_room(record.id).await?;
            state.publish(fanouts).await;
            println!("deleted {} and its sub-rooms", record.path);
        }
        AdminCommand::Counts => {
            let counts = store.counts().await?;
            println!("{}", serde_json::to_string_pretty(&counts)?);
        }
        AdminCommand::Backup { target, force } => {
            let crate::config::Database::Sqlite(path) = state.settings.database()? else {
                bail!("admin backup copies a SQLite database; back up MongoDB with mongodump");
            };
            if target.exists() && !force {
                bail!(
                    "{} exists; choose another file, or pass --force to replace it",
                    target.display()
                );
            }
            let sqlite = crate::store::sqlite::SqliteStore::open(&path)?;
            sqlite.backup(target.clone()).await?;
            println!("backed up {} to {}", path.display(), target.display());
        }
    }
    Ok(())
}

async fn find_user(state: &AppState, username: &str) -> anyhow::Result<Uuid> {
    let key = limits::username_key(username);
    let user = state.store.user_by_login(&key).await?;
    user.map(|user| user.id)
        .with_context(|| format!("no user is named {username:?}"))
}

/// Reads one line from standard input, so that passwords never appear in arguments or
/// shell history.
fn read_password() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("failed to read the password from stdin")?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    if password.is_empty() {
        bail!("no password on standard input; pipe it in, e.g. `echo \"$PASSWORD\" | ...`");
    }
    Ok(password)
}
