//! Message bodies: Markdown to safe HTML, mentions, emoji shortcodes and plain-text excerpts.
//!
//! This module is the one implementation of these rules, so the server and the client
//! always agree on what a body shows and whom it mentions.
//!
//! Bodies are CommonMark with GitHub's strikethrough, tables, task lists and autolinks of
//! bare `http://`, `https://` and `www.` URLs. Chat conventions change a few things:
//!
//! - A single line break in a paragraph is kept as a line break (`<br>`).
//! - Raw HTML is never rendered. Tags and HTML blocks are shown as the text the user typed,
//!   and no mentions, shortcodes or links are recognised inside them. Text between inline
//!   tags is normal text.
//! - Images are not embedded. An image becomes a link to the image URL, with the alt text
//!   (or the URL when the alt text is empty) as the link text.
//! - Links keep their target only when it is an absolute `http`, `https` or `mailto` URL.
//!   Other links, relative ones included, are rendered as their text only.
//! - Tables lose their column alignment, because pulldown-cmark writes it as a `style`
//!   attribute, which the sanitizer removes.
//!
//! [`render_html`] passes its output through an ammonia allow-list as a second line of
//! defence, so even a bug in the event rewriting cannot add a script, a style or an
//! event handler attribute.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::LazyLock;

use ammonia::UrlRelative;
use linkify::{LinkFinder, LinkKind};
use pulldown_cmark::{
    CodeBlockKind, CowStr, Event, LinkType, Options, Parser, Tag, TagEnd, TextMergeStream,
};
use unicode_normalization::UnicodeNormalization;

/// Maximum length of a mentioned username, in characters. A longer run of name characters
/// after `@` is not a mention.
const MAX_MENTION_CHARS: usize = 32;

/// The `rel` attribute that the sanitizer sets on every link.
const LINK_REL: &str = "noopener noreferrer nofollow";

/// Prefixes, compared case-insensitively, of the link targets that stay clickable.
const ALLOWED_URL_PREFIXES: [&str; 3] = ["http://", "https://", "mailto:"];

/// Elements that the sanitizer keeps. Everything else is removed, but the text of removed
/// elements stays, except inside `script` and `style`, which ammonia drops with their content.
/// `input` is there for task list checkboxes only.
const ALLOWED_TAGS: [&str; 27] = [
    "p",
    "br",
    "strong",
    "em",
    "del",
    "code",
    "pre",
    "blockquote",
    "ul",
    "ol",
    "li",
    "a",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "span",
    "input",
];

/// The sanitizer, built once because its allow-lists never change.
static SANITIZER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(build_sanitizer);

/// Renders a Markdown body to HTML that is safe to insert into a page.
pub fn render_html(body: &str) -> String {
    let mut rewriter = EventRewriter::default();
    let events = rewriter.rewrite(body);

    let mut html = String::with_capacity(body.len() * 2);
    pulldown_cmark::html::push_html(&mut html, events.into_iter());

    SANITIZER.clean(&html).to_string()
}

/// Mentions written in a body, outside code spans and code blocks.
///
/// Mentions in link text, image alt text and raw HTML do not count either, so that this
/// matches the mention spans that [`render_html`] writes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MentionTokens {
    /// Usernames as written after `@`, NFKC-normalised and lowercased, deduplicated, in order
    /// of first appearance. `room` and `here` are not included, because the flags below record them.
    pub usernames: Vec<String>,
    /// Whether the body contains `@room`.
    pub room: bool,
    /// Whether the body contains `@here`.
    pub here: bool,
}

impl MentionTokens {
    /// Records one mention, given as a normalised name.
    fn add(&mut self, normalized: &str) {
        match normalized {
            "room" => self.room = true,
            "here" => self.here = true,
            _ if self.usernames.iter().any(|name| name == normalized) => {}
            _ => self.usernames.push(normalized.to_owned()),
        }
    }
}

/// Extracts the mentions of a body.
///
/// A mention is `@` followed by 1 to 32 Unicode alphanumerics, `_` or `-`. The `@` must
/// follow a character that cannot be part of a name, or start the body or a formatted span,
/// so `bob@example.com` is not a mention. Names are matched case-insensitively, and so are `@room` and `@here`.
pub fn extract_mentions(body: &str) -> MentionTokens {
    let mut rewriter = EventRewriter::default();
    rewriter.rewrite(body);
    rewriter.mentions
}

/// Replaces `:shortcode:` with its emoji, e.g. `:tada:` with 🎉; unknown shortcodes stay as they are.
///
/// Shortcodes are GitHub's (gemoji) names as the `emojis` crate lists them and match
/// case-sensitively. This function does not parse Markdown, so callers must leave code spans
/// and code blocks out themselves.
pub fn expand_shortcodes(text: &str) -> String {
    let mut expanded = String::with_capacity(text.len());
    let mut rest = text;

    while let Some(colon) = rest.find(':') {
        expanded.push_str(&rest[..colon]);
        let after_colon = &rest[colon + 1..];

        match shortcode_at_start(after_colon) {
            Some((emoji, name_len)) => {
                expanded.push_str(emoji);
                rest = &after_colon[name_len + 1..];
            }
            // The next colon may open a shortcode, as in `12:30:tada:`.
            None => {
                expanded.push(':');
                rest = after_colon;
            }
        }
    }

    expanded.push_str(rest);
    expanded
}

/// Turns a reaction as a user typed it into the emoji itself. A Unicode emoji that
/// `emojis::get` finds, skin-tone variants included, is returned as is, and a shortcode with
/// or without colons (`tada` or `:tada:`) becomes its emoji. Returns `None` for anything else.
///
/// Surrounding whitespace is ignored. An emoji typed without its variation selector
/// (U+FE0F) is returned in the fully qualified form, so `❤` and `❤️` are the same reaction.
pub fn normalize_emoji(input: &str) -> Option<String> {
    let input = input.trim();

    if let Some(emoji) = emojis::get(input) {
        return Some(emoji.as_str().to_owned());
    }

    let shortcode = input
        .strip_prefix(':')
        .and_then(|inner| inner.strip_suffix(':'))
        .unwrap_or(input);
    emojis::get_by_shortcode(shortcode).map(|emoji| emoji.as_str().to_owned())
}

