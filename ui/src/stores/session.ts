import { defineStore } from 'pinia';
import { computed, ref } from 'vue';

import * as api from '@/api/bindings';
import type { SessionStatus } from '@/api/bindings';

import { useConnectionStore } from './connection';

/** localStorage key of the server URL last signed in to, to prefill the sign-in form. */
export const LAST_SERVER_KEY = 'roomler.lastServer';

export const useSessionStore = defineStore('session', () => {
  /** `null` until the first `session_status` result. */
  const status = ref<SessionStatus | null>(null);

  const loggedIn = computed(() => status.value?.logged_in === true);
  const userId = computed(() => status.value?.user_id ?? null);
  const username = computed(() => status.value?.username ?? null);
  const serverUrl = computed(() => status.value?.server_url ?? null);

  async function load(): Promise<void> {
    const next = await api.sessionStatus();
    status.value = next;
    useConnectionStore().set(next.connection);
  }

  function rememberServer(server: string): void {
    localStorage.setItem(LAST_SERVER_KEY, server);
  }

  function lastServer(): string {
    return (
      status.value?.server_url ?? localStorage.getItem(LAST_SERVER_KEY) ?? ''
    );
  }

  async function login(
    server: string,
    login: string,
    password: string,
  ): Promise<void> {
    await api.login(server, login, password);
    rememberServer(server);
    await load();
  }

  async function register(
    server: string,
    username: string,
    email: string,
    password: string,
  ): Promise<void> {
    await api.register(server, username, email, password);
    rememberServer(server);
    await load();
  }

  async function logout(): Promise<void> {
    await api.logout();
    await load();
  }

  return {
    status,
    loggedIn,
    userId,
    username,
    serverUrl,
    load,
    lastServer,
    login,
    register,
    logout,
  };
});
