/// <reference types="vitest/config" />
import { fileURLToPath } from 'node:url';

import vue from '@vitejs/plugin-vue';
import { defineConfig } from 'vite';
import vuetify from 'vite-plugin-vuetify';

// The Tauri shell loads `dist/` in release builds and this dev server otherwise. Its
// `devUrl` in desktop/app/tauri.conf.json5 names this port, so the port must not move.
export default defineConfig({
  plugins: [vue(), vuetify({ autoImport: true })],
  resolve: {
    alias: { '@': fileURLToPath(new URL('./src', import.meta.url)) },
  },
  clearScreen: false,
  server: {
    port: 5173,
    strictPort: true,
  },
  envPrefix: ['VITE_', 'TAURI_ENV_'],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // The webviews that Tauri 2 uses: WebView2 (Chromium) on Windows, WebKit elsewhere.
    target: ['es2022', 'chrome110', 'safari16'],
    // The shell loads the bundle from disk, so its size costs no download; Vuetify
    // alone is about 400 kB minified.
    chunkSizeWarningLimit: 1024,
  },
  test: {
    environment: 'jsdom',
    include: ['tests/**/*.test.ts'],
    setupFiles: ['tests/setup.ts'],
    css: false,
    server: {
      deps: {
        // Vuetify ships CSS imports inside its modules; Vite must transform them.
        inline: ['vuetify'],
      },
    },
  },
});