/// Returns the start of a body as plain text, at most `max_chars` characters, ending with `…`
/// when cut. Markdown syntax is removed and whitespace collapsed to single spaces. Used for
/// reply previews.
///
/// The `…` counts towards `max_chars`. Shortcodes are expanded outside code, raw HTML
/// stays as typed, and images contribute their alt text.
///
/// The result is plain text, not HTML, so it must be escaped before it is inserted into a page.
///
/// NOTE: the cut counts Unicode scalar values, so it can split a multi-character emoji
/// (a ZWJ sequence or a skin-tone variant) or a letter with combining marks.
pub fn excerpt(body: &str, max_chars: usize) -> String {
    let mut text = PlainText::default();
    let mut in_code_block = false;

    for event in parse(body) {
        match event {
            Event::Start(Tag::CodeBlock(_)) => in_code_block = true,
            Event::End(TagEnd::CodeBlock) => {
                in_code_block = false;
                text.push_break();
            }
            Event::Start(tag) if !is_inline(&tag) => text.push_break(),
            Event::End(tag) if !is_inline_end(tag) => text.push_break(),
            Event::Text(content) if in_code_block => text.push_str(&content),
            Event::Text(content) => text.push_str(&expand_shortcodes(&content)),
            Event::Code(content) | Event::Html(content) | Event::InlineHtml(content) => {
                text.push_str(&content);
            }
            Event::SoftBreak | Event::HardBreak | Event::Rule => text.push_break(),
            _ => {}
        }

        // One character past the limit is enough to know that the text must be cut.
        if text.chars > max_chars {
            break;
        }
    }

    text.truncate(max_chars)
}

/// Parses a body with the Markdown extensions that messages support, with adjacent text
/// events merged so that a mention or URL is never split across two of them.
fn parse(body: &str) -> TextMergeStream<'_, Parser<'_>> {
    let options =
        Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TABLES | Options::ENABLE_TASKLISTS;
    TextMergeStream::new(Parser::new_ext(body, options))
}

/// Rewrites pulldown-cmark's events into the events of a safe message, and collects the
/// mentions on the way.
///
/// The rewriting escapes raw HTML, expands shortcodes outside code, turns bare URLs into
/// links and mentions into mention spans, drops links with disallowed targets and turns
/// images into links.
#[derive(Default)]
struct EventRewriter<'a> {
    output: Vec<Event<'a>>,
    mentions: MentionTokens,
    in_code_block: bool,
    /// Lines of the HTML block being read, if any.
    html_block: Option<String>,
    /// Links and images that are open at this point, innermost last.
    open_links: Vec<OpenLink<'a>>,
}

/// A link or image whose end event has not come yet.
struct OpenLink<'a> {
    /// Whether the rewriter wrote a link start, so the end must be written too.
    anchor_written: bool,
    /// Length of the output after the link start, to tell whether the link got any text.
    content_start: usize,
    /// The target of an image, written as the link text when the alt text is empty.
    image_url: Option<CowStr<'a>>,
}

