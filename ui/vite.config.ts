import { defineConfig } from "vite";

// The app loads ui/dist through Tauri's custom protocol; the dev server is for `tauri dev`.
export default defineConfig({
  clearScreen: false,
  server: { port: 5173, strictPort: true },
  build: { target: "es2022", outDir: "dist", emptyOutDir: true },
  test: { environment: "node" },
});
