import { defineStore } from 'pinia';
import { ref, watch } from 'vue';

import * as api from '@/api/bindings';
import type { NotificationLevel } from '@/api/bindings';

export type ThemeSetting = 'light' | 'dark' | 'system';
export type LocaleSetting = 'en' | 'zh-CN';

export const THEMES: readonly ThemeSetting[] = ['light', 'dark', 'system'];
export const LOCALES: readonly LocaleSetting[] = ['en', 'zh-CN'];
export const NOTIFICATION_LEVELS: readonly NotificationLevel[] = [
  'all',
  'mentions',
  'off',
];

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

  /**
   * The notification level. The shell stores it, in the profile, because its notifier
   * runs before and without the page; `null` until {@link loadNotifications}.
   */
  const notifications = ref<NotificationLevel | null>(null);

  watch([theme, locale], () => {
    const value: StoredSettings = { theme: theme.value, locale: locale.value };
    localStorage.setItem(SETTINGS_KEY, JSON.stringify(value));
  });

  async function loadNotifications(): Promise<void> {
    notifications.value = await api.notificationLevel();
  }

  /** Stores a new level in the shell. On failure the level here stays as it was. */
  async function setNotifications(level: NotificationLevel): Promise<void> {
    await api.setNotificationLevel(level);
    notifications.value = level;
  }

  return { theme, locale, notifications, loadNotifications, setNotifications };
});
