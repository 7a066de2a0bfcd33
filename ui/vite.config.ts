// Vite builds two pages into dist/: the desk window the Tauri shell loads (index.html) and head
// office's page the sync server serves at / (office.html, `--web-dir`). vitest reuses this
// config for the unit tests.
import { defineConfig } from "vitest/config";

export default defineConfig({
  // Relative asset paths: the desk's files are served from the app's own protocol, not from /;
  // the office page is served at / and finds ./assets/ there just the same.
  base: "./",
  clearScreen: false,
  server: {
    port: 1420,
    strictPort: true,
    // `npm run dev`, then /office.html: the API of a sync server running on its default port
    // (scripts/run.sh), from the same origin as the page, as the server itself serves it.
    proxy: {
      "/v1": "http://127.0.0.1:8787",
    },
  },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    // Never inline a file as a data: URL: the office page's Content-Security-Policy
    // (default-src 'self') would refuse it.
    assetsInlineLimit: 0,
    rolldownOptions: {
      input: {
        index: "index.html",
        office: "office.html",
      },
    },
  },
  test: {
    include: ["src/**/*.test.ts"],
    environment: "node",
  },
});
