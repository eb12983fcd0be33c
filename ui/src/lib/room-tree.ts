import type { CachedRoom, Room, Uuid } from '@/api/bindings';

/** A room in the navigation drawer with the sub-rooms under it. */
export interface RoomNode {
  room: Room;
  unread: number;
  mentions: number;
  /** 0 for a top-level room, 1 for its sub-rooms, and so on. */
  depth: number;
  children: RoomNode[];
}

export interface RoomTree {
  /** Public and private rooms; each sits under the nearest room whose path is a prefix of its own. */
  rooms: RoomNode[];
  /** Direct conversations, newest activity first. */
  direct: RoomNode[];
}

/**
 * Groups rooms with their sub-rooms by dotted path. A sub-room whose parent the user has
 * not joined moves up to the nearest joined ancestor, or to the top level.
 */
export function buildRoomTree(
  rooms: readonly CachedRoom[],
  mentionCounts: Readonly<Record<Uuid, number>> = {},
): RoomTree {
  const toNode = (cached: CachedRoom): RoomNode => ({
    room: cached.room,
    unread: cached.unread,
    mentions: mentionCounts[cached.room.id] ?? 0,
    depth: 0,
    children: [],
  });

  const direct = rooms
    .filter((cached) => cached.room.kind === 'direct')
    .map(toNode)
    .sort(
      (a, b) =>
        b.room.last_seq - a.room.last_seq || a.room.id.localeCompare(b.room.id),
    );

  // Sorting by path puts every parent before its sub-rooms.
  const named = rooms
    .filter((cached) => cached.room.kind !== 'direct')
    .map(toNode)
    .sort((a, b) => a.room.path.localeCompare(b.room.path));

  const byPath = new Map<string, RoomNode>();
  const top: RoomNode[] = [];
  for (const node of named) {
    const parent = nearestAncestor(node.room.path, byPath);
    if (parent) {
      node.depth = parent.depth + 1;
      parent.children.push(node);
    } else {
      top.push(node);
    }
    byPath.set(node.room.path, node);
  }

  return { rooms: top, direct };
}

function nearestAncestor(
  path: string,
  byPath: Map<string, RoomNode>,
): RoomNode | undefined {
  const segments = path.split('.');
  for (let length = segments.length - 1; length > 0; length -= 1) {
    const ancestor = byPath.get(segments.slice(0, length).join('.'));
    if (ancestor) {
      return ancestor;
    }
  }
  return undefined;
}

/** Lists the nodes depth first, each parent before its sub-rooms. */
export function flattenRoomTree(nodes: readonly RoomNode[]): RoomNode[] {
  const flat: RoomNode[] = [];
  const visit = (node: RoomNode) => {
    flat.push(node);
    node.children.forEach(visit);
  };
  nodes.forEach(visit);
  return flat;
}
