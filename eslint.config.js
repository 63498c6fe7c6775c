// @ts-check
/**
 * Lint for Ferry: typed rules (no floating or misused promises, no `any` outside wire decoding)
 * and the layer boundaries of DESIGN.md ("Layers"), so a reader knows from a file's path what it
 * may import. Boundaries use core `no-restricted-imports` with one block per directory: imports
 * are relative with `.ts` extensions, so each forbidden layer is a regex over the specifier.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { defineConfig, globalIgnores } from 'eslint/config';
import tseslint from 'typescript-eslint';

/** Every layer directory under src/, and the layers each may import (besides itself). */
const mayImport = {
  core: [],
  store: ['core'],
  identity: ['core', 'store'],
  fleet: ['core', 'store'],
  engine: ['core', 'store'],
  dataplane: ['core'],
  migration: ['core', 'store', 'identity', 'fleet', 'engine', 'dataplane'],
  agent: ['core', 'dataplane'],
  api: ['core', 'store', 'identity', 'fleet', 'engine', 'dataplane', 'migration'],
  cli: ['core', 'store', 'identity', 'fleet', 'engine', 'dataplane', 'migration', 'api', 'agent', 'console'],
  console: ['core', 'store', 'identity', 'fleet', 'engine', 'dataplane', 'migration', 'api', 'agent', 'cli'],
};
const layers = /** @type {(keyof typeof mayImport)[]} */ (Object.keys(mayImport));

/** Front doors are the folders of src/api except `common`, read from disk so a new door is covered at once. */
const sharedApiDir = 'common';
const frontDoors = listDirs(join(import.meta.dirname, 'src', 'api')).filter((name) => name !== sharedApiDir);

function listDirs(dir) {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .map((entry) => entry.name);
  } catch {
    return [];
  }
}

/**
 * A relative specifier that climbs out (`../`, `../../`, optionally through `src/` and `api/`)
 * and lands in `dir`. Files never nest a folder named like a layer, so depth need not be counted.
 */
function climbsInto(dir, via = '') {
  return `^(?:\\./)?(?:\\.\\./)+(?:src/)?${via}${dir}(?:/|$)`;
}

const layersDoc = 'Layers run one way: core <- store <- identity, fleet, engine <- migration <- api/*, cli, console; core <- dataplane <- agent (DESIGN.md, "Layers").';

/** `../core/../store/x.ts` would slip past the layer patterns; specifiers must be normalized. */
const normalizedOnly = {
  regex: '(?:^|/)[^./][^/]*/\\.\\.?(?:/|$)|^\\./\\.\\./|^\\./\\./',
  message: 'Write the relative import path in normal form (no `x/../`, no `./../`), so layer rules can read it.',
};

const noTestImports = {
  regex: climbsInto('test'),
  message: 'Code in src/ must not import from test/; only *.test.ts files may.',
};

function layerPatterns(layer) {
  const allowed = mayImport[layer];
  return layers
    .filter((other) => other !== layer && !allowed.includes(other))
    .map((other) => ({
      regex: climbsInto(other),
      message: `src/${layer} ${allowed.length > 0 ? `may import only ${allowed.map((l) => `src/${l}`).join(', ')}` : 'imports no other layer'}, so not src/${other}. ${layersDoc}`,
    }));
}

function doorPatterns(door) {
  return frontDoors
    .filter((other) => other !== door)
    .map((other) => ({
      regex: climbsInto(other, '(?:api/)?'),
      message: `Front door src/api/${door} must not import another front door (src/api/${other}); put what both need in src/api/${sharedApiDir} or, if it is a rule, in src/migration.`,
    }));
}

/**
 * One `no-restricted-imports` block per scope, then the same scope's *.test.ts files (which may
 * import test/). A later block replaces the rule's options wholesale, so each block carries
 * its full pattern list and the more specific scopes come last.
 */
function boundaryBlocks(name, dir, patterns) {
  return [
    {
      name: `ferry/boundaries/${name}`,
      files: [`${dir}/**/*.ts`],
      rules: { 'no-restricted-imports': ['error', { patterns: [...patterns, noTestImports, normalizedOnly] }] },
    },
    {
      name: `ferry/boundaries/${name}/tests`,
      files: [`${dir}/**/*.test.ts`],
      rules: { 'no-restricted-imports': ['error', { patterns: [...patterns, normalizedOnly] }] },
    },
  ];
}

export default defineConfig(
  globalIgnores(['bench/results/', '**/data/', '**/.tmp/', 'coverage/'], 'ferry/ignores'),
  {
    name: 'ferry/typescript',
    files: ['**/*.ts'],
    extends: [tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: {
        projectService: true,
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      // A leading underscore marks a parameter an interface requires but this implementation ignores.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          // node:test's test()/it()/describe() return promises the runner itself awaits.
          allowForKnownSafeCalls: [
            { from: 'package', package: 'node:test', name: ['test', 'it', 'describe', 'suite', 'before', 'after', 'beforeEach', 'afterEach'] },
          ],
        },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
    },
  },
  {
    name: 'ferry/api-wire-decoding',
    files: ['src/api/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  ...boundaryBlocks('src', 'src', []),
  ...layers.flatMap((layer) => boundaryBlocks(layer, `src/${layer}`, layerPatterns(layer))),
  ...frontDoors.flatMap((door) =>
    boundaryBlocks(`api/${door}`, `src/api/${door}`, [...layerPatterns('api'), ...doorPatterns(door)]),
  ),
);
