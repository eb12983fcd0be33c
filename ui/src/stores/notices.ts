import { defineStore } from 'pinia';
import { ref } from 'vue';

import { toCommandError } from '@/api/bindings';

import { useSessionStore } from './session';

/** A message for the snackbar, e.g. the error of an action that has no form to show it in. */
export interface Notice {
  id: number;
  text: string;
}

export const useNoticesStore = defineStore('notices', () => {
  const current = ref<Notice | null>(null);
  let nextId = 1;

  function show(text: string): void {
    current.value = { id: nextId, text };
    nextId += 1;
  }

  /**
   * Shows the message of a failed command and logs the whole error. A `not_logged_in`
   * error reloads the session status instead, which brings up the sign-in form.
   */
  function showError(error: unknown): void {
    console.error(error);
    const commandError = toCommandError(error);
    if (commandError.code === 'not_logged_in') {
      useSessionStore()
        .load()
        .catch((failure: unknown) => console.error(failure));
      return;
    }
    show(commandError.message);
  }

  function dismiss(): void {
    current.value = null;
  }

  return { current, show, showError, dismiss };
});
