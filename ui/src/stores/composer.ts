import { defineStore } from 'pinia';
import { ref } from 'vue';

import type { Message, Uuid } from '@/api/bindings';

/** The composer's mode (new message, reply or edit) and the unsent drafts per room. */
export const useComposerStore = defineStore('composer', () => {
  const replyTo = ref<Message | null>(null);
  const editing = ref<Message | null>(null);
  /** Unsent text per room, kept while the user looks at another room. */
  const drafts = ref<Record<Uuid, string>>({});
  /** Incremented to ask the composer to take the focus, e.g. after "Reply". */
  const focusRequests = ref(0);

  function startReply(message: Message): void {
    editing.value = null;
    replyTo.value = message;
    focusRequests.value += 1;
  }

  function startEdit(message: Message): void {
    replyTo.value = null;
    editing.value = message;
    focusRequests.value += 1;
  }

  function reset(): void {
    replyTo.value = null;
    editing.value = null;
  }

  return {
    replyTo,
    editing,
    drafts,
    focusRequests,
    startReply,
    startEdit,
    reset,
  };
});
