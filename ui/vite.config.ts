// Vite builds the window the Tauri shell loads; vitest reuses this config for the unit tests.
import { defineConfig } from "vitest/config";

export default defineConfig({
  // Relative asset paths: the built files are served from the app's own protocol, not from /.
  base: "./",
  clearScreen: false,
  server: {
    port: 1420,
    strictPort: true,
  },
  build: {
    outDir: "dist",
    emptyOutDir: true,
  },
  test: {
    include: ["src/**/*.test.ts"],
    environment: "node",
  },
});
