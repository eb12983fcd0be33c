import { describe, expect, it } from 'vitest';

import { countUnreadMentions, mentionsUser } from '@/lib/mentions';

import { ALICE, ME, makeMessage } from '../helpers/factories';

const mentionMe = [
  { kind: 'user' as const, user_id: ME.id, username: ME.username },
];
const mentionAlice = [
  { kind: 'user' as const, user_id: ALICE.id, username: ALICE.username },
];

describe('mentionsUser', () => {
  it('detects a mention by user id', () => {
    expect(mentionsUser(makeMessage({ mentions: mentionMe }), ME.id)).toBe(
      true,
    );
    expect(mentionsUser(makeMessage({ mentions: mentionAlice }), ME.id)).toBe(
      false,
    );
  });

  it('counts @room and @here for everyone', () => {
    expect(
      mentionsUser(makeMessage({ mentions: [{ kind: 'room' }] }), ME.id),
    ).toBe(true);
    expect(
      mentionsUser(makeMessage({ mentions: [{ kind: 'here' }] }), ME.id),
    ).toBe(true);
  });
});

describe('countUnreadMentions', () => {
  it('counts only the unread messages', () => {
    const messages = [
      makeMessage({ seq: 1, mentions: mentionMe }),
      makeMessage({ seq: 2, mentions: mentionMe }),
      makeMessage({ seq: 3 }),
    ];

    expect(countUnreadMentions(messages, 2, ME.id)).toBe(1);
    expect(countUnreadMentions(messages, 3, ME.id)).toBe(2);
  });

  it('skips deleted and own messages', () => {
    const messages = [
      makeMessage({ seq: 1, mentions: mentionMe }),
      makeMessage({ seq: 2, mentions: [{ kind: 'room' }], author: ME }),
      makeMessage({ seq: 3, mentions: mentionMe, deleted: true }),
    ];

    // The deleted message is not unread, so two unread reach back to seq 1.
    expect(countUnreadMentions(messages, 2, ME.id)).toBe(1);
  });

  it('returns 0 with nothing unread', () => {
    expect(
      countUnreadMentions([makeMessage({ mentions: mentionMe })], 0, ME.id),
    ).toBe(0);
  });
});
