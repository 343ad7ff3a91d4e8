// typescript-eslint's recommended rules over every package, service, test and script.
// Type-aware rules are off: the strict compiler (pnpm typecheck) already checks types,
// and a project-wide type-aware lint would double CI time on two cores.
import js from "@eslint/js";
import globals from "globals";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["**/node_modules/**", "**/dist/**", ".tmp/**", "coverage/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      // Tests and decoders of foreign input (OTLP, provider bodies) read untyped JSON on purpose.
      "@typescript-eslint/no-explicit-any": "off",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrors: "none" }],
      "no-constant-condition": ["error", { checkLoops: false }],
      // A handle declared before the closures that read it, assigned once it exists (workers, servers).
      "prefer-const": ["error", { ignoreReadBeforeAssign: true }],
    },
  },
);
