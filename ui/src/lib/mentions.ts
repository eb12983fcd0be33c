import type { Message, Uuid } from '@/api/bindings';

/** Returns whether a message mentions the user by name, or everyone with `@room` or `@here`. */
export function mentionsUser(message: Message, userId: Uuid): boolean {
  return message.mentions.some(
    (mention) =>
      mention.kind === 'room' ||
      mention.kind === 'here' ||
      (mention.kind === 'user' && mention.user_id === userId),
  );
}

/**
 * Counts the unread messages that mention the user. The unread ones are the `unread`
 * newest messages that are not deleted, which is how the cache counts them; the user's
 * own messages never count.
 */
export function countUnreadMentions(
  messages: readonly Message[],
  unread: number,
  userId: Uuid,
): number {
  if (unread <= 0) {
    return 0;
  }
  return messages
    .filter((message) => !message.deleted)
    .sort((a, b) => b.seq - a.seq)
    .slice(0, unread)
    .filter(
      (message) =>
        message.author.id !== userId && mentionsUser(message, userId),
    ).length;
}
