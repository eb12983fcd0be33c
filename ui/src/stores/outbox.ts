import { defineStore } from 'pinia';
import { ref } from 'vue';

import * as api from '@/api/bindings';
import type { OutboxItem, Uuid } from '@/api/bindings';

export const useOutboxStore = defineStore('outbox', () => {
  const items = ref<OutboxItem[]>([]);

  async function refresh(): Promise<void> {
    items.value = await api.outbox();
  }

  /** The room's queued operations, oldest first. */
  function forRoom(roomId: Uuid): OutboxItem[] {
    return items.value.filter((item) => item.room_id === roomId);
  }

  async function retry(id: number): Promise<void> {
    await api.retryOutbox(id);
    await refresh();
  }

  async function discard(id: number): Promise<void> {
    await api.discardOutbox(id);
    await refresh();
  }

  return { items, refresh, forRoom, retry, discard };
});
