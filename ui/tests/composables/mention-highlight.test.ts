import { describe, expect, it } from 'vitest';
import { effectScope, nextTick, ref } from 'vue';

import {
  cssAttributeValue,
  mentionHighlightCss,
  useMentionHighlight,
} from '@/composables/mention-highlight';

describe('mentionHighlightCss', () => {
  it('targets the user, @room and @here', () => {
    const css = mentionHighlightCss('alice');

    expect(css).toContain('span.mention[data-mention="alice" i]');
    expect(css).toContain('span.mention[data-mention="room"]');
    expect(css).toContain('span.mention[data-mention="here"]');
  });

  it('escapes quotes and backslashes', () => {
    expect(cssAttributeValue('a"b\\c')).toBe('"a\\"b\\\\c"');
  });
});

describe('useMentionHighlight', () => {
  it('matches the mention spans of the current user', async () => {
    const username = ref<string | null>('alice');
    const scope = effectScope();
    scope.run(() => useMentionHighlight(username));
    await nextTick();
    document.body.innerHTML = `
      <div class="message-body">
        <span class="mention" data-mention="Alice" id="mine">@Alice</span>
        <span class="mention" data-mention="bob" id="other">@bob</span>
      </div>`;

    const style = document.getElementById('roomler-mention-highlight');
    const selector = (style?.textContent ?? '').split('{')[0] ?? '';
    const matched = [...document.querySelectorAll(selector)].map(
      (element) => element.id,
    );

    expect(matched).toEqual(['mine']);

    username.value = null;
    await nextTick();
    expect(style?.textContent).toBe('');

    scope.stop();
    expect(document.getElementById('roomler-mention-highlight')).toBeNull();
  });
});
