import { describe, expect, it } from 'vitest';

import { createAppI18n } from '@/i18n';
import en from '@/i18n/en';
import zhCN from '@/i18n/zh-CN';

/** Lists the dotted paths of every message in a nested message object. */
function keys(messages: object, prefix = ''): string[] {
  return Object.entries(messages).flatMap(([key, value]) =>
    typeof value === 'string'
      ? [`${prefix}${key}`]
      : keys(value as object, `${prefix}${key}.`),
  );
}

function placeholders(text: string): string[] {
  return [...text.matchAll(/\{(\w+)\}/g)].map((match) => match[1] ?? '').sort();
}

describe('messages', () => {
  it('have the same keys in every language', () => {
    expect(keys(zhCN).sort()).toEqual(keys(en).sort());
  });

  it('use the same placeholders in every language', () => {
    const lookup = (messages: object, path: string) =>
      path
        .split('.')
        .reduce<unknown>(
          (node, key) => (node as Record<string, unknown>)[key],
          messages,
        );
    for (const path of keys(en)) {
      const english = lookup(en, path) as string;
      const chinese = lookup(zhCN, path) as string;
      expect(placeholders(chinese), path).toEqual(placeholders(english));
    }
  });

  it('compile and format in both languages', () => {
    const i18n = createAppI18n('en');
    const { t } = i18n.global;

    expect(t('rooms.unread', { count: 3 }, 3)).toBe('3 unread messages');
    expect(t('validation.email')).toBe(
      'Enter an email address like name@example.com.',
    );

    i18n.global.locale.value = 'zh-CN';
    expect(t('rooms.unread', { count: 3 }, 3)).toBe('3 条未读消息');
  });
});
