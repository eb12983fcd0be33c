import { defineStore } from 'pinia';
import { ref, watch } from 'vue';

export type ThemeSetting = 'light' | 'dark' | 'system';
export type LocaleSetting = 'en' | 'zh-CN';

export const THEMES: readonly ThemeSetting[] = ['light', 'dark', 'system'];
export const LOCALES: readonly LocaleSetting[] = ['en', 'zh-CN'];

/** localStorage key of the settings, stored as JSON. */
export const SETTINGS_KEY = 'roomler.settings';

interface StoredSettings {
  theme: ThemeSetting;
  locale: LocaleSetting;
}

function systemLocale(): LocaleSetting {
  return navigator.language.toLowerCase().startsWith('zh') ? 'zh-CN' : 'en';
}

function readStored(): StoredSettings {
  const defaults: StoredSettings = { theme: 'system', locale: systemLocale() };
  const raw = localStorage.getItem(SETTINGS_KEY);
  if (!raw) {
    return defaults;
  }
  try {
    const parsed = JSON.parse(raw) as Partial<StoredSettings>;
    return {
      theme: THEMES.includes(parsed.theme as ThemeSetting)
        ? (parsed.theme as ThemeSetting)
        : defaults.theme,
      locale: LOCALES.includes(parsed.locale as LocaleSetting)
        ? (parsed.locale as LocaleSetting)
        : defaults.locale,
    };
  } catch {
    // Settings written by hand or by an older version: start again from the defaults.
    return defaults;
  }
}

export const useSettingsStore = defineStore('settings', () => {
  const stored = readStored();
  const theme = ref<ThemeSetting>(stored.theme);
  const locale = ref<LocaleSetting>(stored.locale);

  watch([theme, locale], () => {
    const value: StoredSettings = { theme: theme.value, locale: locale.value };
    localStorage.setItem(SETTINGS_KEY, JSON.stringify(value));
  });

  return { theme, locale };
});
