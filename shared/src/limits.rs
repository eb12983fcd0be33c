//! Validation of user-supplied fields, with each limit as a named constant.
//!
//! Every function returns the normalised value or an [`Invalid`] that names the field,
//! the rule it broke and what to do, so the server can answer with a clear 422 and the
//! client can check before it sends.

use unicode_normalization::UnicodeNormalization;

pub const USERNAME_MIN_CHARS: usize = 3;
pub const USERNAME_MAX_CHARS: usize = 32;
pub const DISPLAY_NAME_MAX_CHARS: usize = 64;
/// RFC 5321 limits a forward path to 256 octets, which leaves 254 for the address.
pub const EMAIL_MAX_CHARS: usize = 254;
pub const PASSWORD_MIN_CHARS: usize = 8;
/// Argon2 hashes any length, but an unbounded one lets a client make the server hash megabytes.
pub const PASSWORD_MAX_BYTES: usize = 1024;
pub const ROOM_NAME_MAX_CHARS: usize = 64;
/// Depth of sub-rooms, counting the top-level room: `a.b.c.d` is the deepest path.
pub const ROOM_MAX_DEPTH: usize = 4;
pub const ROOM_PASSWORD_MIN_CHARS: usize = 4;
pub const TOPIC_MAX_CHARS: usize = 500;
pub const BODY_MAX_CHARS: usize = 10_000;
pub const CLIENT_ID_MAX_CHARS: usize = 64;
pub const ATTACHMENTS_MAX: usize = 10;
/// Participants of a direct conversation, the caller included.
pub const DIRECT_MAX_MEMBERS: usize = 50;
pub const FILE_NAME_MAX_CHARS: usize = 255;

/// Names that would be confused with the server, with roles, or with the special
/// mentions `@room` and `@here`.
pub const RESERVED_USERNAMES: &[&str] = &[
    "admin",
    "administrator",
    "root",
    "system",
    "roomler",
    "room",
    "here",
    "everyone",
    "channel",
    "all",
    "moderator",
    "owner",
    "support",
    "help",
    "api",
    "me",
    "null",
    "undefined",
];

/// A field value that breaks a rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Invalid {
    /// The field's name in the request, e.g. `username`.
    pub field: &'static str,
    /// A sentence that says what is wrong and how to fix it.
    pub message: String,
}

impl Invalid {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Invalid {
            field,
            message: message.into(),
        }
    }
}

/// A username in the two forms the server keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username {
    /// NFKC-normalised, with the case as typed; shown to people.
    pub display: String,
    /// `display` lowercased; unique across accounts and matched by `@mentions`.
    pub key: String,
}

/// Whether `c` may appear in a username or room name (and so in a mention).
pub fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-'
}

pub fn username(input: &str) -> Result<Username, Invalid> {
    let display: String = input.trim().nfkc().collect();
    let chars = display.chars().count();
    if !(USERNAME_MIN_CHARS..=USERNAME_MAX_CHARS).contains(&chars) {
        return Err(Invalid::new(
            "username",
            format!(
                "The username must be {USERNAME_MIN_CHARS} to {USERNAME_MAX_CHARS} characters \
                 long, but has {chars}."
            ),
        ));
    }
    if let Some(bad) = display.chars().find(|c| !is_name_char(*c)) {
        return Err(Invalid::new(
            "username",
            format!("The username contains {bad:?}; use only letters, digits, '_' and '-'."),
        ));
    }
    if !display.chars().next().is_some_and(char::is_alphanumeric) {
        return Err(Invalid::new(
            "username",
            "The username must start with a letter or digit.",
        ));
    }
    let key = display.to_lowercase();
    if RESERVED_USERNAMES.contains(&key.as_str()) {
        return Err(Invalid::new(
            "username",
            format!("The username {display:?} is reserved; choose another."),
        ));
    }
    Ok(Username { display, key })
}

/// Normalises a username the way [`username`] does, for looking one up.
pub fn username_key(input: &str) -> String {
    input.trim().nfkc().collect::<String>().to_lowercase()
}

