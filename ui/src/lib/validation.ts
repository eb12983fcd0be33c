// Client-side checks of the sign-in and registration form, repeating the server's rules
// in roomler-shared (limits.rs) so that most mistakes show before a request. The server
// checks again, and the form shows its message when it disagrees.

export const USERNAME_MIN_CHARS = 3;
export const USERNAME_MAX_CHARS = 32;
export const PASSWORD_MIN_CHARS = 8;
export const EMAIL_MAX_CHARS = 254;

/** The reason a value is invalid, named as a key of the `validation` i18n messages. */
export type ValidationError =
  | 'required'
  | 'serverUrl'
  | 'usernameLength'
  | 'usernameChars'
  | 'usernameStart'
  | 'email'
  | 'passwordLength';

export function checkServerUrl(value: string): ValidationError | null {
  const trimmed = value.trim();
  if (!trimmed) {
    return 'required';
  }
  try {
    const url = new URL(trimmed);
    return url.protocol === 'http:' || url.protocol === 'https:'
      ? null
      : 'serverUrl';
  } catch {
    return 'serverUrl';
  }
}

export function checkUsername(value: string): ValidationError | null {
  const name = value.trim().normalize('NFKC');
  const length = [...name].length;
  if (length === 0) {
    return 'required';
  }
  if (length < USERNAME_MIN_CHARS || length > USERNAME_MAX_CHARS) {
    return 'usernameLength';
  }
  if (!/^[\p{Alphabetic}\p{N}_-]+$/u.test(name)) {
    return 'usernameChars';
  }
  if (!/^[\p{Alphabetic}\p{N}]/u.test(name)) {
    return 'usernameStart';
  }
  return null;
}

/** Checks the shape only: one `@`, a dotted domain, no spaces. */
export function checkEmail(value: string): ValidationError | null {
  const address = value.trim();
  if (!address) {
    return 'required';
  }
  if ([...address].length > EMAIL_MAX_CHARS) {
    return 'email';
  }
  const shape = /^[^\s@]{1,64}@[^\s@]+$/u;
  if (!shape.test(address)) {
    return 'email';
  }
  const domain = address.slice(address.indexOf('@') + 1);
  const labels = domain.split('.');
  return labels.length >= 2 && labels.every((label) => label.length > 0)
    ? null
    : 'email';
}

export function checkPassword(value: string): ValidationError | null {
  if (!value) {
    return 'required';
  }
  return [...value].length < PASSWORD_MIN_CHARS ? 'passwordLength' : null;
}

export function checkRequired(value: string): ValidationError | null {
  return value.trim() ? null : 'required';
}
