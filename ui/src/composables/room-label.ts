import { useI18n } from 'vue-i18n';

import type { Room } from '@/api/bindings';
import { useRoomsStore } from '@/stores/rooms';

/** Returns a function that names a room: its path, or a direct room's participants. */
export function useRoomLabel() {
  const rooms = useRoomsStore();
  const { t } = useI18n();
  return (room: Room): string => {
    if (room.kind !== 'direct') {
      return room.path;
    }
    return rooms.directParticipants(room) ?? t('rooms.directMessage');
  };
}