/// Validates an email address and returns it lowercased, so that uniqueness ignores case.
///
/// This checks the shape only (one `@`, a dotted domain, no spaces); whether the
/// mailbox exists is for a confirmation mail to tell.
pub fn email(input: &str) -> Result<String, Invalid> {
    let address = input.trim().nfkc().collect::<String>().to_lowercase();
    let invalid = |why: &str| {
        Invalid::new(
            "email",
            format!("The email address {address:?} is invalid: {why}."),
        )
    };
    if address.chars().count() > EMAIL_MAX_CHARS {
        return Err(invalid(&format!(
            "it is longer than {EMAIL_MAX_CHARS} characters"
        )));
    }
    let Some((local, domain)) = address.split_once('@') else {
        return Err(invalid("it has no '@'"));
    };
    if local.is_empty() || local.len() > 64 {
        return Err(invalid("the part before '@' must be 1 to 64 characters"));
    }
    if domain.contains('@') {
        return Err(invalid("it has more than one '@'"));
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 || labels.iter().any(|label| label.is_empty()) {
        return Err(invalid(
            "the domain after '@' needs a dot, like example.com",
        ));
    }
    if address.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid("it contains a space or control character"));
    }
    Ok(address)
}

pub fn password(input: &str) -> Result<(), Invalid> {
    let chars = input.chars().count();
    if chars < PASSWORD_MIN_CHARS {
        return Err(Invalid::new(
            "password",
            format!("The password must have at least {PASSWORD_MIN_CHARS} characters."),
        ));
    }
    if input.len() > PASSWORD_MAX_BYTES {
        return Err(Invalid::new(
            "password",
            format!("The password must be at most {PASSWORD_MAX_BYTES} bytes long."),
        ));
    }
    Ok(())
}

