// Lint: the rules that catch real bugs in this codebase (floating promises, misused promises), and the
// layer rules that keep the architecture honest (docs/architecture.md §7 and §11):
//   - src/planner is pure: no I/O module, no database, no Kubernetes, no AWS;
//   - the worker SDK (packages/worker) depends on pg alone: nothing from the controller or the dev tools;
//   - the product (src) never imports the development tools (dev/).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const IO = ['pg', 'pg-*', 'typeorm', 'winston', 'prom-client', 'undici', '@aws-sdk/*', '@kubernetes/*', 'node:*'];

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', '.local/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false, attributes: false } }],
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/no-explicit-any': 'error',
    },
  },
  {
    files: ['src/planner/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: IO, message: 'src/planner is pure decision logic: no I/O module (docs/architecture.md §7).' },
            {
              group: ['../store/*', '../controller/*', '../lambda/invoker*', '../ops/*'],
              message: 'src/planner may import only pure modules.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['packages/worker/src/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/src/controller/*', '**/src/store/*', '**/src/ops/*', '**/src/api/*', '../../../src/*', '../../src/*'],
              message: 'The worker SDK imports nothing from the controller.',
            },
            { group: ['**/dev/*', '@lambda-task-pool/dev-tools'], message: 'The worker SDK imports nothing from the development tools.' },
            {
              group: ['winston', 'typeorm', 'prom-client', '@aws-sdk/*', '@kubernetes/*', 'undici'],
              message: 'The worker SDK depends on pg alone.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['src/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/dev/src/*', '**/dev/src/**', '@lambda-task-pool/dev-tools'],
              message: 'The product never imports the development tools (dev/): they do not ship.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      globals: { process: 'readonly', console: 'readonly', require: 'readonly', module: 'writable', __dirname: 'readonly' },
    },
  },
  { files: ['**/*.cjs'], rules: { '@typescript-eslint/no-require-imports': 'off' } },
);
