import { afterEach, describe, expect, it } from 'vitest';

import { createAppVuetify } from '@/plugins/vuetify';

const jsdomWidth = window.innerWidth;

function setWindowWidth(width: number) {
  Object.defineProperty(window, 'innerWidth', {
    value: width,
    configurable: true,
  });
}

afterEach(() => setWindowWidth(jsdomWidth));

describe('createAppVuetify', () => {
  it('is not mobile at the default window width', () => {
    // 1200 px is the main window's width in tauri.conf.json5.
    setWindowWidth(1200);
    expect(createAppVuetify().display.mobile.value).toBe(false);
  });

  it('is mobile in a narrow window', () => {
    setWindowWidth(800);
    expect(createAppVuetify().display.mobile.value).toBe(true);
  });
});
