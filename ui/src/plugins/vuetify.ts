import 'vuetify/styles';

import { createVuetify } from 'vuetify';
import { aliases, mdi } from 'vuetify/iconsets/mdi-svg';
import { en, zhHans } from 'vuetify/locale';

/** Vuetify with SVG icons from @mdi/js, so the app loads no icon font. */
export function createAppVuetify() {
  return createVuetify({
    icons: { defaultSet: 'mdi', aliases, sets: { mdi } },
    locale: { locale: 'en', fallback: 'en', messages: { en, 'zh-CN': zhHans } },
    theme: { defaultTheme: 'system' },
    // Vuetify's default mobile breakpoint is 1280 px, wider than the window's default
    // 1200 px, and on "mobile" the room list becomes a hidden overlay. A desktop window
    // keeps its drawers beside the timeline down to 960 px.
    display: { mobileBreakpoint: 'md' },
  });
}
