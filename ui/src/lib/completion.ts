// Completion of `@mentions` and `:shortcodes:` in the composer. The token rules follow
// the server's renderer in roomler-shared (rich_text.rs), so that what completes here
// is what the server turns into a mention or an emoji.

import type { Member, Uuid } from '@/api/bindings';
import { EMOJI } from '@/lib/emoji';

/** The maximum length of a mentioned username, in code points, as on the server. */
export const MAX_MENTION_CHARS = 32;
/** Shortcode completion starts after this many characters, so `:D` or `:3` stay quiet. */
export const MIN_SHORTCODE_QUERY = 2;
export const DEFAULT_CANDIDATE_LIMIT = 8;

/** The mention or shortcode under the caret. */
export interface CompletionToken {
  kind: 'mention' | 'emoji';
  /** The text typed after `@` or `:` up to the caret. */
  query: string;
  /** UTF-16 index of the `@` or `:`. */
  start: number;
  /** UTF-16 index after the last name character, which may lie after the caret. */
  end: number;
}

export interface CompletionCandidate {
  kind: 'user' | 'room' | 'here' | 'emoji';
  /** Unique among the candidates of one token. */
  key: string;
  /** The text that replaces the token, without the space added after it. */
  insert: string;
  /** The menu's main text, e.g. `@alice` or `:tada:`. */
  label: string;
  /** The display name of a user or the emoji itself; empty for `@room` and `@here`. */
  detail: string;
}

// Usernames are Unicode letters, digits, `_` and `-`; `\p{Alphabetic}` and `\p{N}`
// match what Rust's `char::is_alphanumeric` accepts.
const MENTION_BEFORE_CARET = new RegExp(
  `(?<![\\p{Alphabetic}\\p{N}_-])@([\\p{Alphabetic}\\p{N}_-]{0,${MAX_MENTION_CHARS}})$`,
  'u',
);
const NAME_AFTER_CARET = /^[\p{Alphabetic}\p{N}_-]*/u;
// The colon must not follow a letter, digit or another colon, so times like `12:30`
// and `::` do not open completion.
const SHORTCODE_BEFORE_CARET = new RegExp(
  `(?<![\\p{Alphabetic}\\p{N}_+:-]):([A-Za-z0-9_+-]{${MIN_SHORTCODE_QUERY},})$`,
  'u',
);
const SHORTCODE_AFTER_CARET = /^[A-Za-z0-9_+-]*/;

/** Finds the mention or shortcode that the caret at UTF-16 index `caret` is in, if any. */
export function findCompletionToken(
  text: string,
  caret: number,
): CompletionToken | null {
  const before = text.slice(0, caret);
  const after = text.slice(caret);

  const mention = MENTION_BEFORE_CARET.exec(before);
  if (mention) {
    const rest = NAME_AFTER_CARET.exec(after)?.[0] ?? '';
    return {
      kind: 'mention',
      query: mention[1] ?? '',
      start: caret - mention[0].length,
      end: caret + rest.length,
    };
  }

  const shortcode = SHORTCODE_BEFORE_CARET.exec(before);
  if (shortcode) {
    const rest = SHORTCODE_AFTER_CARET.exec(after)?.[0] ?? '';
    // A closing colon right after the name belongs to the token too.
    const closing = after.charAt(rest.length) === ':' ? 1 : 0;
    return {
      kind: 'emoji',
      query: shortcode[1] ?? '',
      start: caret - shortcode[0].length,
      end: caret + rest.length + closing,
    };
  }

  return null;
}

function normalize(text: string): string {
  return text.normalize('NFKC').toLowerCase();
}

export interface MentionOptions {
  /** The current user, who is not offered. */
  selfId?: Uuid | null;
  limit?: number;
}

/**
 * Lists the members and the `@room` and `@here` mentions that match `query`.
 *
 * Members whose username starts with the query come first, then those whose display name
 * has a word that starts with it. Matching `@room` and `@here` are always kept at the end,
 * so a long member list never hides them.
 */
export function mentionCandidates(
  query: string,
  members: readonly Member[],
  options: MentionOptions = {},
): CompletionCandidate[] {
  const limit = options.limit ?? DEFAULT_CANDIDATE_LIMIT;
  const needle = normalize(query);

  const special: CompletionCandidate[] = (['room', 'here'] as const)
    .filter((name) => name.startsWith(needle))
    .map((name) => ({
      kind: name,
      key: `@${name}`,
      insert: `@${name}`,
      label: `@${name}`,
      detail: '',
    }));

  const byUsername: Member[] = [];
  const byDisplayName: Member[] = [];
  for (const member of members) {
    if (member.user.id === options.selfId) {
      continue;
    }
    const username = normalize(member.user.username);
    const words = normalize(member.user.display_name).split(/\s+/);
    if (username.startsWith(needle)) {
      byUsername.push(member);
    } else if (words.some((word) => word.startsWith(needle))) {
      byDisplayName.push(member);
    }
  }
  const compareNames = (a: Member, b: Member) =>
    a.user.username.localeCompare(b.user.username);
  byUsername.sort(compareNames);
  byDisplayName.sort(compareNames);

  const users = [...byUsername, ...byDisplayName]
    .slice(0, Math.max(0, limit - special.length))
    .map((member) => ({
      kind: 'user' as const,
      key: member.user.id,
      insert: `@${member.user.username}`,
      label: `@${member.user.username}`,
      detail: member.user.display_name,
    }));

  return [...users, ...special].slice(0, limit);
}

/**
 * Lists the emoji whose shortcode starts with `query`, shortest shortcode first, then
 * those whose shortcode or name contains it, in table order.
 */
export function emojiCandidates(
  query: string,
  limit: number = DEFAULT_CANDIDATE_LIMIT,
): CompletionCandidate[] {
  const needle = query.toLowerCase();
  // Array.prototype.sort is stable, so equal lengths keep the table's order.
  const prefix = EMOJI.filter((entry) =>
    entry.shortcode.startsWith(needle),
  ).sort((a, b) => a.shortcode.length - b.shortcode.length);
  const contains = EMOJI.filter(
    (entry) =>
      !entry.shortcode.startsWith(needle) &&
      (entry.shortcode.includes(needle) || entry.name.includes(needle)),
  );
  return [...prefix, ...contains].slice(0, limit).map((entry) => ({
    kind: 'emoji',
    key: entry.shortcode,
    insert: entry.emoji,
    label: `:${entry.shortcode}:`,
    detail: entry.emoji,
  }));
}

/** Lists the candidates for a token: members for a mention, emoji for a shortcode. */
export function completionCandidates(
  token: CompletionToken,
  members: readonly Member[],
  options: MentionOptions = {},
): CompletionCandidate[] {
  return token.kind === 'mention'
    ? mentionCandidates(token.query, members, options)
    : emojiCandidates(token.query, options.limit);
}

export interface CompletedText {
  text: string;
  caret: number;
}

/**
 * Replaces the token with the candidate's text followed by a space, unless whitespace
 * already follows the token, and puts the caret after that space.
 */
export function applyCompletion(
  text: string,
  token: CompletionToken,
  candidate: CompletionCandidate,
): CompletedText {
  const head = text.slice(0, token.start);
  const tail = text.slice(token.end);
  const spaceFollows = /^\s/.test(tail);
  const inserted = spaceFollows ? candidate.insert : `${candidate.insert} `;
  const caret = head.length + inserted.length + (spaceFollows ? 1 : 0);
  return { text: head + inserted + tail, caret };
}
