import { createPinia, setActivePinia, type Pinia } from 'pinia';
import type { Plugin } from 'vue';

import { createAppI18n } from '@/i18n';
import { createAppVuetify } from '@/plugins/vuetify';

/** Fresh Pinia, i18n and Vuetify instances, as `global.plugins` for `mount`. */
export function createTestPlugins(): { pinia: Pinia; plugins: Plugin[] } {
  const pinia = createPinia();
  setActivePinia(pinia);
  return { pinia, plugins: [pinia, createAppI18n('en'), createAppVuetify()] };
}
