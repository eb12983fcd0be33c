// The composer's formatting toolbar as pure text transforms: each takes the text and the
// selection and returns the new text and selection. The Markdown is the CommonMark with
// GitHub strikethrough that the server renders.

export type FormatAction =
  | 'bold'
  | 'italic'
  | 'strikethrough'
  | 'code'
  | 'codeBlock'
  | 'link'
  | 'bulletList'
  | 'quote';

export const FORMAT_ACTIONS: readonly FormatAction[] = [
  'bold',
  'italic',
  'strikethrough',
  'code',
  'codeBlock',
  'link',
  'bulletList',
  'quote',
];

/** Text with a selection; `start === end` is a caret. Indexes are UTF-16 offsets. */
export interface TextSelection {
  text: string;
  start: number;
  end: number;
}

/** Applies a toolbar action to the selection, or at the caret when nothing is selected. */
export function applyFormat(
  action: FormatAction,
  selection: TextSelection,
): TextSelection {
  const { start, end } = normalizeRange(selection);
  const range = { text: selection.text, start, end };
  switch (action) {
    case 'bold':
      return toggleInline(range, '**');
    case 'italic':
      return toggleInline(range, '_');
    case 'strikethrough':
      return toggleInline(range, '~~');
    case 'code':
      return wrapCode(range);
    case 'codeBlock':
      return wrapCodeBlock(range);
    case 'link':
      return wrapLink(range);
    case 'bulletList':
      return toggleLinePrefix(range, '- ');
    case 'quote':
      return toggleLinePrefix(range, '> ');
  }
}

function normalizeRange(selection: TextSelection): {
  start: number;
  end: number;
} {
  const length = selection.text.length;
  const clamp = (index: number) => Math.min(Math.max(index, 0), length);
  const a = clamp(selection.start);
  const b = clamp(selection.end);
  return { start: Math.min(a, b), end: Math.max(a, b) };
}

function replaceRange(
  text: string,
  start: number,
  end: number,
  replacement: string,
): string {
  return text.slice(0, start) + replacement + text.slice(end);
}

/**
 * Wraps the selection in `marker`, or removes the marker when it already surrounds the
 * selection. An empty selection gets an empty pair with the caret inside.
 */
function toggleInline(selection: TextSelection, marker: string): TextSelection {
  const { text, start, end } = selection;
  const size = marker.length;
  const wrapped =
    start >= size &&
    text.slice(start - size, start) === marker &&
    text.slice(end, end + size) === marker;
  if (wrapped) {
    const inner = text.slice(start, end);
    return {
      text: replaceRange(text, start - size, end + size, inner),
      start: start - size,
      end: end - size,
    };
  }
  const inner = text.slice(start, end);
  return {
    text: replaceRange(text, start, end, marker + inner + marker),
    start: start + size,
    end: end + size,
  };
}

/**
 * Wraps the selection in a code span whose fence is one backtick longer than the longest
 * run of backticks inside, padded with spaces when the code starts or ends with a backtick,
 * as CommonMark requires.
 */
function wrapCode(selection: TextSelection): TextSelection {
  const { text, start, end } = selection;
  const inner = text.slice(start, end);
  const fence = '`'.repeat(longestRun(inner, '`') + 1);
  const padding = inner.startsWith('`') || inner.endsWith('`') ? ' ' : '';
  const opening = fence + padding;
  return {
    text: replaceRange(text, start, end, opening + inner + padding + fence),
    start: start + opening.length,
    end: end + opening.length,
  };
}

/**
 * Puts the selection on lines of its own between code fences, with the code selected.
 * An empty selection gets an empty block with the caret on its middle line.
 */
function wrapCodeBlock(selection: TextSelection): TextSelection {
  const { text, start, end } = selection;
  const inner = text.slice(start, end);
  const fence = '`'.repeat(Math.max(3, longestRun(inner, '`') + 1));
  const before = start > 0 && text[start - 1] !== '\n' ? '\n' : '';
  const after = end < text.length && text[end] !== '\n' ? '\n' : '';
  const opening = `${before}${fence}\n`;
  const block = `${opening}${inner}\n${fence}${after}`;
  return {
    text: replaceRange(text, start, end, block),
    start: start + opening.length,
    end: start + opening.length + inner.length,
  };
}

/**
 * Makes the selection a link. Selected text becomes the link text with the caret in the
 * empty target. A selected URL becomes the target with the caret in the empty link text.
 * An empty selection gets `[]()` with the caret in the brackets.
 */
function wrapLink(selection: TextSelection): TextSelection {
  const { text, start, end } = selection;
  const inner = text.slice(start, end);
  if (/^(https?:\/\/|mailto:)\S+$/i.test(inner)) {
    const caret = start + 1;
    return {
      text: replaceRange(text, start, end, `[](${inner})`),
      start: caret,
      end: caret,
    };
  }
  const link = `[${inner}]()`;
  const caret = inner === '' ? start + 1 : start + link.length - 1;
  return {
    text: replaceRange(text, start, end, link),
    start: caret,
    end: caret,
  };
}

/**
 * Adds `prefix` to every line that the selection touches, or removes it when every one
 * of those lines already has it. A selection keeps covering the same lines; a caret
 * moves with its line's text.
 */
function toggleLinePrefix(
  selection: TextSelection,
  prefix: string,
): TextSelection {
  const { text, start, end } = selection;
  const lineStart = text.lastIndexOf('\n', start - 1) + 1;
  // A selection that ends right after a line break does not touch the next line.
  const lastIndex = end > start && text[end - 1] === '\n' ? end - 1 : end;
  const nextBreak = text.indexOf('\n', lastIndex);
  const lineEnd = nextBreak === -1 ? text.length : nextBreak;

  const lines = text.slice(lineStart, lineEnd).split('\n');
  const remove = lines.every((line) => line.startsWith(prefix));
  const changed = lines.map((line) =>
    remove ? line.slice(prefix.length) : prefix + line,
  );
  const block = changed.join('\n');
  const newText = replaceRange(text, lineStart, lineEnd, block);

  if (start === end) {
    const shift = remove
      ? -Math.min(prefix.length, start - lineStart)
      : prefix.length;
    const caret = start + shift;
    return { text: newText, start: caret, end: caret };
  }
  return { text: newText, start: lineStart, end: lineStart + block.length };
}

function longestRun(text: string, character: string): number {
  let longest = 0;
  let current = 0;
  for (const c of text) {
    current = c === character ? current + 1 : 0;
    longest = Math.max(longest, current);
  }
  return longest;
}
