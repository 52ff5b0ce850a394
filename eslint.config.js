// `npm run lint` (run by .ci/run before the tests): the layers of
// docs/design.md, import cycles, and the TypeScript mistakes that tests
// rarely catch (a promise nobody awaits, unused code).
//
//   src/          the pure core: runs in threads, processes and tabs; imports
//                 nothing above it, and no Node module
//   node/         the Node layer both roles use; imports src/ only
//   worker/       the worker role; imports src/ and node/
//   coordinator/  the coordinator; imports anything below it
//   bench/        benchmarks; nothing imports them
// Browser code (worker/browser/, worker/session/, the dashboard) imports no
// Node module either.
import importX from 'eslint-plugin-import-x';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';
import tseslint from 'typescript-eslint';

const NODE_MODULES = ['node:*', 'fs', 'fs/*', 'path', 'os', 'crypto', 'http', 'https', 'net', 'stream', 'url', 'child_process', 'worker_threads', 'ws', 'piscina'];

/**
 * zod as a namespace (`import * as z from 'zod'`): esbuild then leaves out
 * what is not used; a named `z` puts all of zod (454 KB with its 64
 * locales) in every browser bundle (test/browser/bundle-size.test.ts).
 */
const ZOD_AS_NAMESPACE = {
  selector: "ImportDeclaration[source.value='zod'] > ImportSpecifier[imported.name='z']",
  message: "import * as z from 'zod': a named z puts all of zod (454 KB, its 64 locales) in the browser bundles",
};

/** No Node module in code that also runs in a browser. */
const browserSafe = {
  'no-restricted-imports': ['error', {
    patterns: [{ group: NODE_MODULES, message: 'this code runs in browsers and worker threads too: no Node modules here (docs/design.md, principle 1)' }],
  }],
};

/** A layer may not import the ones above it. */
const layer = (target, from, why) => ({ target, from, message: why });

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'docs/**', 'runs/**', 'wasm/**', 'test/package/consumer/**', '**/*.js', '**/*.cjs', '**/*.mjs'] },
  {
    files: ['**/*.ts'],
    languageOptions: {
      parser: tseslint.parser,
      parserOptions: { project: ['./tsconfig.test.json'], tsconfigRootDir: import.meta.dirname },
    },
    plugins: { '@typescript-eslint': tseslint.plugin, 'import-x': importX },
    settings: {
      ...importX.flatConfigs.typescript.settings,
      'import-x/resolver': undefined,
      'import-x/resolver-next': [createTypeScriptImportResolver({ project: './tsconfig.test.json' })],
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: false }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true }],
      '@typescript-eslint/no-unnecessary-type-assertion': 'error',
      'no-unused-private-class-members': 'error',
      'no-unreachable': 'error',
      'no-fallthrough': 'error',
      'no-restricted-syntax': ['error', ZOD_AS_NAMESPACE],
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
      'import-x/no-self-import': 'error',
      'import-x/no-useless-path-segments': 'error',
      'import-x/no-restricted-paths': ['error', {
        zones: [
          layer('./src', ['./node', './worker', './coordinator', './bench'], 'src/ is the pure core: it imports nothing above it'),
          layer('./node', ['./worker', './coordinator', './bench'], 'node/ is below both roles: it imports src/ only'),
          layer('./worker', ['./coordinator', './bench'], 'worker/ may not import the coordinator'),
          layer('./coordinator', ['./bench'], 'nothing imports the benchmarks'),
          layer('./worker/browser', ['./node'], 'a tab runs in a browser: no Node layer'),
          layer('./worker/session', ['./node'], 'the worker session runs in tabs too: no Node layer'),
        ],
      }],
    },
  },
  { files: ['src/**/*.ts', 'worker/browser/**/*.ts', 'worker/session/**/*.ts', 'coordinator/serve/dashboard/**/*.ts'], rules: browserSafe },
);
