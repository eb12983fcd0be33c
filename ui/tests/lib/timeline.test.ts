import { describe, expect, it } from 'vitest';

import {
  buildTimeline,
  firstUnreadSeq,
  localDay,
  type GroupItem,
} from '@/lib/timeline';

import { ALICE, BOB, localTime, makeMessage } from '../helpers/factories';

function groups(items: ReturnType<typeof buildTimeline>): GroupItem[] {
  return items.filter((item): item is GroupItem => item.kind === 'group');
}

describe('buildTimeline', () => {
  it('groups consecutive messages of one author', () => {
    const messages = [
      makeMessage({ seq: 1, author: ALICE, created_at: localTime(1, 10, 0) }),
      makeMessage({ seq: 2, author: ALICE, created_at: localTime(1, 10, 1) }),
      makeMessage({ seq: 3, author: BOB, created_at: localTime(1, 10, 2) }),
      makeMessage({ seq: 4, author: ALICE, created_at: localTime(1, 10, 3) }),
    ];

    const result = groups(buildTimeline(messages));

    expect(result).toHaveLength(3);
    expect(result.map((group) => group.author.id)).toEqual([
      ALICE.id,
      BOB.id,
      ALICE.id,
    ]);
    expect(result[0]?.messages.map((message) => message.seq)).toEqual([1, 2]);
    expect(result[2]?.messages.map((message) => message.seq)).toEqual([4]);
  });

  it('splits groups after 5-minute gap', () => {
    const messages = [
      makeMessage({ seq: 1, created_at: localTime(1, 10, 0) }),
      makeMessage({ seq: 2, created_at: localTime(1, 10, 5) }),
      makeMessage({ seq: 3, created_at: localTime(1, 10, 10, 1) }),
    ];

    const result = groups(buildTimeline(messages));

    // Exactly 5 minutes still joins; 5 minutes and 1 second does not.
    expect(
      result.map((group) => group.messages.map((message) => message.seq)),
    ).toEqual([[1, 2], [3]]);
  });

  it('measures the gap from the previous message', () => {
    const messages = [
      makeMessage({ seq: 1, created_at: localTime(1, 10, 0) }),
      makeMessage({ seq: 2, created_at: localTime(1, 10, 4) }),
      makeMessage({ seq: 3, created_at: localTime(1, 10, 8) }),
    ];

    const result = groups(buildTimeline(messages));

    expect(result).toHaveLength(1);
    expect(result[0]?.messages).toHaveLength(3);
  });

  it('adds a day divider when the day changes', () => {
    const messages = [
      makeMessage({ seq: 1, created_at: localTime(1, 23, 58) }),
      makeMessage({ seq: 2, created_at: localTime(2, 0, 1) }),
    ];

    const items = buildTimeline(messages);

    expect(items.map((item) => item.kind)).toEqual([
      'day',
      'group',
      'day',
      'group',
    ]);
    const days = items.filter((item) => item.kind === 'day');
    expect(days.map((item) => item.day)).toEqual(['2024-05-01', '2024-05-02']);
    // Three minutes apart, but across midnight: two groups.
    expect(groups(items)).toHaveLength(2);
  });

  it('places the unread divider before the first unread', () => {
    const messages = [
      makeMessage({ seq: 1, created_at: localTime(1, 10, 0) }),
      makeMessage({ seq: 2, created_at: localTime(1, 10, 1) }),
      makeMessage({ seq: 3, created_at: localTime(1, 10, 2) }),
    ];

    const items = buildTimeline(messages, { firstUnreadSeq: 3 });

    expect(items.map((item) => item.kind)).toEqual([
      'day',
      'group',
      'unread',
      'group',
    ]);
    const [, before, , after] = items;
    expect(
      before?.kind === 'group' && before.messages.map((message) => message.seq),
    ).toEqual([1, 2]);
    expect(
      after?.kind === 'group' && after.messages.map((message) => message.seq),
    ).toEqual([3]);
  });

  it('sorts messages by seq', () => {
    const messages = [
      makeMessage({ seq: 2, created_at: localTime(1, 10, 1) }),
      makeMessage({ seq: 1, created_at: localTime(1, 10, 0) }),
    ];

    const [group] = groups(buildTimeline(messages));

    expect(group?.messages.map((message) => message.seq)).toEqual([1, 2]);
  });

  it('returns nothing for no messages', () => {
    expect(buildTimeline([])).toEqual([]);
  });

  it('gives every item a unique key', () => {
    const messages = [
      makeMessage({ seq: 1, author: ALICE, created_at: localTime(1, 10, 0) }),
      makeMessage({ seq: 2, author: BOB, created_at: localTime(1, 10, 1) }),
      makeMessage({ seq: 3, author: ALICE, created_at: localTime(2, 10, 0) }),
    ];

    const keys = buildTimeline(messages, { firstUnreadSeq: 2 }).map(
      (item) => item.key,
    );

    expect(new Set(keys).size).toBe(keys.length);
  });
});

describe('firstUnreadSeq', () => {
  it('returns null when nothing is unread', () => {
    expect(firstUnreadSeq([makeMessage({ seq: 1 })], 0)).toBeNull();
  });

  it('counts back over messages that are not deleted', () => {
    const messages = [
      makeMessage({ seq: 1 }),
      makeMessage({ seq: 2 }),
      makeMessage({ seq: 3, deleted: true }),
      makeMessage({ seq: 4 }),
    ];

    expect(firstUnreadSeq(messages, 2)).toBe(2);
  });

  it('stops at the oldest loaded message', () => {
    const messages = [makeMessage({ seq: 5 }), makeMessage({ seq: 6 })];

    expect(firstUnreadSeq(messages, 10)).toBe(5);
  });
});

describe('localDay', () => {
  it('formats the local date', () => {
    expect(localDay(new Date(2024, 0, 9, 23, 59))).toBe('2024-01-09');
  });
});