impl<'a> EventRewriter<'a> {
    fn rewrite(&mut self, body: &'a str) -> Vec<Event<'a>> {
        for event in parse(body) {
            self.handle(event);
        }
        std::mem::take(&mut self.output)
    }

    fn handle(&mut self, event: Event<'a>) {
        match event {
            Event::Start(tag) => self.start(tag),
            Event::End(tag) => self.end(tag),
            Event::Text(text) => self.text(text),
            Event::Html(html) | Event::InlineHtml(html) => self.raw_html(&html),
            Event::SoftBreak => self.output.push(Event::HardBreak),
            other => self.output.push(other),
        }
    }

    fn start(&mut self, tag: Tag<'a>) {
        match tag {
            Tag::CodeBlock(kind) => {
                self.in_code_block = true;
                let kind = sanitize_code_block_kind(kind);
                self.output.push(Event::Start(Tag::CodeBlock(kind)));
            }
            Tag::HtmlBlock => self.html_block = Some(String::new()),
            Tag::Link {
                link_type,
                dest_url,
                title,
                id,
            } => {
                let allowed = link_type == LinkType::Email || is_allowed_url(&dest_url);
                let link = Tag::Link {
                    link_type,
                    dest_url,
                    title,
                    id,
                };
                self.open_link(allowed.then_some(link), None);
            }
            Tag::Image {
                link_type,
                dest_url,
                title,
                id,
            } => {
                // A link inside a link is invalid HTML, so an image in a link shows only its alt text.
                let allowed = self.open_links.is_empty() && is_allowed_url(&dest_url);
                let link = Tag::Link {
                    link_type,
                    dest_url: dest_url.clone(),
                    title,
                    id,
                };
                self.open_link(allowed.then_some(link), Some(dest_url));
            }
            other => self.output.push(Event::Start(other)),
        }
    }

    fn end(&mut self, tag: TagEnd) {
        match tag {
            TagEnd::CodeBlock => {
                self.in_code_block = false;
                self.output.push(Event::End(tag));
            }
            TagEnd::HtmlBlock => self.close_html_block(),
            TagEnd::Link | TagEnd::Image => self.close_link(),
            other => self.output.push(Event::End(other)),
        }
    }

    /// Opens a link or image. `link` is `None` when its target is not allowed, and then
    /// only its text is written.
    fn open_link(&mut self, link: Option<Tag<'a>>, image_url: Option<CowStr<'a>>) {
        let anchor_written = link.is_some();
        if let Some(link) = link {
            self.output.push(Event::Start(link));
        }
        self.open_links.push(OpenLink {
            anchor_written,
            content_start: self.output.len(),
            image_url,
        });
    }

    fn close_link(&mut self) {
        let Some(link) = self.open_links.pop() else {
            return;
        };
        if !link.anchor_written {
            return;
        }

        let is_empty = self.output.len() == link.content_start;
        if let (true, Some(url)) = (is_empty, link.image_url) {
            self.output.push(Event::Text(url));
        }
        self.output.push(Event::End(TagEnd::Link));
    }

    fn text(&mut self, text: CowStr<'a>) {
        if self.in_code_block {
            self.output.push(Event::Text(text));
        } else if !self.open_links.is_empty() {
            // Link text gets shortcodes but no nested links or mentions.
            self.output
                .push(Event::Text(expand_shortcodes(&text).into()));
        } else {
            self.rich_text(&text);
        }
    }

    /// Writes normal text with its bare URLs as links, its mentions as mention spans and
    /// its shortcodes expanded.
    fn rich_text(&mut self, text: &str) {
        for piece in split_rich_text(text) {
            match piece {
                TextPiece::Plain(plain) => {
                    self.output
                        .push(Event::Text(expand_shortcodes(plain).into()));
                }
                TextPiece::Url { text, href } => self.autolink(text, href),
                TextPiece::Mention(name) => self.mention(name),
            }
        }
    }

    fn autolink(&mut self, text: &str, href: String) {
        self.output.push(Event::Start(Tag::Link {
            link_type: LinkType::Autolink,
            dest_url: href.into(),
            title: CowStr::Borrowed(""),
            id: CowStr::Borrowed(""),
        }));
        self.output.push(Event::Text(text.to_owned().into()));
        self.output.push(Event::End(TagEnd::Link));
    }

    /// Records a mention and writes its span. `@room` and `@here` get their normalised
    /// name as `data-mention`, usernames the name as written.
    fn mention(&mut self, written: &str) {
        let normalized = normalize_username(written);
        self.mentions.add(&normalized);

        let target = match normalized.as_str() {
            "room" | "here" => normalized.as_str(),
            _ => written,
        };
        let span = format!(
            r#"<span class="mention" data-mention="{}">@{}</span>"#,
            escape_html(target),
            escape_html(written),
        );
        self.output.push(Event::InlineHtml(span.into()));
    }

    /// Writes raw HTML as text, so the user sees what they typed.
    fn raw_html(&mut self, html: &str) {
        match &mut self.html_block {
            Some(block) => block.push_str(html),
            None => self.output.push(Event::Text(html.to_owned().into())),
        }
    }

    /// Writes a finished HTML block as a paragraph of text that keeps its line breaks.
    fn close_html_block(&mut self) {
        let Some(block) = self.html_block.take() else {
            return;
        };

        self.output.push(Event::Start(Tag::Paragraph));
        for (index, line) in block.trim_end().lines().enumerate() {
            if index > 0 {
                self.output.push(Event::HardBreak);
            }
            self.output.push(Event::Text(line.to_owned().into()));
        }
        self.output.push(Event::End(TagEnd::Paragraph));
    }
}

/// A part of a normal text event.
#[derive(Debug, PartialEq, Eq)]
enum TextPiece<'t> {
    Plain(&'t str),
    /// A bare URL and the target of its link.
    Url {
        text: &'t str,
        href: String,
    },
    /// A mention, with the name as written after `@`.
    Mention(&'t str),
}

/// Splits normal text into plain text, bare URLs and mentions.
fn split_rich_text(text: &str) -> Vec<TextPiece<'_>> {
    let mut finder = LinkFinder::new();
    finder.kinds(&[LinkKind::Url]).url_must_have_scheme(false);

    let mut pieces = Vec::new();
    let mut plain_start = 0;
    for link in finder.links(text) {
        let Some(href) = autolink_href(link.as_str()) else {
            continue;
        };
        split_mentions(text, plain_start..link.start(), &mut pieces);
        pieces.push(TextPiece::Url {
            text: link.as_str(),
            href,
        });
        plain_start = link.end();
    }
    split_mentions(text, plain_start..text.len(), &mut pieces);

    pieces
}

/// Returns the link target of a URL that linkify found, or `None` when it is not one that
/// GitHub autolinks: those start with `http://`, `https://` or `www.`.
///
/// `www.` URLs get `https://`, where the GFM specification inserts `http://`, so that the
/// first request of a click is not sent unencrypted.
fn autolink_href(url: &str) -> Option<String> {
    if starts_with_ignore_case(url, "http://") || starts_with_ignore_case(url, "https://") {
        Some(url.to_owned())
    } else if starts_with_ignore_case(url, "www.") {
        Some(format!("https://{url}"))
    } else {
        None
    }
}

/// Splits `text[range]` into plain text and mentions. The character before the range
/// counts when deciding whether an `@` at its start begins a mention.
fn split_mentions<'t>(text: &'t str, range: Range<usize>, pieces: &mut Vec<TextPiece<'t>>) {
    let mut plain_start = range.start;
    let mut search_start = range.start;

    while let Some(offset) = text[search_start..range.end].find('@') {
        let at = search_start + offset;
        let name_start = at + 1;
        search_start = name_start;

        let Some(name_end) = mention_name_end(text, at, range.end) else {
            continue;
        };
        if plain_start < at {
            pieces.push(TextPiece::Plain(&text[plain_start..at]));
        }
        pieces.push(TextPiece::Mention(&text[name_start..name_end]));
        plain_start = name_end;
        search_start = name_end;
    }

    if plain_start < range.end {
        pieces.push(TextPiece::Plain(&text[plain_start..range.end]));
    }
}

/// Returns the byte offset where the name of the mention whose `@` is at byte `at` ends,
/// or `None` when that `@` does not start a mention. The name stops at `end` at the latest.
fn mention_name_end(text: &str, at: usize, end: usize) -> Option<usize> {
    let follows_name_char = text[..at].chars().next_back().is_some_and(is_name_char);
    if follows_name_char {
        return None;
    }

    let after_at = &text[at + 1..end];
    let name_len = after_at
        .char_indices()
        .find(|&(_, c)| !is_name_char(c))
        .map_or(after_at.len(), |(index, _)| index);
    let name_chars = after_at[..name_len].chars().count();

    (1..=MAX_MENTION_CHARS)
        .contains(&name_chars)
        .then_some(at + 1 + name_len)
}

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-'
}

/// Normalises a username as written for comparison: NFKC, then lowercase.
fn normalize_username(written: &str) -> String {
    written.nfkc().collect::<String>().to_lowercase()
}

/// Returns the emoji of the shortcode that `text` starts with, where `text` follows an
/// opening colon, and the byte length of the name before the closing colon.
fn shortcode_at_start(text: &str) -> Option<(&'static str, usize)> {
    let name_len = text.find(':')?;
    let name = &text[..name_len];

    let is_candidate = !name.is_empty() && name.chars().all(is_shortcode_char);
    if !is_candidate {
        return None;
    }
    emojis::get_by_shortcode(name).map(|emoji| (emoji.as_str(), name_len))
}

/// Returns whether a character can appear in a gemoji shortcode, such as `+1`, `t-rex` or `red_square`.
fn is_shortcode_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-')
}

/// Returns whether a link target stays clickable: an absolute `http`, `https` or `mailto` URL.
///
/// pulldown-cmark has already decoded entities and escapes in the target, so an
/// entity-encoded `javascript:` is caught here too.
fn is_allowed_url(url: &str) -> bool {
    ALLOWED_URL_PREFIXES
        .iter()
        .any(|prefix| starts_with_ignore_case(url, prefix))
}

