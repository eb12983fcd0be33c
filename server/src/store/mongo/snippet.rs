//! Search snippets, which MongoDB does not make: a window of the body around the
//! first match, HTML-escaped, with each matching word wrapped in `<mark>`.

use std::ops::Range;

use roomler_shared::search::escape_html;

/// Words of the body that a snippet shows at most, as in the SQLite backend's
/// `snippet()` call.
const SNIPPET_WORDS: usize = 16;

/// Words shown before the first match when the body is longer than a snippet.
const WORDS_BEFORE_MATCH: usize = 4;

const ELLIPSIS: &str = "…";

/// Builds the snippet of `body` for a search for `query_words`.
///
/// A word is a run of letters and digits, and it matches when it equals a word of the
/// query ignoring case. A body cut at either end gets `…` there.
pub(super) fn snippet(body: &str, query_words: &[String]) -> String {
    let terms: Vec<String> = query_words
        .iter()
        .flat_map(|word| {
            word_spans(word)
                .into_iter()
                .map(|span| word[span].to_lowercase())
        })
        .collect();
    let spans = word_spans(body);
    if spans.is_empty() {
        return escape_html(body);
    }
    let matched: Vec<bool> = spans
        .iter()
        .map(|span| terms.contains(&body[span.clone()].to_lowercase()))
        .collect();

    let count = spans.len();
    let first_match = matched.iter().position(|&hit| hit).unwrap_or(0);
    let start = if count <= SNIPPET_WORDS {
        0
    } else {
        first_match
            .saturating_sub(WORDS_BEFORE_MATCH)
            .min(count - SNIPPET_WORDS)
    };
    let end = (start + SNIPPET_WORDS).min(count);
    let text_start = if start == 0 { 0 } else { spans[start].start };
    let text_end = if end == count {
        body.len()
    } else {
        spans[end - 1].end
    };

    let mut out = String::new();
    if start > 0 {
        out.push_str(ELLIPSIS);
    }
    let mut cursor = text_start;
    for index in start..end {
        let span = spans[index].clone();
        out.push_str(&escape_html(&body[cursor..span.start]));
        let word = escape_html(&body[span.clone()]);
        if matched[index] {
            out.push_str("<mark>");
            out.push_str(&word);
            out.push_str("</mark>");
        } else {
            out.push_str(&word);
        }
        cursor = span.end;
    }
    out.push_str(&escape_html(&body[cursor..text_end]));
    if end < count {
        out.push_str(ELLIPSIS);
    }
    out
}

/// Finds the byte ranges of the runs of letters and digits in `text`.
fn word_spans(text: &str) -> Vec<Range<usize>> {
    let mut spans = Vec::new();
    let mut start = None;
    for (index, character) in text.char_indices() {
        match (character.is_alphanumeric(), start) {
            (true, None) => start = Some(index),
            (false, Some(begin)) => {
                spans.push(begin..index);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(begin) = start {
        spans.push(begin..text.len());
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(query: &str) -> Vec<String> {
        query.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn snippet_marks_words_ignoring_case() {
        assert_eq!(
            snippet("Deploy the build, then deploy again.", &words("deploy")),
            "<mark>Deploy</mark> the build, then <mark>deploy</mark> again."
        );
    }

    #[test]
    fn snippet_marks_whole_words_only() {
        assert_eq!(
            snippet("redeploy deploy", &words("deploy")),
            "redeploy <mark>deploy</mark>"
        );
    }

    #[test]
    fn snippet_escapes_html() {
        assert_eq!(
            snippet("<b>deploy</b> & \"ship\"", &words("deploy")),
            "&lt;b&gt;<mark>deploy</mark>&lt;/b&gt; &amp; &quot;ship&quot;"
        );
    }

    #[test]
    fn snippet_cuts_long_body_around_match() {
        let body = (1..=40)
            .map(|n| format!("w{n}"))
            .collect::<Vec<_>>()
            .join(" ");
        let text = snippet(&body, &words("w20"));
        assert_eq!(
            text,
            "…w16 w17 w18 w19 <mark>w20</mark> w21 w22 w23 w24 w25 w26 w27 w28 w29 w30 w31…"
        );
    }

    #[test]
    fn snippet_of_late_match_ends_at_body_end() {
        let body = (1..=20)
            .map(|n| format!("w{n}"))
            .collect::<Vec<_>>()
            .join(" ");
        let text = snippet(&format!("{body}."), &words("w20"));
        assert!(text.starts_with("…w5 "), "{text}");
        assert!(text.ends_with("<mark>w20</mark>."), "{text}");
    }

    #[test]
    fn snippet_without_match_shows_start() {
        assert_eq!(snippet("plain text", &words("other")), "plain text");
        assert_eq!(snippet("", &words("other")), "");
    }
}
