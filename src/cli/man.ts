import type { Argument, Command, Option } from 'commander';
import { visibleCommands, visibleOptions } from './cmd-completion.js';

/**
 * The manual page (roff, man(7) macros), generated from the commander definitions like the
 * completion scripts: `npm run man` writes docs/snapfill.1, which package.json installs as the
 * man page, and a test checks it matches the commands.
 */

/** Text safe in roff: backslashes, and a leading dot or quote that would read as a request. */
export function roffEscape(s: string): string {
  return s
    .replace(/\\/g, '\\e')
    .replace(/-/g, '\\-')
    .split('\n')
    .map((l) => (/^[.']/.test(l) ? '\\&' + l : l))
    .join('\n');
}

function argText(a: Argument): string {
  const n = a.name() + (a.variadic ? '...' : '');
  return a.required ? n : `[${n}]`;
}

function synopsis(cmd: Command, prefix: string): string {
  const args = cmd.registeredArguments.map(argText).join(' ');
  return `${prefix}${cmd.name()}${visibleOptions(cmd).length ? ' [options]' : ''}${args ? ' ' + args : ''}`;
}

function optionLines(opts: Option[]): string[] {
  const out: string[] = [];
  for (const o of opts) {
    out.push('.TP', `.B ${roffEscape(o.flags)}`, roffEscape(o.description || ''));
    if (o.defaultValue !== undefined && !(Array.isArray(o.defaultValue) && !o.defaultValue.length) && o.defaultValue !== false) {
      out.push(`(default: ${roffEscape(String(o.defaultValue))})`);
    }
  }
  return out;
}

/** The text a command adds after its help (modes, examples, exit codes), as written there. */
function helpAfter(cmd: Command): string {
  let text = '';
  // addHelpText('after', ...) installs an 'afterHelp' listener that writes through context.write.
  const emitter = cmd as unknown as NodeJS.EventEmitter;
  for (const l of emitter.listeners('afterHelp')) l({ error: false, command: cmd, write: (s: string) => (text += s) });
  return text.trim();
}

function commandSection(cmd: Command, prefix: string): string[] {
  const out = ['.SS ' + roffEscape(synopsis(cmd, prefix)), roffEscape(cmd.description())];
  const aliases = cmd.aliases();
  if (aliases.length) out.push('.br', `Also: ${roffEscape(aliases.join(', '))}.`);
  if (visibleOptions(cmd).length) out.push(...optionLines(visibleOptions(cmd)));
  const after = helpAfter(cmd);
  if (after) out.push('.PP', '.nf', roffEscape(after), '.fi');
  for (const sub of visibleCommands(cmd)) out.push(...commandSection(sub, `${prefix}${cmd.name()} `));
  return out;
}

export function manPage(program: Command, version: string): string {
  const name = program.name();
  const lines = [
    `.\\" Generated from the command definitions by \`npm run man\` (src/cli/man.ts); do not edit.`,
    `.TH ${name.toUpperCase()} 1 "" "${name} ${version}" "User Commands"`,
    '.SH NAME',
    `${name} \\- ${roffEscape(program.description())}`,
    '.SH SYNOPSIS',
    `.B ${name}`,
    '[global options] command [options] [arguments]',
    '.SH GLOBAL OPTIONS',
    ...optionLines(visibleOptions(program)),
    '.SH COMMANDS',
  ];
  for (const c of visibleCommands(program)) lines.push(...commandSection(c, `${name} `));
  lines.push(
    '.SH EXIT STATUS',
    '0 success; 1 failure; 3 finished, but some paths were in error; 4 another process holds a lock; 130 interrupted (Ctrl\\-C).',
    '.SH ENVIRONMENT',
    '.TP',
    '.B SNAPFILL_REPO, SNAPFILL_CONFIG, SNAPFILL_CACHE, SNAPFILL_CATALOG',
    'The repository, the config file, the cache directory and the catalog file, when not given as options.',
    '.SH SEE ALSO',
    'docs/OPERATIONS.md, docs/S3.md, docs/FORMAT.md in the package.',
    '',
  );
  return lines.join('\n');
}
