import { describe, expect, it } from 'vitest';

import { applyFormat, type TextSelection } from '@/lib/markdown-shortcuts';

/** Writes a selection as text with `[` and `]` around it, or `|` for a caret. */
function show({ text, start, end }: TextSelection): string {
  if (start === end) {
    return `${text.slice(0, start)}|${text.slice(start)}`;
  }
  return `${text.slice(0, start)}[${text.slice(start, end)}]${text.slice(end)}`;
}

/** Reads the notation of `show`. */
function parse(marked: string): TextSelection {
  const caret = marked.indexOf('|');
  if (caret !== -1) {
    return { text: marked.replace('|', ''), start: caret, end: caret };
  }
  const start = marked.indexOf('[');
  const end = marked.indexOf(']') - 1;
  return { text: marked.replace('[', '').replace(']', ''), start, end };
}

describe('applyFormat inline', () => {
  const cases: Array<[Parameters<typeof applyFormat>[0], string, string]> = [
    ['bold', 'say [hi] now', 'say **[hi]** now'],
    ['bold', 'say | now', 'say **|** now'],
    ['italic', 'say [hi] now', 'say _[hi]_ now'],
    ['italic', '|', '_|_'],
    ['strikethrough', 'say [hi] now', 'say ~~[hi]~~ now'],
    ['strikethrough', 'a|', 'a~~|~~'],
    ['code', 'run [ls -la]', 'run `[ls -la]`'],
    ['code', 'run |', 'run `|`'],
  ];

  it.each(cases)('%s turns %j into %j', (action, before, after) => {
    expect(show(applyFormat(action, parse(before)))).toBe(after);
  });

  it('removes markers that surround the selection', () => {
    expect(show(applyFormat('bold', parse('say **[hi]** now')))).toBe(
      'say [hi] now',
    );
    expect(show(applyFormat('italic', parse('_[hi]_')))).toBe('[hi]');
  });

  it('lengthens the code fence around backticks', () => {
    expect(show(applyFormat('code', parse('[a`b]')))).toBe('``[a`b]``');
  });

  it('pads code that starts with a backtick', () => {
    expect(show(applyFormat('code', parse('[`x]')))).toBe('`` [`x] ``');
  });

  it('accepts a backward selection', () => {
    expect(show(applyFormat('bold', { text: 'ab', start: 2, end: 0 }))).toBe(
      '**[ab]**',
    );
  });
});

describe('applyFormat code block', () => {
  it('fences selection on own lines', () => {
    expect(show(applyFormat('codeBlock', parse('see [let x = 1;] here')))).toBe(
      'see \n```\n[let x = 1;]\n```\n here',
    );
  });

  it('adds no line breaks at line boundaries', () => {
    expect(show(applyFormat('codeBlock', parse('[a\nb]')))).toBe(
      '```\n[a\nb]\n```',
    );
  });

  it('inserts an empty block at the caret', () => {
    expect(show(applyFormat('codeBlock', parse('|')))).toBe('```\n|\n```');
  });

  it('uses a longer fence around a fence', () => {
    expect(show(applyFormat('codeBlock', parse('[```]')))).toBe(
      '````\n[```]\n````',
    );
  });
});

describe('applyFormat link', () => {
  it('makes selected text the link text', () => {
    expect(show(applyFormat('link', parse('read [the docs] first')))).toBe(
      'read [the docs](|) first',
    );
  });

  it('makes a selected URL the target', () => {
    expect(show(applyFormat('link', parse('[https://example.com]')))).toBe(
      '[|](https://example.com)',
    );
  });

  it('inserts an empty link at the caret', () => {
    expect(show(applyFormat('link', parse('go |')))).toBe('go [|]()');
  });
});

describe('applyFormat line prefixes', () => {
  it('prefixes each selected line for a list', () => {
    expect(show(applyFormat('bulletList', parse('[one\ntwo]')))).toBe(
      '[- one\n- two]',
    );
  });

  it('extends a partial selection to whole lines', () => {
    expect(
      show(applyFormat('bulletList', parse('intro\non[e\ntw]o\nend'))),
    ).toBe('intro\n[- one\n- two]\nend');
  });

  it('removes the prefix when every line has it', () => {
    expect(show(applyFormat('bulletList', parse('[- one\n- two]')))).toBe(
      '[one\ntwo]',
    );
  });

  it('adds prefix to mixed lines', () => {
    expect(show(applyFormat('quote', parse('[> one\ntwo]')))).toBe(
      '[> > one\n> two]',
    );
  });

  it('prefixes the caret line for a list', () => {
    expect(show(applyFormat('bulletList', parse('first\nsec|ond')))).toBe(
      'first\n- sec|ond',
    );
  });

  it('starts a list on an empty line', () => {
    expect(show(applyFormat('bulletList', parse('|')))).toBe('- |');
  });

  it('quotes the caret line', () => {
    expect(show(applyFormat('quote', parse('hello|')))).toBe('> hello|');
  });

  it('unquotes the caret line', () => {
    expect(show(applyFormat('quote', parse('> hel|lo')))).toBe('hel|lo');
  });

  it('ignores the line after a trailing line break', () => {
    expect(show(applyFormat('quote', parse('[one\n]two')))).toBe(
      '[> one]\ntwo',
    );
  });
});
