import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { describe, test } from 'node:test';
import { loadSandboxProfile } from '../../packages/runner/src/sandboxProfile.ts';
import { loadConfig as loadSchedulerConfig } from '../../packages/scheduler/src/config.ts';
import { loadConfig as loadStandinConfig } from '../../packages/seatable-standin/src/config.ts';
import { loadConfig as loadStarterConfig } from '../../packages/starter/src/config.ts';

/**
 * The README's configuration tables are the administrator's reference (issue #8): each
 * table's heading names the module that reads its variables, and the two must list the same
 * names, so that a setting added to the code without a row, or a row left behind by a
 * removed setting, fails here.
 */
const repoRoot = join(import.meta.dirname, '..', '..');
const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');

interface ConfigTable {
  heading: string;
  module: string;
  names: Set<string>;
}

/** `### Title (`path/to/module.ts`...)` followed by a table whose first column names variables. */
function configTables(markdown: string): ConfigTable[] {
  const section = markdown.split(/^## /m).find((part) => part.startsWith('Configuration'));
  assert.ok(section, 'the README has a "Configuration" section');
  const tables: ConfigTable[] = [];
  for (const part of section.split(/^### /m).slice(1)) {
    const heading = part.split('\n', 1)[0] ?? '';
    const module = /\(`([^`]+\.ts)`/.exec(heading)?.[1];
    if (!module) continue;
    const rows = part.split('\n').filter((line) => /^\| `/.test(line));
    const names = new Set<string>();
    for (const row of rows)
      for (const name of variablesOfCell(row.split('|')[1] ?? '')) names.add(name);
    tables.push({ heading, module, names });
  }
  return tables;
}

/** "`A_USER` / `_UID`" names A_USER and A_UID: a leading underscore replaces the last part. */
function variablesOfCell(cell: string): string[] {
  const names: string[] = [];
  for (const [, code] of cell.matchAll(/`([A-Z_][A-Z0-9_]*)`/g)) {
    if (code === undefined) continue;
    const previous = names.at(-1);
    if (code.startsWith('_') && previous) names.push(previous.replace(/_[A-Z0-9]+$/, code));
    else names.push(code);
  }
  return names;
}

/** Literals that look like variables but are values: capability names, a time zone. */
const notVariables = new Set(['NET_RAW', 'ALL', 'UTC']);

/**
 * The variables a module and the modules it imports from its own package read: every
 * string literal that is a whole upper-case name, and every `env.NAME`.
 */
function variablesReadBy(module: string): Set<string> {
  const names = new Set<string>();
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const source = readFileSync(file, 'utf8');
    for (const [, name] of source.matchAll(/['"]([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)['"]/g)) {
      if (name && !notVariables.has(name)) names.add(name);
    }
    for (const [, name] of source.matchAll(/\benv\.([A-Z][A-Z0-9_]+)/g)) if (name) names.add(name);
    for (const [, imported] of source.matchAll(/from '(\.{1,2}\/[^']+\.ts)'/g)) {
      if (imported) visit(join(dirname(file), imported));
    }
  };
  visit(join(repoRoot, module));
  return names;
}

/** The names a loader asks the environment for, read through a proxy that records them. */
function namesAskedFor(load: (env: Record<string, string | undefined>) => unknown): Set<string> {
  const asked = new Set<string>();
  const env = new Proxy({} as Record<string, string | undefined>, {
    get: (_target, name) => {
      if (typeof name === 'string') asked.add(name);
      return undefined;
    },
    has: (_target, name) => {
      if (typeof name === 'string') asked.add(name);
      return false;
    },
  });
  try {
    load(env);
  } catch {
    // Required variables are missing: the loader still asked for every one it reads.
  }
  return asked;
}

const tables = configTables(readme);

describe('the README configuration tables', () => {
  test('cover the scheduler, the starter, the sandbox and the stand-in', () => {
    assert.deepEqual(
      tables.map((table) => table.module),
      [
        'packages/scheduler/src/config.ts',
        'packages/starter/src/config.ts',
        'packages/runner/src/sandboxProfile.ts',
        'packages/seatable-standin/src/config.ts',
      ],
    );
  });

  for (const table of tables) {
    test(`list exactly the variables ${relative(repoRoot, join(repoRoot, table.module))} reads`, () => {
      const read = variablesReadBy(table.module);
      const undocumented = [...read].filter((name) => !table.names.has(name)).sort();
      const unread = [...table.names].filter((name) => !read.has(name)).sort();
      assert.deepEqual(undocumented, [], `read but not in the table "${table.heading}"`);
      assert.deepEqual(unread, [], `in the table "${table.heading}" but not read`);
    });
  }

  test('miss no variable the loaders ask for at run time', () => {
    const loaders: Record<string, (env: Record<string, string | undefined>) => unknown> = {
      'packages/scheduler/src/config.ts': loadSchedulerConfig,
      'packages/starter/src/config.ts': loadStarterConfig,
      'packages/runner/src/sandboxProfile.ts': loadSandboxProfile,
      'packages/seatable-standin/src/config.ts': (env) =>
        loadStandinConfig(env as NodeJS.ProcessEnv),
    };
    for (const [module, load] of Object.entries(loaders)) {
      const documented = new Set(
        tables.filter((table) => table.module === module).flatMap((table) => [...table.names]),
      );
      // The starter reads the sandbox's variables through loadSandboxProfile.
      if (module === 'packages/starter/src/config.ts') {
        for (const table of tables) for (const name of table.names) documented.add(name);
      }
      const missing = [...namesAskedFor(load)].filter(
        (name) => /^[A-Z][A-Z0-9_]+$/.test(name) && !documented.has(name),
      );
      assert.deepEqual(missing, [], `${module} asks for variables its table does not list`);
    }
  });
});
