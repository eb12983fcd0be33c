// The rules of what each room role may do, as the server enforces them. The UI uses them
// only to hide what the user cannot do, and the server still checks every request.

import type { Role } from '@/api/bindings';

const ROLE_RANK: Record<Role, number> = { member: 0, moderator: 1, owner: 2 };

/** Checks whether the role may change the room's settings, invite, pin and delete any message. */
export function isModerator(role: Role | null | undefined): boolean {
  return role === 'moderator' || role === 'owner';
}

/**
 * Checks whether a user with `actor` may kick or ban a member with `target`: a moderator acts on
 * plain members, an owner on everyone else, and no one on themselves.
 */
export function canRemove(
  actor: Role | null | undefined,
  target: Role,
  self: boolean,
): boolean {
  return (
    !self &&
    isModerator(actor) &&
    ROLE_RANK[actor ?? 'member'] > ROLE_RANK[target]
  );
}

/**
 * Checks whether a user with `actor` may make a member with `target` a moderator or a member
 * again. The server gives only roles below the actor's own, to members below it, so only
 * an owner changes roles.
 */
export function canChangeRole(
  actor: Role | null | undefined,
  target: Role,
  self: boolean,
): boolean {
  return (
    canRemove(actor, target, self) &&
    ROLE_RANK[actor ?? 'member'] > ROLE_RANK.moderator
  );
}

/** Characters of the server's invite codes: URL-safe base64 without padding. */
const INVITE_CODE = /^[A-Za-z0-9_-]+$/;

/**
 * Returns the invite code in `input`, which is the code itself or a link such as
 * `https://chat.example.com/invite/CODE`, or `null` when it contains no valid code.
 */
export function parseInviteCode(input: string): string | null {
  const withoutSuffix = input.trim().split(/[?#]/)[0] ?? '';
  const marker = withoutSuffix.lastIndexOf('/invite/');
  const code =
    marker >= 0
      ? withoutSuffix.slice(marker + '/invite/'.length).replace(/\/+$/, '')
      : withoutSuffix;
  return INVITE_CODE.test(code) ? code : null;
}
