import { describe, expect, it } from 'vitest';

import {
  checkEmail,
  checkPassword,
  checkServerUrl,
  checkUsername,
} from '@/lib/validation';

describe('checkServerUrl', () => {
  it('accepts http and https URLs', () => {
    expect(checkServerUrl('https://chat.example.com')).toBeNull();
    expect(checkServerUrl(' http://127.0.0.1:3000 ')).toBeNull();
  });

  it('rejects other input', () => {
    expect(checkServerUrl('')).toBe('required');
    expect(checkServerUrl('chat.example.com')).toBe('serverUrl');
    expect(checkServerUrl('ftp://example.com')).toBe('serverUrl');
  });
});

describe('checkUsername', () => {
  it('accepts letters, digits, _ and -', () => {
    expect(checkUsername('alice_01')).toBeNull();
    expect(checkUsername('张三丰')).toBeNull();
  });

  it('rejects bad lengths and characters', () => {
    expect(checkUsername('')).toBe('required');
    expect(checkUsername('al')).toBe('usernameLength');
    expect(checkUsername('a'.repeat(33))).toBe('usernameLength');
    expect(checkUsername('al ice')).toBe('usernameChars');
    expect(checkUsername('_alice')).toBe('usernameStart');
  });
});

describe('checkEmail', () => {
  it('accepts a dotted domain', () => {
    expect(checkEmail('alice@example.com')).toBeNull();
  });

  it('rejects malformed addresses', () => {
    expect(checkEmail('')).toBe('required');
    expect(checkEmail('alice')).toBe('email');
    expect(checkEmail('alice@localhost')).toBe('email');
    expect(checkEmail('a@b@example.com')).toBe('email');
    expect(checkEmail('alice@example..com')).toBe('email');
  });
});

describe('checkPassword', () => {
  it('needs eight characters', () => {
    expect(checkPassword('')).toBe('required');
    expect(checkPassword('seven77')).toBe('passwordLength');
    expect(checkPassword('eight888')).toBeNull();
  });
});
