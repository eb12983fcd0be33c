import { describe, expect, it } from 'vitest';

import { buildRoomTree, flattenRoomTree } from '@/lib/room-tree';

import { makeCachedRoom } from '../helpers/factories';

describe('buildRoomTree', () => {
  it('nests sub-rooms under their parent by path', () => {
    const tree = buildRoomTree([
      makeCachedRoom({ path: 'team.frontend' }),
      makeCachedRoom({ path: 'general' }),
      makeCachedRoom({ path: 'team' }),
      makeCachedRoom({ path: 'team.frontend.css' }),
      makeCachedRoom({ path: 'team.backend' }),
    ]);

    expect(tree.rooms.map((node) => node.room.path)).toEqual([
      'general',
      'team',
    ]);
    const team = tree.rooms[1];
    expect(team?.children.map((node) => node.room.path)).toEqual([
      'team.backend',
      'team.frontend',
    ]);
    expect(team?.children[1]?.children.map((node) => node.room.path)).toEqual([
      'team.frontend.css',
    ]);
    expect(team?.children[1]?.children[0]?.depth).toBe(2);
  });

  it('attaches orphans to nearest ancestor', () => {
    const tree = buildRoomTree([
      makeCachedRoom({ path: 'team' }),
      makeCachedRoom({ path: 'team.frontend.css' }),
      makeCachedRoom({ path: 'other.child' }),
    ]);

    expect(tree.rooms.map((node) => node.room.path)).toEqual([
      'other.child',
      'team',
    ]);
    expect(tree.rooms[1]?.children.map((node) => node.room.path)).toEqual([
      'team.frontend.css',
    ]);
    expect(tree.rooms[1]?.children[0]?.depth).toBe(1);
  });

  it('ignores shared name prefixes', () => {
    const tree = buildRoomTree([
      makeCachedRoom({ path: 'team' }),
      makeCachedRoom({ path: 'teams' }),
    ]);

    expect(tree.rooms.map((node) => node.room.path)).toEqual(['team', 'teams']);
  });

  it('keeps direct messages separate, newest first', () => {
    const tree = buildRoomTree([
      makeCachedRoom({
        id: 'dm-old',
        path: 'dm-old',
        kind: 'direct',
        name: '',
        last_seq: 3,
      }),
      makeCachedRoom({ path: 'general' }),
      makeCachedRoom({
        id: 'dm-new',
        path: 'dm-new',
        kind: 'direct',
        name: '',
        last_seq: 9,
      }),
    ]);

    expect(tree.rooms.map((node) => node.room.path)).toEqual(['general']);
    expect(tree.direct.map((node) => node.room.id)).toEqual([
      'dm-new',
      'dm-old',
    ]);
  });

  it('carries unread and mention counts', () => {
    const tree = buildRoomTree([makeCachedRoom({ path: 'general' }, 4)], {
      'room-general': 2,
    });

    expect(tree.rooms[0]?.unread).toBe(4);
    expect(tree.rooms[0]?.mentions).toBe(2);
  });
});

describe('flattenRoomTree', () => {
  it('lists parents before their sub-rooms', () => {
    const tree = buildRoomTree([
      makeCachedRoom({ path: 'b' }),
      makeCachedRoom({ path: 'a.x' }),
      makeCachedRoom({ path: 'a' }),
    ]);

    expect(flattenRoomTree(tree.rooms).map((node) => node.room.path)).toEqual([
      'a',
      'a.x',
      'b',
    ]);
  });
});
