import { describe, expect, it } from 'vitest';

import {
  canChangeRole,
  canRemove,
  isModerator,
  parseInviteCode,
} from '@/lib/moderation';

describe('isModerator', () => {
  it('holds for moderators and owners only', () => {
    expect(isModerator('owner')).toBe(true);
    expect(isModerator('moderator')).toBe(true);
    expect(isModerator('member')).toBe(false);
    expect(isModerator(null)).toBe(false);
  });
});

describe('canRemove', () => {
  it('lets a moderator remove plain members only', () => {
    expect(canRemove('moderator', 'member', false)).toBe(true);
    expect(canRemove('moderator', 'moderator', false)).toBe(false);
    expect(canRemove('moderator', 'owner', false)).toBe(false);
  });

  it('lets an owner remove everyone else', () => {
    expect(canRemove('owner', 'member', false)).toBe(true);
    expect(canRemove('owner', 'moderator', false)).toBe(true);
    expect(canRemove('owner', 'owner', true)).toBe(false);
  });

  it('never lets a member or a non-member remove anyone', () => {
    expect(canRemove('member', 'member', false)).toBe(false);
    expect(canRemove(null, 'member', false)).toBe(false);
  });
});

describe('canChangeRole', () => {
  it('lets only an owner change roles', () => {
    expect(canChangeRole('owner', 'member', false)).toBe(true);
    expect(canChangeRole('owner', 'moderator', false)).toBe(true);
    expect(canChangeRole('moderator', 'member', false)).toBe(false);
    expect(canChangeRole('member', 'member', false)).toBe(false);
  });
});

describe('parseInviteCode', () => {
  it.each([
    ['abcDEF123-_x', 'abcDEF123-_x'],
    ['  abc  ', 'abc'],
    ['https://chat.example.com/invite/abc', 'abc'],
    ['https://chat.example.com/invite/abc/', 'abc'],
    ['http://host:3000/invite/abc?from=mail#top', 'abc'],
  ])('reads %j as %j', (input, code) => {
    expect(parseInviteCode(input)).toBe(code);
  });

  it.each([
    '',
    '   ',
    'https://chat.example.com/invite/',
    'https://chat.example.com/rooms/abc',
    'a b',
    'code!',
  ])('rejects %j', (input) => {
    expect(parseInviteCode(input)).toBeNull();
  });
});
