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
  });
}