fn starts_with_ignore_case(text: &str, prefix: &str) -> bool {
    text.get(..prefix.len())
        .is_some_and(|start| start.eq_ignore_ascii_case(prefix))
}

/// Keeps a fenced code block's language only when it is a plain name such as `rust`, `c++`
/// or `objective-c`, taken from the first word of the info string.
fn sanitize_code_block_kind(kind: CodeBlockKind<'_>) -> CodeBlockKind<'static> {
    let CodeBlockKind::Fenced(info) = kind else {
        return CodeBlockKind::Indented;
    };

    let first_word = info
        .split(|c: char| c.is_whitespace() || c == ',' || c == '{')
        .next()
        .unwrap_or("");
    let language = if is_language_name(first_word) {
        first_word.to_owned()
    } else {
        String::new()
    };
    CodeBlockKind::Fenced(language.into())
}

fn is_language_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '+' | '#' | '.'))
}

fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
}

/// Builds the ammonia sanitizer that every rendered body passes through.
///
/// `Builder::empty` clears only the allowed tags, so the attribute lists are replaced too.
/// Every `input` comes out as a disabled checkbox, whatever type and state the input HTML
/// gives it, except that `checked` is kept.
fn build_sanitizer() -> ammonia::Builder<'static> {
    let tag_attributes = HashMap::from([
        ("a", HashSet::from(["href"])),
        ("span", HashSet::from(["data-mention"])),
        ("code", HashSet::from(["class"])),
        ("ol", HashSet::from(["start"])),
        ("input", HashSet::from(["checked"])),
    ]);
    let allowed_classes = HashMap::from([("span", HashSet::from(["mention"]))]);

    let mut builder = ammonia::Builder::empty();
    builder
        .tags(HashSet::from(ALLOWED_TAGS))
        .generic_attributes(HashSet::new())
        .generic_attribute_prefixes(HashSet::new())
        .tag_attributes(tag_attributes)
        .tag_attribute_values(HashMap::new())
        .set_tag_attribute_value("input", "type", "checkbox")
        .set_tag_attribute_value("input", "disabled", "")
        .allowed_classes(allowed_classes)
        .attribute_filter(filter_attribute)
        .url_schemes(HashSet::from(["http", "https", "mailto"]))
        .url_relative(UrlRelative::Deny)
        .link_rel(Some(LINK_REL))
        .strip_comments(true);
    builder
}

/// Drops a `code` class other than `language-NAME`. Other attributes pass unchanged.
fn filter_attribute<'u>(element: &str, attribute: &str, value: &'u str) -> Option<Cow<'u, str>> {
    if (element, attribute) != ("code", "class") {
        return Some(Cow::Borrowed(value));
    }
    value
        .strip_prefix("language-")
        .filter(|language| is_language_name(language))
        .map(|_| Cow::Borrowed(value))
}

/// Returns whether a tag is inline, so its start and end do not separate words in an excerpt.
fn is_inline(tag: &Tag<'_>) -> bool {
    matches!(
        tag,
        Tag::Emphasis
            | Tag::Strong
            | Tag::Strikethrough
            | Tag::Superscript
            | Tag::Subscript
            | Tag::Link { .. }
            | Tag::Image { .. }
    )
}

fn is_inline_end(tag: TagEnd) -> bool {
    matches!(
        tag,
        TagEnd::Emphasis
            | TagEnd::Strong
            | TagEnd::Strikethrough
            | TagEnd::Superscript
            | TagEnd::Subscript
            | TagEnd::Link
            | TagEnd::Image
    )
}

/// Plain text being built for an excerpt, with runs of whitespace collapsed to one space
/// and no space at either end.
#[derive(Default)]
struct PlainText {
    text: String,
    /// Number of characters in `text`.
    chars: usize,
    /// Whether whitespace came after the last character, to be written before the next one.
    space_pending: bool,
}

impl PlainText {
    fn push_str(&mut self, content: &str) {
        for c in content.chars() {
            if c.is_whitespace() {
                self.push_break();
            } else {
                self.push_char(c);
            }
        }
    }

    /// Separates the next word from the previous one, as whitespace does.
    fn push_break(&mut self) {
        self.space_pending = !self.text.is_empty();
    }

    fn push_char(&mut self, c: char) {
        if self.space_pending {
            self.text.push(' ');
            self.chars += 1;
            self.space_pending = false;
        }
        self.text.push(c);
        self.chars += 1;
    }

    /// Returns the text, cut to `max_chars` characters with a trailing `…` if it is longer.
    fn truncate(self, max_chars: usize) -> String {
        if self.chars <= max_chars {
            return self.text;
        }
        if max_chars == 0 {
            return String::new();
        }

        let head: String = self.text.chars().take(max_chars - 1).collect();
        let mut cut = head.trim_end().to_owned();
        cut.push('…');
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // --- Test helpers ---

    /// A start tag of rendered HTML: its name and its attributes in order.
    #[derive(Debug)]
    struct StartTag {
        name: String,
        attributes: Vec<(String, String)>,
    }

    /// Reads the start tags of sanitized HTML. ammonia's serializer quotes every attribute
    /// value with `"` and escapes `<` in text, so this small scanner is enough.
    fn start_tags(html: &str) -> Vec<StartTag> {
        let mut tags = Vec::new();
        let mut rest = html;

        while let Some(open) = rest.find('<') {
            rest = &rest[open + 1..];
            if rest.starts_with('/') {
                continue;
            }

            let name_len = rest
                .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
                .unwrap_or(rest.len());
            let name = rest[..name_len].to_owned();
            rest = &rest[name_len..];

            let mut attributes = Vec::new();
            loop {
                rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == '/');
                if rest.is_empty() || rest.starts_with('>') {
                    break;
                }
                let attribute_len = rest
                    .find(|c: char| c.is_whitespace() || c == '=' || c == '>')
                    .unwrap_or(rest.len());
                let attribute = rest[..attribute_len].to_owned();
                rest = &rest[attribute_len..];

                let mut value = String::new();
                if let Some(quoted) = rest.strip_prefix("=\"") {
                    let value_len = quoted.find('"').unwrap_or(quoted.len());
                    value = quoted[..value_len].to_owned();
                    rest = &quoted[(value_len + 1).min(quoted.len())..];
                }
                attributes.push((attribute, value));
            }

            tags.push(StartTag { name, attributes });
        }

        tags
    }