pub fn display_name(input: &str) -> Result<String, Invalid> {
    let name: String = input.trim().nfkc().collect();
    let chars = name.chars().count();
    if chars == 0 || chars > DISPLAY_NAME_MAX_CHARS {
        return Err(Invalid::new(
            "display_name",
            format!("The display name must be 1 to {DISPLAY_NAME_MAX_CHARS} characters long."),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(Invalid::new(
            "display_name",
            "The display name contains a control character.",
        ));
    }
    Ok(name)
}

/// Validates one segment of a room path and returns it NFKC-normalised and lowercased.
pub fn room_name(input: &str) -> Result<String, Invalid> {
    let name = input.trim().nfkc().collect::<String>().to_lowercase();
    let chars = name.chars().count();
    if chars == 0 || chars > ROOM_NAME_MAX_CHARS {
        return Err(Invalid::new(
            "name",
            format!("The room name must be 1 to {ROOM_NAME_MAX_CHARS} characters long."),
        ));
    }
    if let Some(bad) = name.chars().find(|c| !is_name_char(*c)) {
        let hint = if bad == '.' {
            " The dot separates sub-rooms: create the sub-room with parent_id instead."
        } else {
            ""
        };
        return Err(Invalid::new(
            "name",
            format!(
                "The room name {name:?} contains {bad:?}; use only letters, digits, '_' and \
                 '-'.{hint}"
            ),
        ));
    }
    Ok(name)
}

/// Normalises a dotted room path as typed to join, e.g. ` Team.Frontend ` to `team.frontend`.
pub fn room_path(input: &str) -> Result<String, Invalid> {
    let segments: Vec<&str> = input.trim().split('.').collect();
    if segments.len() > ROOM_MAX_DEPTH {
        return Err(Invalid::new(
            "name",
            format!("Room paths have at most {ROOM_MAX_DEPTH} segments."),
        ));
    }
    let mut normalised = Vec::with_capacity(segments.len());
    for segment in segments {
        normalised.push(room_name(segment)?);
    }
    Ok(normalised.join("."))
}

pub fn room_password(input: &str) -> Result<(), Invalid> {
    if input.chars().count() < ROOM_PASSWORD_MIN_CHARS || input.len() > PASSWORD_MAX_BYTES {
        return Err(Invalid::new(
            "password",
            format!(
                "The room password must have {ROOM_PASSWORD_MIN_CHARS} characters to \
                 {PASSWORD_MAX_BYTES} bytes."
            ),
        ));
    }
    Ok(())
}

pub fn topic(input: &str) -> Result<String, Invalid> {
    let topic = input.trim().to_string();
    if topic.chars().count() > TOPIC_MAX_CHARS {
        return Err(Invalid::new(
            "topic",
            format!("The topic must be at most {TOPIC_MAX_CHARS} characters long."),
        ));
    }
    Ok(topic)
}

pub fn body(input: &str) -> Result<(), Invalid> {
    if input.trim().is_empty() {
        return Err(Invalid::new(
            "body",
            "The message body is empty; write something to send.",
        ));
    }
    let chars = input.chars().count();
    if chars > BODY_MAX_CHARS {
        return Err(Invalid::new(
            "body",
            format!(
                "The message has {chars} characters, more than the limit of {BODY_MAX_CHARS}; \
                 split it or attach it as a file."
            ),
        ));
    }
    Ok(())
}

pub fn client_id(input: &str) -> Result<(), Invalid> {
    let valid_chars = input
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if input.is_empty() || input.len() > CLIENT_ID_MAX_CHARS || !valid_chars {
        return Err(Invalid::new(
            "client_id",
            format!(
                "The client_id must be 1 to {CLIENT_ID_MAX_CHARS} ASCII letters, digits, '-' \
                 or '_', such as a UUID."
            ),
        ));
    }
    Ok(())
}

/// Cleans an uploaded file's name: no folders, no control characters, bounded length.
pub fn file_name(input: &str) -> String {
    let base = input.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = base
        .nfc()
        .filter(|c| !c.is_control() && *c != '"')
        .take(FILE_NAME_MAX_CHARS)
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').to_string();
    if cleaned.is_empty() {
        "file".to_string()
    } else {
        cleaned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn username_normalises_nfkc_and_case() {
        let name = username("Ｂｏｂ").unwrap();
        assert_eq!(name.display, "Bob");
        assert_eq!(name.key, "bob");
    }

    #[test]
    fn username_rejects_reserved_names() {
        assert_eq!(username("Admin").unwrap_err().field, "username");
        assert!(username("here").is_err());
        assert!(username("room").is_err());
    }

    #[test]
    fn username_rejects_bad_lengths_and_chars() {
        assert!(username("ab").is_err());
        assert!(username(&"a".repeat(33)).is_err());
        assert!(username("bob smith").is_err());
        assert!(username("bob.smith").is_err());
        assert!(username("_bob").is_err());
        assert!(username("björn_2").is_ok());
    }

    #[test]
    fn email_lowercases_and_checks_shape() {
        assert_eq!(email(" Bob@Example.COM ").unwrap(), "bob@example.com");
        assert!(email("bob").is_err());
        assert!(email("bob@localhost").is_err());
        assert!(email("a@b@c.d").is_err());
        assert!(email("@example.com").is_err());
        assert!(email("bob@exa mple.com").is_err());
        assert!(email(&format!("{}@example.com", "a".repeat(250))).is_err());
    }

    #[test]
    fn password_limits() {
        assert!(password("short").is_err());
        assert!(password("long enough").is_ok());
        assert!(password(&"x".repeat(PASSWORD_MAX_BYTES + 1)).is_err());
    }

    #[test]
    fn room_name_rejects_dots_with_hint() {
        let error = room_name("team.frontend").unwrap_err();
        assert!(error.message.contains("parent_id"), "{}", error.message);
        assert_eq!(room_name(" General ").unwrap(), "general");
    }

    #[test]
    fn room_path_normalises_each_segment() {
        assert_eq!(room_path("Team.Frontend").unwrap(), "team.frontend");
        assert!(room_path("team..frontend").is_err());
        assert!(room_path("a.b.c.d.e").is_err());
    }

    #[test]
    fn body_rejects_empty_and_too_long() {
        assert!(body("   ").is_err());
        assert!(body(&"x".repeat(BODY_MAX_CHARS)).is_ok());
        let error = body(&"x".repeat(BODY_MAX_CHARS + 1)).unwrap_err();
        assert!(error.message.contains("10001"), "{}", error.message);
    }

    #[test]
    fn client_id_accepts_uuids_only_shape() {
        assert!(client_id("0b6f7c1e-2a8d-4c1b-9f1e-3f5b8a9d1c2e").is_ok());
        assert!(client_id("").is_err());
        assert!(client_id("has space").is_err());
        assert!(client_id(&"a".repeat(65)).is_err());
    }

    #[test]
    fn file_name_strips_folders_and_quotes() {
        assert_eq!(file_name("../../etc/passwd"), "passwd");
        assert_eq!(
            file_name("C:\\Users\\me\\report \"final\".pdf"),
            "report final.pdf"
        );
        assert_eq!(file_name(".."), "file");
        assert_eq!(file_name(".bashrc"), "bashrc");
    }
}
