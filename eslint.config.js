// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** The layers, lowest first: a file may import only its own layer or a lower one. */
const LAYERS = ['model', 'platform', 'modules', 'api', 'cli'];

/** @param {string} layer */
function forbiddenAbove(layer) {
  const index = LAYERS.indexOf(layer);
  return [...LAYERS.slice(index + 1), 'app'].map((name) => ({
    group: [`**/${name}/**`, `**/${name}.js`, `**/src/${name}/*`],
    message: `${layer}/ may not import from ${name}/ (imports go model <- platform <- modules <- api/cli <- app).`,
  }));
}

const DRIVERS = ['pg', 'better-sqlite3', '@nats-io/*'].map((name) => ({
  group: [name],
  message: 'Domain code never imports a database or broker driver: use a platform port.',
}));

export default tseslint.config(
  // bench/_*: local scratch files, ignored by git too.
  { ignores: ['dist/**', 'node_modules/**', 'data/**', 'bin/**', 'coverage/**', 'bench/_*'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': [
        'error',
        { considerDefaultExhaustiveForUnions: true },
      ],
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      ...tseslint.configs.disableTypeChecked.languageOptions,
      globals: { process: 'readonly', console: 'readonly', URL: 'readonly', Buffer: 'readonly' },
    },
  },
  {
    files: ['src/model/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [...forbiddenAbove('model'), ...DRIVERS] }],
    },
  },
  {
    files: ['src/platform/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: forbiddenAbove('platform') }] },
  },
  {
    files: ['src/modules/**/*.ts'],
    ignores: ['src/modules/**/*.test.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [...forbiddenAbove('modules'), ...DRIVERS] }],
    },
  },
  {
    // Only a module's store.ts holds SQL; its service speaks to the store, never to kysely.
    files: ['src/modules/**/*.ts'],
    ignores: ['src/modules/**/store.ts', 'src/modules/**/*.test.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            ...forbiddenAbove('modules'),
            ...DRIVERS,
            { group: ['kysely'], message: 'SQL lives in store.ts only.' },
          ],
        },
      ],
    },
  },
  {
    files: ['src/api/**/*.ts', 'src/cli/**/*.ts'],
    ignores: ['src/**/*.test.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            ...DRIVERS,
            {
              group: ['**/app.js'],
              message: 'api/ and cli/ may not import app.ts: app.ts wires them.',
            },
          ],
        },
      ],
    },
  },
);
