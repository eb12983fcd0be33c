import { createI18n } from 'vue-i18n';

import en from './en';
import zhCN from './zh-CN';

export type MessageSchema = typeof en;

/** Creates the i18n instance; every visible string of the app comes from these messages. */
export function createAppI18n(locale: 'en' | 'zh-CN' = 'en') {
  return createI18n<[MessageSchema], 'en' | 'zh-CN', false>({
    legacy: false,
    locale,
    fallbackLocale: 'en',
    messages: { en, 'zh-CN': zhCN },
  });
}
