/**
 * The console is built to console/dist and served by the control plane at `/`. During
 * `npm run dev -w console`, API calls go to a running control plane (CONCORD_CONTROL_URL,
 * default http://127.0.0.1:7700).
 */
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

const control = process.env.CONCORD_CONTROL_URL ?? 'http://127.0.0.1:7700';

export default defineConfig({
  base: '/',
  plugins: [react()],
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: true, chunkSizeWarningLimit: 800 },
  server: { proxy: { '/api': control, '/v1': control } },
});
