import { defineStore } from 'pinia';
import { computed, ref } from 'vue';

import type { ConnectionState } from '@/api/bindings';

export const useConnectionStore = defineStore('connection', () => {
  // `session_status` sets the state first; `connection` events keep it current.
  const state = ref<ConnectionState>({ state: 'connecting' });

  /** Whether the UI shows the banner that changes wait in the outbox. */
  const disconnected = computed(
    () =>
      state.value.state === 'offline' || state.value.state === 'reconnecting',
  );

  function set(next: ConnectionState): void {
    state.value = next;
  }

  return { state, disconnected, set };
});
