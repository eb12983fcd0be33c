import { mount } from '@vue/test-utils';
import { describe, expect, it } from 'vitest';
import { nextTick } from 'vue';

import OfflineBanner from '@/components/layout/OfflineBanner.vue';
import { useConnectionStore } from '@/stores/connection';

import { createTestPlugins } from '../../helpers/mount';

function mountBanner() {
  const { plugins } = createTestPlugins();
  return {
    banner: mount(OfflineBanner, { global: { plugins } }),
    connection: useConnectionStore(),
  };
}

describe('OfflineBanner', () => {
  it('stays hidden while online or connecting', async () => {
    const { banner, connection } = mountBanner();

    connection.set({ state: 'online' });
    await nextTick();
    expect(banner.find('[data-test="offline-banner"]').exists()).toBe(false);

    connection.set({ state: 'connecting' });
    await nextTick();
    expect(banner.find('[data-test="offline-banner"]').exists()).toBe(false);
  });

  it('shows when offline', async () => {
    const { banner, connection } = mountBanner();

    connection.set({ state: 'offline' });
    await nextTick();

    expect(banner.get('[data-test="offline-banner"]').text()).toContain(
      'You are offline.',
    );
  });

  it('shows the next reconnection attempt', async () => {
    const { banner, connection } = mountBanner();

    connection.set({ state: 'reconnecting', attempt: 3, retry_in_ms: 8000 });
    await nextTick();

    expect(banner.get('[data-test="offline-banner"]').text()).toContain(
      'Reconnecting in 8 seconds (attempt 3).',
    );
  });
});
