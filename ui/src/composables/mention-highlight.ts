import { watchEffect, onScopeDispose, type Ref } from 'vue';

const STYLE_ID = 'roomler-mention-highlight';

/** Escapes a value for a double-quoted CSS attribute selector. */
export function cssAttributeValue(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\a ')}"`;
}

/** Builds the rule that highlights mentions of `username`, `@room` and `@here`. */
export function mentionHighlightCss(username: string): string {
  // The server writes a username mention's `data-mention` as typed, so the match ignores
  // ASCII case (the `i` flag); `@room` and `@here` are written lowercase.
  const selectors = [
    `.message-body span.mention[data-mention=${cssAttributeValue(username)} i]`,
    '.message-body span.mention[data-mention="room"]',
    '.message-body span.mention[data-mention="here"]',
  ];
  return `${selectors.join(',\n')} {
  background: rgba(var(--v-theme-warning), 0.25);
  color: rgb(var(--v-theme-on-surface));
  font-weight: 600;
}`;
}

/** Keeps a style element in the document head that highlights mentions of the current user. */
export function useMentionHighlight(username: Ref<string | null>): void {
  const element = document.createElement('style');
  element.id = STYLE_ID;
  document.head.appendChild(element);

  watchEffect(() => {
    element.textContent = username.value
      ? mentionHighlightCss(username.value)
      : '';
  });

  onScopeDispose(() => element.remove());
}
