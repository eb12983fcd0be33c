import type { Message, UserRef } from '@/api/bindings';

/** Messages from one author further apart than this start a new group. */
export const GROUP_GAP_MS = 5 * 60 * 1000;

/** A divider before the first message of a calendar day, in local time. */
export interface DayItem {
  kind: 'day';
  key: string;
  /** The local date as `YYYY-MM-DD`. */
  day: string;
  /** Midnight of that day, local time. */
  date: Date;
}

/** The "new messages" divider before the first unread message. */
export interface UnreadItem {
  kind: 'unread';
  key: string;
}

/** Consecutive messages of one author, shown under one name and time. */
export interface GroupItem {
  kind: 'group';
  key: string;
  author: UserRef;
  messages: Message[];
}

export type TimelineItem = DayItem | UnreadItem | GroupItem;

export interface TimelineOptions {
  /** Sequence number of the first unread message; the unread divider goes before it. */
  firstUnreadSeq?: number | null;
}

/** Formats the local calendar day of a date as `YYYY-MM-DD`. */
export function localDay(date: Date): string {
  const month = String(date.getMonth() + 1).padStart(2, '0');
  const day = String(date.getDate()).padStart(2, '0');
  return `${date.getFullYear()}-${month}-${day}`;
}

/**
 * Splits messages into author groups with day dividers and the unread divider.
 *
 * A message joins the group before it when it has the same author, was sent on the same
 * local day, at most {@link GROUP_GAP_MS} after the previous message, and no divider
 * lies between them. Messages may come in any order and are sorted by `seq`.
 */
export function buildTimeline(
  messages: readonly Message[],
  options: TimelineOptions = {},
): TimelineItem[] {
  const sorted = [...messages].sort((a, b) => a.seq - b.seq);
  const firstUnreadSeq = options.firstUnreadSeq ?? null;

  const items: TimelineItem[] = [];
  let group: GroupItem | null = null;
  let previousDay: string | null = null;
  let previousTime = 0;
  let unreadPlaced = false;

  for (const message of sorted) {
    const created = new Date(message.created_at);
    const time = created.getTime();
    const day = localDay(created);

    if (day !== previousDay) {
      const midnight = new Date(
        created.getFullYear(),
        created.getMonth(),
        created.getDate(),
      );
      items.push({ kind: 'day', key: `day-${day}`, day, date: midnight });
      previousDay = day;
      group = null;
    }

    if (
      !unreadPlaced &&
      firstUnreadSeq !== null &&
      message.seq >= firstUnreadSeq
    ) {
      items.push({ kind: 'unread', key: 'unread' });
      unreadPlaced = true;
      group = null;
    }

    const continuesGroup =
      group !== null &&
      group.author.id === message.author.id &&
      time - previousTime <= GROUP_GAP_MS;
    if (continuesGroup && group !== null) {
      group.messages.push(message);
    } else {
      group = {
        kind: 'group',
        key: `group-${message.id}`,
        author: message.author,
        messages: [message],
      };
      items.push(group);
    }
    previousTime = time;
  }

  return items;
}

/**
 * Returns the sequence number of the oldest of the `unread` newest messages that are not
 * deleted, which is where the unread divider goes, or `null` when nothing is unread.
 * The cache counts unread messages the same way: newer than the read mark and not deleted.
 */
export function firstUnreadSeq(
  messages: readonly Message[],
  unread: number,
): number | null {
  if (unread <= 0) {
    return null;
  }
  const visible = messages
    .filter((message) => !message.deleted)
    .sort((a, b) => b.seq - a.seq)
    .slice(0, unread);
  const oldest = visible[visible.length - 1];
  return oldest ? oldest.seq : null;
}
