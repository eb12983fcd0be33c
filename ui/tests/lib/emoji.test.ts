import { describe, expect, it } from 'vitest';

import { EMOJI, QUICK_REACTIONS, emojiByShortcode } from '@/lib/emoji';

describe('emoji table', () => {
  it('has about a hundred entries', () => {
    expect(EMOJI.length).toBeGreaterThanOrEqual(100);
    expect(EMOJI.length).toBeLessThanOrEqual(150);
  });

  it('has unique shortcodes of gemoji characters', () => {
    const shortcodes = EMOJI.map((entry) => entry.shortcode);

    expect(new Set(shortcodes).size).toBe(shortcodes.length);
    for (const shortcode of shortcodes) {
      expect(shortcode).toMatch(/^[a-z0-9_+-]+$/);
    }
  });

  it('finds an entry by shortcode', () => {
    expect(emojiByShortcode('tada')?.emoji).toBe('🎉');
    expect(emojiByShortcode('+1')?.emoji).toBe('👍');
    expect(emojiByShortcode('no_such_emoji')).toBeUndefined();
  });

  it('offers quick reactions from the table', () => {
    const all = new Set(EMOJI.map((entry) => entry.emoji));

    for (const emoji of QUICK_REACTIONS) {
      expect(all.has(emoji)).toBe(true);
    }
  });
});