    /// Returns whether the rendered HTML may contain this attribute on this element.
    fn is_expected_attribute(element: &str, attribute: &str) -> bool {
        matches!(
            (element, attribute),
            ("a", "href" | "rel")
                | ("span", "class" | "data-mention")
                | ("code", "class")
                | ("ol", "start")
                | ("input", "type" | "checked" | "disabled")
        )
    }

    /// Asserts that rendered HTML contains only allowed elements and attributes, and only
    /// `http`, `https` and `mailto` link targets.
    fn assert_safe(html: &str) {
        for tag in start_tags(html) {
            let name = tag.name.as_str();
            assert!(
                ALLOWED_TAGS.contains(&name),
                "unexpected element <{name}> in {html}"
            );

            for (attribute, value) in &tag.attributes {
                assert!(
                    is_expected_attribute(name, attribute),
                    "unexpected attribute {attribute}={value:?} on <{name}> in {html}"
                );
                if attribute == "href" {
                    assert!(
                        is_allowed_url(value),
                        "disallowed link target {value:?} in {html}"
                    );
                }
            }
        }
    }

    /// Collects the attributes of a tag into a set, because ammonia writes the attributes that it sets
    /// in no fixed order.
    fn attribute_set(tag: &StartTag) -> HashSet<(&str, &str)> {
        tag.attributes
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect()
    }

    fn hrefs(html: &str) -> Vec<String> {
        start_tags(html)
            .into_iter()
            .flat_map(|tag| tag.attributes)
            .filter(|(attribute, _)| attribute == "href")
            .map(|(_, value)| value)
            .collect()
    }

    fn usernames(body: &str) -> Vec<String> {
        extract_mentions(body).usernames
    }

    // --- Formatting ---

    #[test]
    fn bold_renders_strong() {
        assert_eq!(render_html("**hi**"), "<p><strong>hi</strong></p>\n");
    }

    #[test]
    fn italic_renders_em() {
        assert_eq!(
            render_html("*hi* _there_"),
            "<p><em>hi</em> <em>there</em></p>\n"
        );
    }

    #[test]
    fn strikethrough_renders_del() {
        assert_eq!(render_html("~~gone~~"), "<p><del>gone</del></p>\n");
    }

    #[test]
    fn inline_code_renders_code() {
        assert_eq!(
            render_html("run `cargo test` now"),
            "<p>run <code>cargo test</code> now</p>\n"
        );
    }

    #[test]
    fn inline_code_escapes_markup() {
        assert_eq!(render_html("`<b>`"), "<p><code>&lt;b&gt;</code></p>\n");
    }

    #[test]
    fn code_block_keeps_language_class() {
        assert_eq!(
            render_html("```rust\nfn main() {}\n```"),
            "<pre><code class=\"language-rust\">fn main() {}\n</code></pre>\n"
        );
    }

    #[test]
    fn code_block_language_uses_first_word() {
        let html = render_html("```rust,ignore\nx\n```");
        assert!(html.contains("<code class=\"language-rust\">"), "{html}");
    }

    #[test]
    fn code_block_drops_odd_language() {
        let html = render_html("```\"onclick=x\nx\n```");
        assert_eq!(html, "<pre><code>x\n</code></pre>\n");
    }

    #[test]
    fn indented_code_block_has_no_class() {
        assert_eq!(
            render_html("    let x;\n"),
            "<pre><code>let x;\n</code></pre>\n"
        );
    }

    #[test]
    fn link_gets_rel() {
        assert_eq!(
            render_html("[docs](https://example.com/docs)"),
            "<p><a href=\"https://example.com/docs\" rel=\"noopener noreferrer nofollow\">docs</a></p>\n"
        );
    }

    #[test]
    fn link_title_is_dropped() {
        let html = render_html("[docs](https://example.com \"Docs\")");
        assert!(!html.contains("title="), "{html}");
    }

    #[test]
    fn mailto_link_is_kept() {
        let html = render_html("[mail](mailto:bob@example.com)");
        assert_eq!(hrefs(&html), ["mailto:bob@example.com"]);
    }

    #[test]
    fn email_autolink_gets_mailto() {
        let html = render_html("<bob@example.com>");
        assert_eq!(hrefs(&html), ["mailto:bob@example.com"]);
    }

    #[test]
    fn relative_link_renders_as_text() {
        assert_eq!(render_html("[home](/rooms)"), "<p>home</p>\n");
    }

    #[test]
    fn bare_url_becomes_link() {
        assert_eq!(
            render_html("see https://example.com/a?b=1."),
            "<p>see <a href=\"https://example.com/a?b=1\" rel=\"noopener noreferrer nofollow\">https://example.com/a?b=1</a>.</p>\n"
        );
    }

    #[test]
    fn bare_www_url_gets_https() {
        let html = render_html("go to www.example.com today");
        assert_eq!(hrefs(&html), ["https://www.example.com"]);
    }

    #[test]
    fn bare_domain_is_not_linked() {
        let html = render_html("see example.com");
        assert_eq!(html, "<p>see example.com</p>\n");
    }

    #[test]
    fn bare_url_in_code_is_not_linked() {
        let html = render_html("`https://example.com`");
        assert_eq!(html, "<p><code>https://example.com</code></p>\n");
    }

    #[test]
    fn bare_url_in_link_text_is_not_linked() {
        let html = render_html("[https://a.example](https://b.example)");
        assert_eq!(hrefs(&html), ["https://b.example"]);
    }

    #[test]
    fn unordered_list_renders_ul() {
        assert_eq!(
            render_html("- one\n- two"),
            "<ul>\n<li>one</li>\n<li>two</li>\n</ul>\n"
        );
    }

    #[test]
    fn ordered_list_keeps_start() {
        assert_eq!(
            render_html("3. three\n4. four"),
            "<ol start=\"3\">\n<li>three</li>\n<li>four</li>\n</ol>\n"
        );
    }

    #[test]
    fn task_list_renders_disabled_checkboxes() {
        let html = render_html("- [x] done\n- [ ] open");
        let inputs: Vec<StartTag> = start_tags(&html)
            .into_iter()
            .filter(|tag| tag.name == "input")
            .collect();

        assert_eq!(inputs.len(), 2, "{html}");
        let checked: Vec<bool> = inputs
            .iter()
            .map(|input| input.attributes.iter().any(|(name, _)| name == "checked"))
            .collect();
        assert_eq!(checked, [true, false], "{html}");
        for input in &inputs {
            let attributes = attribute_set(input);
            assert!(attributes.contains(&("type", "checkbox")), "{html}");
            assert!(attributes.contains(&("disabled", "")), "{html}");
        }
    }

