//! Full-text search helpers that the server's and the client's SQLite FTS5 indexes
//! share: the query built from what a user typed, and the snippet turned into safe HTML.

/// The character that FTS5's `snippet()` is asked to put before each match.
pub const SNIPPET_OPEN: char = '\u{1}';
/// The character that FTS5's `snippet()` is asked to put after each match.
pub const SNIPPET_CLOSE: char = '\u{2}';

/// Turns what a user typed into an FTS5 query that matches every word, the last one as a
/// prefix. Each word is quoted, so FTS5 operators in the input (`OR`, `NEAR`, `*`, `"`)
/// are taken literally. Returns `None` when the input has no words.
pub fn fts5_query(input: &str) -> Option<String> {
    let words: Vec<String> = input
        .split_whitespace()
        .map(|word| format!("\"{}\"", word.replace('"', "\"\"")))
        .collect();
    let (last, rest) = words.split_last()?;
    let mut terms = rest.to_vec();
    terms.push(format!("{last}*"));
    Some(terms.join(" "))
}

/// Escapes text for HTML element content and double-quoted attribute values.
pub fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Converts a raw FTS5 snippet, with matches between [`SNIPPET_OPEN`] and
/// [`SNIPPET_CLOSE`], into escaped HTML with each match in `<mark>`. The tags always
/// pair up, even when a stray marker character came from the message itself.
pub fn snippet_html(raw: &str) -> String {
    let escaped = escape_html(raw);
    let mut marked = String::with_capacity(escaped.len() + 32);
    let mut open = false;
    for character in escaped.chars() {
        match character {
            SNIPPET_OPEN if !open => {
                marked.push_str("<mark>");
                open = true;
            }
            SNIPPET_CLOSE if open => {
                marked.push_str("</mark>");
                open = false;
            }
            SNIPPET_OPEN | SNIPPET_CLOSE => {}
            other => marked.push(other),
        }
    }
    if open {
        marked.push_str("</mark>");
    }
    marked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippet_tags_pair_up() {
        assert_eq!(snippet_html("a \u{1}b\u{2} c"), "a <mark>b</mark> c");
        assert_eq!(
            snippet_html("\u{1}x \u{1}b\u{2} \u{2}y"),
            "<mark>x b</mark> y"
        );
        assert_eq!(snippet_html("open \u{1}b"), "open <mark>b</mark>");
    }

    #[test]
    fn snippet_escapes_markup() {
        assert_eq!(
            snippet_html("<b>\u{1}x&y\u{2}</b> \"q\""),
            "&lt;b&gt;<mark>x&amp;y</mark>&lt;/b&gt; &quot;q&quot;"
        );
    }

    #[test]
    fn query_quotes_words_and_prefixes_last() {
        assert_eq!(
            fts5_query("hello wor").as_deref(),
            Some("\"hello\" \"wor\"*")
        );
        assert_eq!(fts5_query("a\"b OR").as_deref(), Some("\"a\"\"b\" \"OR\"*"));
        assert_eq!(fts5_query("   "), None);
    }
}
