// The JavaScript lint for static/js: plain browser scripts, no build step, no modules.
// Run by `make gates` with the eslint installed from tools/eslint/package.json.
import js from "./tools/eslint/node_modules/@eslint/js/src/index.js";
import globals from "./tools/eslint/node_modules/globals/index.js";

export default [
  js.configs.recommended,
  {
    files: ["static/js/**/*.js"],
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: "script",
      globals: { ...globals.browser },
    },
  },
  {
    // The service worker runs in its own global scope; the server writes the shell list into __SHELL__.
    files: ["static/js/sw.js"],
    languageOptions: {
      globals: { ...globals.serviceworker, __SHELL__: "readonly" },
    },
  },
];