    #[test]
    fn quote_renders_blockquote() {
        assert_eq!(
            render_html("> wise words"),
            "<blockquote>\n<p>wise words</p>\n</blockquote>\n"
        );
    }

    #[test]
    fn table_renders_head_and_body() {
        let html = render_html("| a | b |\n|---|:-:|\n| 1 | 2 |");
        assert_eq!(
            html,
            "<table><thead><tr><th>a</th><th>b</th></tr></thead><tbody>\n\
             <tr><td>1</td><td>2</td></tr>\n</tbody></table>\n"
        );
    }

    #[test]
    fn heading_renders_h2() {
        assert_eq!(render_html("## Title"), "<h2>Title</h2>\n");
    }

    #[test]
    fn rule_renders_hr() {
        assert_eq!(render_html("a\n\n---\n\nb"), "<p>a</p>\n<hr>\n<p>b</p>\n");
    }

    #[test]
    fn single_newline_becomes_line_break() {
        assert_eq!(render_html("one\ntwo"), "<p>one<br>\ntwo</p>\n");
    }

    #[test]
    fn image_becomes_link_to_image() {
        assert_eq!(
            render_html("![cat](https://example.com/cat.png)"),
            "<p><a href=\"https://example.com/cat.png\" rel=\"noopener noreferrer nofollow\">cat</a></p>\n"
        );
    }

    #[test]
    fn image_without_alt_shows_url() {
        let html = render_html("![](https://example.com/cat.png)");
        assert!(html.contains(">https://example.com/cat.png</a>"), "{html}");
    }

    #[test]
    fn image_in_link_shows_alt_text() {
        let html = render_html("[![cat](https://example.com/cat.png)](https://example.com)");
        assert_eq!(hrefs(&html), ["https://example.com"]);
    }

    // --- Raw HTML ---

    #[test]
    fn raw_html_renders_as_text() {
        assert_eq!(
            render_html("a <b>bold</b> claim"),
            "<p>a &lt;b&gt;bold&lt;/b&gt; claim</p>\n"
        );
    }

    #[test]
    fn html_block_renders_as_text() {
        assert_eq!(
            render_html("<div>\nhello\n</div>"),
            "<p>&lt;div&gt;<br>\nhello<br>\n&lt;/div&gt;</p>\n"
        );
    }

    #[test]
    fn html_comment_renders_as_text() {
        assert_eq!(
            render_html("<!-- hidden -->"),
            "<p>&lt;!-- hidden --&gt;</p>\n"
        );
    }

    // --- Script and style injection ---

    #[test]
    fn script_tag_is_not_rendered() {
        let html = render_html("<script>alert(1)</script>");
        assert!(!html.contains("<script"), "{html}");
        assert_safe(&html);
    }

    #[test]
    fn inline_script_tag_is_not_rendered() {
        let html = render_html("hi <script>alert(1)</script> there");
        assert!(!html.contains("<script"), "{html}");
        assert_safe(&html);
    }

    #[test]
    fn img_onerror_is_not_rendered() {
        let html = render_html("<img src=x onerror=alert(1)>");
        assert!(!html.contains("<img"), "{html}");
        assert_safe(&html);
    }

    #[test]
    fn javascript_link_is_dropped() {
        let html = render_html("[x](javascript:alert(1))");
        assert!(!html.contains("javascript:"), "{html}");
        assert!(!html.contains("<a"), "{html}");
        assert_safe(&html);
    }

    #[test]
    fn uppercase_javascript_link_is_dropped() {
        let html = render_html("[x](JAVASCRIPT:alert(1))");
        assert!(!html.to_lowercase().contains("javascript:"), "{html}");
        assert_safe(&html);
    }

    #[test]
    fn javascript_link_with_whitespace_is_dropped() {
        let html = render_html("[x](< javascript:alert(1)>)");
        assert!(!html.contains("<a"), "{html}");
        assert_safe(&html);
    }

    #[test]
    fn raw_javascript_anchor_renders_as_text() {
        let html = render_html("<a href=\"javascript:alert(1)\">x</a>");
        assert!(!html.contains("<a"), "{html}");
        assert!(hrefs(&html).is_empty(), "{html}");
        assert_safe(&html);
    }

    #[test]
    fn style_tag_is_not_rendered() {
        let html = render_html("<style>body { display: none }</style>");
        assert!(!html.contains("<style"), "{html}");
        assert_safe(&html);
    }

    #[test]
    fn iframe_is_not_rendered() {
        let html = render_html("<iframe src=\"https://evil.example\"></iframe>");
        assert!(!html.contains("<iframe"), "{html}");
        assert_safe(&html);
    }

    #[test]
    fn svg_onload_is_not_rendered() {
        let html = render_html("<svg onload=alert(1)>");
        assert!(!html.contains("<svg"), "{html}");
        assert_safe(&html);
    }

    #[test]
    fn data_url_link_is_dropped() {
        let html = render_html("[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)");
        assert!(!html.contains("data:"), "{html}");
        assert_safe(&html);
    }

    #[test]
    fn data_url_image_is_dropped() {
        let html = render_html("![x](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)");
        assert!(hrefs(&html).is_empty(), "{html}");
        assert_safe(&html);
    }

    #[test]
    fn entity_encoded_javascript_is_dropped() {
        let html = render_html("[x](&#106;avascript&#58;alert(1))");
        assert!(!html.contains("javascript"), "{html}");
        assert!(hrefs(&html).is_empty(), "{html}");
        assert_safe(&html);
    }

    #[test]
    fn hex_entity_javascript_is_dropped() {
        let html = render_html("[x](&#x6A;avascript:alert(1))");
        assert!(hrefs(&html).is_empty(), "{html}");
        assert_safe(&html);
    }

    #[test]
    fn link_title_quotes_cannot_add_attributes() {
        let html = render_html("[x](https://example.com \"a\\\" onmouseover=\\\"alert(1)\")");
        assert_eq!(hrefs(&html), ["https://example.com"]);
        assert_safe(&html);
    }

    #[test]
    fn link_url_quotes_cannot_add_attributes() {
        let html = render_html("[x](https://example.com/\"onmouseover=\"alert(1))");
        assert_safe(&html);
    }

