/**
 * Layer rules for src/ (issue 12; docs/ARCHITECTURE.md). Each layer uses only the ones below it:
 *
 *   cli (and serve, the web console beside it) -> api -> operations (restore snapshot verify check maintain mount dump query)
 *              -> catalog -> repo -> pack, store -> util
 *   config sits just under api; livefs (the live file system) sits on util.
 *
 * Only our own modules (src/**) are constrained: Node built-ins and npm packages are allowed everywhere.
 * That storage keys are built only in pack/ is a review rule, not a tool rule.
 */

/** The operations: each is a whole job over a repository and may not use another one (except as listed). */
const OPERATIONS = 'restore|snapshot|verify|check|maintain|mount|dump|query';

/** What an operation may import besides its own folder. */
const BELOW_OPERATIONS = 'catalog|livefs|repo|pack|store|util';

/** `from` folder may import (besides itself) only the folders in `allowed`. */
function onlyImports(name, folder, allowed, comment) {
  return {
    name,
    comment,
    severity: 'error',
    from: { path: `^src/(${folder})/` },
    to: { path: '^src/', pathNot: `^src/($1|${allowed})/` },
  };
}

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'Modules may not depend on each other in a cycle: a cycle makes two layers one.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    onlyImports(
      'cli-imports-only-api-and-serve',
      'cli',
      'api|serve',
      'The CLI parses flags, calls the library API (src/api) and prints; `serve` starts the web console (src/serve).',
    ),
    onlyImports(
      'serve-imports-only-api',
      'serve',
      'api|util',
      'The web console is a front end beside the CLI: it calls the library API (and may use util), no logic of its own.',
    ),
    {
      name: 'only-cli-imports-serve',
      comment: 'The web console is started by `snapfill serve`; no library layer knows it.',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/(cli|serve)/' },
      to: { path: '^src/serve/' },
    },
    {
      name: 'nothing-imports-cli',
      comment: 'The CLI is the top layer.',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/cli/' },
      to: { path: '^src/cli/' },
    },
    {
      name: 'only-cli-imports-api',
      comment: 'The library API is what the CLI (and library users) call; lower layers take a RepoContext, not the Session.',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/(cli|serve|api)/' },
      to: { path: '^src/api/' },
    },
    {
      name: 'config-only-from-api',
      comment: 'The config file is read by the API only; operations take options.',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/(api|config)/' },
      to: { path: '^src/config/' },
    },
    {
      name: 'config-imports-policy-and-util',
      comment: 'The config file only knows the retention policy shape and utilities.',
      severity: 'error',
      from: { path: '^src/config/' },
      to: { path: '^src/', pathNot: ['^src/(config|util)/', '^src/maintain/policy\\.ts$'] },
    },
    onlyImports(
      'operation-imports-lower-layers',
      'restore|snapshot|verify|check|maintain|query',
      BELOW_OPERATIONS,
      'An operation uses its own folder and the layers below operations; never another operation.',
    ),
    onlyImports(
      'view-imports-lower-layers-and-query',
      'mount|dump',
      `query|${BELOW_OPERATIONS}`,
      'mount and dump are views over query; otherwise as any operation.',
    ),
    onlyImports('catalog-imports-repo-pack-store-util', 'catalog', 'repo|pack|store|util', 'The catalog indexes the repository; it knows no operation.'),
    onlyImports('livefs-imports-util', 'livefs', 'util', 'The live file system layer knows nothing of repositories or snapshots.'),
    onlyImports(
      'repo-imports-pack-store-util',
      'repo',
      'pack|store|util',
      'The repository never imports the catalog: prune takes a hook that runs before deletions.',
    ),
    onlyImports('pack-imports-util', 'pack', 'util', 'The pack format is the only place storage keys are built; it sits on util.'),
    onlyImports('store-imports-util', 'store', 'util', 'Object stores move bytes by key; they know no format.'),
    {
      name: 'util-imports-nothing-of-ours',
      comment: 'Utilities are the bottom layer.',
      severity: 'error',
      from: { path: '^src/util/' },
      to: { path: '^src/', pathNot: '^src/util/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // Type-only imports count: a layer that needs another's types depends on it.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      mainFields: ['module', 'main', 'types', 'typings'],
    },
  },
};
