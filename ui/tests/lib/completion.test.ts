import { describe, expect, it } from 'vitest';

import {
  applyCompletion,
  emojiCandidates,
  findCompletionToken,
  mentionCandidates,
  type CompletionToken,
} from '@/lib/completion';

import { ALICE, BOB, ME, makeMember } from '../helpers/factories';

const ALICIA = {
  id: 'user-alicia',
  username: 'alicia',
  display_name: 'Alicia Keys',
};
const MEMBERS = [
  makeMember(BOB),
  makeMember(ALICIA),
  makeMember(ALICE),
  makeMember(ME),
];

describe('findCompletionToken', () => {
  it('finds a mention at the caret', () => {
    const text = 'hello @al';

    expect(findCompletionToken(text, text.length)).toEqual({
      kind: 'mention',
      query: 'al',
      start: 6,
      end: 9,
    });
  });

  it('finds a bare @ with an empty query', () => {
    expect(findCompletionToken('@', 1)).toEqual({
      kind: 'mention',
      query: '',
      start: 0,
      end: 1,
    });
  });

  it('extends token over whole name', () => {
    const text = 'hi @alice there';

    // Caret after "@al": the token still covers the whole "@alice".
    expect(findCompletionToken(text, 6)).toEqual({
      kind: 'mention',
      query: 'al',
      start: 3,
      end: 9,
    });
  });

  it('ignores an @ inside an email address', () => {
    const text = 'write to bob@example';

    expect(findCompletionToken(text, text.length)).toBeNull();
  });

  it('ignores a caret after the mention', () => {
    const text = '@alice ';

    expect(findCompletionToken(text, text.length)).toBeNull();
  });

  it('finds a mention with Unicode letters', () => {
    const text = '你好 @张';

    expect(findCompletionToken(text, text.length)).toMatchObject({
      kind: 'mention',
      query: '张',
    });
  });

  it('rejects a name over 32 characters', () => {
    const text = `@${'a'.repeat(33)}`;

    expect(findCompletionToken(text, text.length)).toBeNull();
  });

  it('finds a shortcode at the caret', () => {
    const text = 'great :tad';

    expect(findCompletionToken(text, text.length)).toEqual({
      kind: 'emoji',
      query: 'tad',
      start: 6,
      end: 10,
    });
  });

  it('includes a closing colon in the shortcode token', () => {
    const text = ':tada: yes';

    expect(findCompletionToken(text, 3)).toEqual({
      kind: 'emoji',
      query: 'ta',
      start: 0,
      end: 6,
    });
  });

  it('needs two characters after the colon', () => {
    expect(findCompletionToken(':t', 2)).toBeNull();
    expect(findCompletionToken(':+1', 3)).toMatchObject({
      kind: 'emoji',
      query: '+1',
    });
  });

  it('ignores a colon in a time', () => {
    const text = 'at 12:30';

    expect(findCompletionToken(text, text.length)).toBeNull();
  });

  it('returns null in plain text', () => {
    expect(findCompletionToken('plain words', 5)).toBeNull();
  });
});

describe('mentionCandidates', () => {
  it('filters members by username prefix', () => {
    const labels = mentionCandidates('al', MEMBERS).map(
      (candidate) => candidate.label,
    );

    expect(labels).toEqual(['@alice', '@alicia']);
  });

  it('matches a word of the display name', () => {
    const candidates = mentionCandidates('build', MEMBERS);

    expect(candidates.map((candidate) => candidate.insert)).toEqual(['@bob']);
    expect(candidates[0]?.detail).toBe('Bob Builder');
  });

  it('ignores case', () => {
    expect(
      mentionCandidates('AL', MEMBERS).map((candidate) => candidate.label),
    ).toEqual(['@alice', '@alicia']);
  });

  it('leaves out the current user', () => {
    const labels = mentionCandidates('m', MEMBERS, { selfId: ME.id }).map(
      (c) => c.label,
    );

    expect(labels).not.toContain('@me');
  });

  it('offers @room and @here', () => {
    expect(
      mentionCandidates('r', MEMBERS).map((candidate) => candidate.kind),
    ).toEqual(['room']);
    expect(
      mentionCandidates('he', MEMBERS).map((candidate) => candidate.kind),
    ).toEqual(['here']);
  });

  it('lists everyone for an empty query', () => {
    const candidates = mentionCandidates('', MEMBERS, { selfId: ME.id });

    expect(candidates.map((candidate) => candidate.label)).toEqual([
      '@alice',
      '@alicia',
      '@bob',
      '@room',
      '@here',
    ]);
  });

  it('keeps @room and @here within the limit', () => {
    const candidates = mentionCandidates('', MEMBERS, { limit: 3 });

    expect(candidates.map((candidate) => candidate.label)).toEqual([
      '@alice',
      '@room',
      '@here',
    ]);
  });

  it('returns nothing without a match', () => {
    expect(mentionCandidates('zed', MEMBERS)).toEqual([]);
  });
});

describe('emojiCandidates', () => {
  it('lists shortcode prefix matches first', () => {
    const candidates = emojiCandidates('hear');

    expect(candidates[0]?.label).toBe(':heart:');
    expect(candidates[0]?.insert).toBe('❤️');
    expect(candidates.map((candidate) => candidate.label)).toContain(
      ':heart_eyes:',
    );
  });

  it('matches inside shortcodes and names', () => {
    const labels = emojiCandidates('thumbs').map(
      (candidate) => candidate.label,
    );

    // 👍 and 👎 are `+1` and `-1`, found by their names "thumbs up" and "thumbs down".
    expect(labels).toEqual([':+1:', ':-1:']);
  });

  it('respects the limit', () => {
    expect(emojiCandidates('s', 3)).toHaveLength(3);
  });

  it('returns nothing without a match', () => {
    expect(emojiCandidates('qqqq')).toEqual([]);
  });
});

describe('applyCompletion', () => {
  const mention = (text: string): CompletionToken => {
    const token = findCompletionToken(text, text.length);
    if (!token) {
      throw new Error(`no token in ${JSON.stringify(text)}`);
    }
    return token;
  };

  it('replaces the token and adds a space', () => {
    const text = 'hi @al';
    const [candidate] = mentionCandidates('al', MEMBERS);

    const result = applyCompletion(text, mention(text), candidate!);

    expect(result).toEqual({ text: 'hi @alice ', caret: 10 });
  });

  it('reuses a following space', () => {
    const text = 'hi @al there';
    const token = findCompletionToken(text, 6)!;
    const [candidate] = mentionCandidates(token.query, MEMBERS);

    const result = applyCompletion(text, token, candidate!);

    expect(result.text).toBe('hi @alice there');
    expect(result.caret).toBe('hi @alice '.length);
  });

  it('inserts an emoji for a shortcode', () => {
    const text = 'done :white_ch';
    const [candidate] = emojiCandidates('white_ch');

    const result = applyCompletion(text, mention(text), candidate!);

    expect(result.text).toBe('done ✅ ');
  });
});