    #[test]
    fn javascript_autolink_is_not_a_link() {
        let html = render_html("<javascript:alert(1)>");
        assert!(!html.contains("<a"), "{html}");
        assert!(hrefs(&html).is_empty(), "{html}");
        assert_safe(&html);
    }

    // --- Sanitizer, fed HTML directly because render_html never passes raw HTML on ---

    fn sanitize(html: &str) -> String {
        SANITIZER.clean(html).to_string()
    }

    #[test]
    fn sanitizer_removes_script_with_content() {
        assert_eq!(sanitize("<p>a<script>alert(1)</script></p>"), "<p>a</p>");
    }

    #[test]
    fn sanitizer_removes_style_with_content() {
        assert_eq!(sanitize("<style>p { color: red }</style>b"), "b");
    }

    #[test]
    fn sanitizer_removes_event_handlers() {
        assert_eq!(
            sanitize("<p onclick=\"alert(1)\" style=\"color: red\">a</p>"),
            "<p>a</p>"
        );
    }

    #[test]
    fn sanitizer_removes_img_and_iframe() {
        assert_eq!(
            sanitize("<img src=x onerror=alert(1)><iframe src=https://a.example></iframe>b"),
            "b"
        );
    }

    #[test]
    fn sanitizer_removes_javascript_href() {
        assert_eq!(
            sanitize("<a href=\"javascript:alert(1)\">x</a>"),
            "<a rel=\"noopener noreferrer nofollow\">x</a>"
        );
    }

    #[test]
    fn sanitizer_replaces_rel_and_drops_target() {
        assert_eq!(
            sanitize("<a href=\"https://a.example\" rel=\"opener\" target=\"_blank\">x</a>"),
            "<a href=\"https://a.example\" rel=\"noopener noreferrer nofollow\">x</a>"
        );
    }

    #[test]
    fn sanitizer_keeps_only_mention_class() {
        assert_eq!(
            sanitize("<span class=\"mention admin\" data-mention=\"bob\" data-x=\"1\">@bob</span>"),
            "<span class=\"mention\" data-mention=\"bob\">@bob</span>"
        );
    }

    #[test]
    fn sanitizer_drops_code_class_other_than_language() {
        assert_eq!(sanitize("<code class=\"evil\">x</code>"), "<code>x</code>");
    }

    #[test]
    fn sanitizer_forces_disabled_checkbox() {
        let html = sanitize("<input type=\"text\" value=\"x\" checked>");
        let tags = start_tags(&html);

        assert_eq!(tags.len(), 1, "{html}");
        let expected = HashSet::from([("checked", ""), ("type", "checkbox"), ("disabled", "")]);
        assert_eq!(attribute_set(&tags[0]), expected, "{html}");
    }

    #[test]
    fn mention_markup_cannot_break_out() {
        let html = render_html("@bob\"><script>alert(1)</script>");
        assert!(!html.contains("<script"), "{html}");
        assert_safe(&html);
    }

    // --- Shortcodes ---

    #[test]
    fn shortcode_expands() {
        assert_eq!(expand_shortcodes("party :tada:!"), "party 🎉!");
    }

    #[test]
    fn shortcode_with_punctuation_expands() {
        assert_eq!(expand_shortcodes(":+1: :t-rex:"), "👍 🦖");
    }

    #[test]
    fn unknown_shortcode_stays() {
        assert_eq!(expand_shortcodes(":no_such_emoji:"), ":no_such_emoji:");
    }

    #[test]
    fn shortcode_after_colon_expands() {
        assert_eq!(expand_shortcodes("at 12:30:tada:"), "at 12:30🎉");
    }

    #[test]
    fn lone_colons_stay() {
        assert_eq!(expand_shortcodes("a: b :: c:"), "a: b :: c:");
    }

    #[test]
    fn shortcode_expands_in_rendered_text() {
        assert_eq!(render_html("yay :tada:"), "<p>yay 🎉</p>\n");
    }

    #[test]
    fn shortcode_expands_in_link_text() {
        let html = render_html("[:tada:](https://example.com)");
        assert!(html.contains(">🎉</a>"), "{html}");
    }

    #[test]
    fn shortcode_in_code_span_stays() {
        assert_eq!(render_html("`:tada:`"), "<p><code>:tada:</code></p>\n");
    }

    #[test]
    fn shortcode_in_code_block_stays() {
        assert_eq!(
            render_html("```\n:tada:\n```"),
            "<pre><code>:tada:\n</code></pre>\n"
        );
    }

    // --- Mentions ---

    #[test]
    fn mention_renders_span() {
        assert_eq!(
            render_html("hi @Bob!"),
            "<p>hi <span class=\"mention\" data-mention=\"Bob\">@Bob</span>!</p>\n"
        );
    }

    #[test]
    fn room_mention_renders_span() {
        let html = render_html("@Room wake up");
        assert!(
            html.contains("<span class=\"mention\" data-mention=\"room\">@Room</span>"),
            "{html}"
        );
    }

    #[test]
    fn here_mention_renders_span() {
        let html = render_html("@here lunch?");
        assert!(
            html.contains("<span class=\"mention\" data-mention=\"here\">@here</span>"),
            "{html}"
        );
    }

    #[test]
    fn mention_in_code_renders_plain() {
        assert_eq!(render_html("`@bob`"), "<p><code>@bob</code></p>\n");
    }

    #[test]
    fn mention_in_link_text_renders_plain() {
        let html = render_html("[@bob](https://example.com)");
        assert!(!html.contains("mention"), "{html}");
    }

    #[test]
    fn mentions_are_in_order() {
        assert_eq!(
            usernames("@carol and @alice, then @bob"),
            ["carol", "alice", "bob"]
        );
    }

    #[test]
    fn mentions_are_deduplicated() {
        assert_eq!(usernames("@bob @alice @bob"), ["bob", "alice"]);
    }

    #[test]
    fn mentions_are_case_folded() {
        assert_eq!(usernames("@Bob @BOB @bob"), ["bob"]);
    }

    #[test]
    fn mentions_are_nfkc_normalized() {
        assert_eq!(usernames("@ｂｏｂ"), ["bob"]);
    }

    #[test]
    fn mention_accepts_unicode_letters() {
        assert_eq!(usernames("@Zoë_b-2"), ["zoë_b-2"]);
    }

    #[test]
    fn mention_ends_at_punctuation() {
        assert_eq!(usernames("thanks @bob."), ["bob"]);
    }

    #[test]
    fn mention_at_line_start_counts() {
        assert_eq!(usernames("line\n@bob"), ["bob"]);
    }

    #[test]
    fn email_is_not_a_mention() {
        assert!(usernames("mail bob@example.com").is_empty());
    }

    #[test]
    fn lone_at_sign_is_not_a_mention() {
        assert!(usernames("meet @ noon").is_empty());
    }

    #[test]
    fn overlong_name_is_not_a_mention() {
        let body = format!("@{}", "a".repeat(MAX_MENTION_CHARS + 1));
        assert!(usernames(&body).is_empty());
    }

    #[test]
    fn longest_name_is_a_mention() {
        let name = "a".repeat(MAX_MENTION_CHARS);
        assert_eq!(usernames(&format!("@{name}")), [name]);
    }

    #[test]
    fn room_mention_sets_flag() {
        let mentions = extract_mentions("@room hello");
        assert!(mentions.room);
        assert!(!mentions.here);
        assert!(mentions.usernames.is_empty());
    }

    #[test]
    fn here_mention_sets_flag() {
        let mentions = extract_mentions("@HERE hello");
        assert!(mentions.here);
        assert!(!mentions.room);
        assert!(mentions.usernames.is_empty());
    }

    #[test]
    fn mention_in_code_span_is_ignored() {
        assert!(usernames("try `@bob`").is_empty());
    }

    #[test]
    fn mention_in_code_block_is_ignored() {
        let mentions = extract_mentions("```\n@bob @room\n```");
        assert_eq!(mentions, MentionTokens::default());
    }

    #[test]
    fn mention_in_link_text_is_ignored() {
        assert!(usernames("[@bob](https://example.com)").is_empty());
    }

    #[test]
    fn mention_in_url_is_ignored() {
        assert!(usernames("https://social.example/@bob").is_empty());
    }

    #[test]
    fn mention_in_formatting_counts() {
        assert_eq!(usernames("**@bob** and _@alice_"), ["bob", "alice"]);
    }

    #[test]
    fn split_rich_text_finds_every_piece() {
        assert_eq!(
            split_rich_text("hi @bob, see www.example.com"),
            [
                TextPiece::Plain("hi "),
                TextPiece::Mention("bob"),
                TextPiece::Plain(", see "),
                TextPiece::Url {
                    text: "www.example.com",
                    href: "https://www.example.com".to_owned(),
                },
            ]
        );
    }

    // --- Reactions ---

    #[test]
    fn unicode_emoji_is_kept() {
        assert_eq!(normalize_emoji("🎉").as_deref(), Some("🎉"));
    }

    #[test]
    fn skin_tone_emoji_is_kept() {
        assert_eq!(normalize_emoji("👍🏽").as_deref(), Some("👍🏽"));
    }

    #[test]
    fn unqualified_emoji_gets_variation_selector() {
        assert_eq!(
            normalize_emoji("\u{2764}").as_deref(),
            Some("\u{2764}\u{fe0f}")
        );
    }

    #[test]
    fn shortcode_with_colons_becomes_emoji() {
        assert_eq!(normalize_emoji(":tada:").as_deref(), Some("🎉"));
    }

    #[test]
    fn shortcode_without_colons_becomes_emoji() {
        assert_eq!(normalize_emoji("tada").as_deref(), Some("🎉"));
    }

    #[test]
    fn reaction_whitespace_is_ignored() {
        assert_eq!(normalize_emoji(" :+1: ").as_deref(), Some("👍"));
    }

    #[test]
    fn unknown_shortcode_is_not_an_emoji() {
        assert_eq!(normalize_emoji(":no_such_emoji:"), None);
    }

    #[test]
    fn plain_text_is_not_an_emoji() {
        assert_eq!(normalize_emoji("hello world"), None);
    }

    #[test]
    fn empty_reaction_is_not_an_emoji() {
        assert_eq!(normalize_emoji(""), None);
    }

    #[test]
    fn one_colon_shortcode_is_not_an_emoji() {
        assert_eq!(normalize_emoji(":tada"), None);
    }

    // --- Excerpts ---

    #[test]
    fn short_excerpt_is_whole_text() {
        assert_eq!(excerpt("hello there", 20), "hello there");
    }

    #[test]
    fn excerpt_of_exact_length_is_not_cut() {
        assert_eq!(excerpt("hello", 5), "hello");
    }

    #[test]
    fn long_excerpt_is_cut_with_ellipsis() {
        assert_eq!(excerpt("abcdefghij", 5), "abcd…");
    }

    #[test]
    fn cut_excerpt_drops_trailing_space() {
        assert_eq!(excerpt("abc defgh", 5), "abc…");
    }

    #[test]
    fn zero_length_excerpt_is_empty() {
        assert_eq!(excerpt("hello", 0), "");
    }

    #[test]
    fn excerpt_removes_markup() {
        assert_eq!(
            excerpt("# Title\n\n**bold** and [a link](https://example.com)", 100),
            "Title bold and a link"
        );
    }

    #[test]
    fn excerpt_collapses_whitespace() {
        assert_eq!(excerpt("  one \n\n two\t\tthree  ", 100), "one two three");
    }

    #[test]
    fn excerpt_separates_list_items() {
        assert_eq!(excerpt("- one\n- two\n  - three", 100), "one two three");
    }

    #[test]
    fn excerpt_keeps_inline_words_joined() {
        assert_eq!(excerpt("un**believ**able", 100), "unbelievable");
    }

    #[test]
    fn excerpt_keeps_code_text() {
        assert_eq!(
            excerpt("run `cargo test`\n```\nfn main() {}\n```", 100),
            "run cargo test fn main() {}"
        );
    }

    #[test]
    fn excerpt_expands_shortcodes_outside_code() {
        assert_eq!(excerpt(":tada: `:tada:`", 100), "🎉 :tada:");
    }

    #[test]
    fn excerpt_drops_task_markers() {
        assert_eq!(excerpt("- [x] done", 100), "done");
    }

    #[test]
    fn excerpt_keeps_raw_html_as_typed() {
        assert_eq!(excerpt("a <b>b</b>", 100), "a <b>b</b>");
    }

    #[test]
    fn excerpt_counts_characters_not_bytes() {
        assert_eq!(excerpt("ééééé", 5), "ééééé");
    }
}
