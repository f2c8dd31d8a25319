import type { Command } from 'commander';
import { action, storeOpts } from './action.js';
import { info, printJson } from './output.js';
import { addRepoKey, changeRepoPassword, listRepoKeys, removeRepoKey } from '../api/keys.js';
import { humanTime } from './format.js';

export function register(program: Command): void {
  const key = program
    .command('key')
    .description('manage the passwords (key objects) of an encrypted repository')
    .addHelpText(
      'after',
      `
Every key object wraps the same master key: adding, removing or changing a password never
rewrites any data. The current password comes from the usual sources (--password-file, ...);
a new one from --new-password-file, or a prompt (asked twice) on a terminal.`,
    );
  key
    .command('list')
    .description('list the key objects; * marks the one the given password opens')
    .action(
      action(async (g) => {
        const keys = await listRepoKeys(storeOpts(g));
        if (g.json) return void printJson({ keys });
        info(g, `  ${'ID'.padEnd(10)}${'Created'.padEnd(28)}${'User@host'.padEnd(30)}KDF`);
        for (const k of keys)
          info(
            g,
            `${k.current ? '*' : ' '} ${k.id.slice(0, 8).padEnd(10)}${humanTime(k.created).padEnd(28)}${`${k.username}@${k.host}`.slice(0, 29).padEnd(30)}${k.kdf}`,
          );
      }),
    );
  key
    .command('add')
    .description('add a key object for another password')
    .option('--new-password-file <file>', 'file whose first line is the new password')
    .action(
      action(async (g, [opts]) => {
        const id = await addRepoKey({ ...storeOpts(g), newPasswordFile: opts.newPasswordFile });
        if (g.json) printJson({ added: id });
        else info(g, `added key ${id.slice(0, 8)}`);
      }),
    );
  key
    .command('remove <id>')
    .description('remove a key object (not the last one, nor the one the given password opens)')
    .action(
      action(async (g, [id]) => {
        const removed = await removeRepoKey(storeOpts(g), id);
        if (g.json) printJson({ removed });
        else info(g, `removed key ${removed.slice(0, 8)}`);
      }),
    );
  key
    .command('passwd')
    .description('change the password of the key object the given password opens')
    .option('--new-password-file <file>', 'file whose first line is the new password')
    .action(
      action(async (g, [opts]) => {
        const r = await changeRepoPassword({ ...storeOpts(g), newPasswordFile: opts.newPasswordFile });
        if (g.json) printJson(r);
        else info(g, `password changed: key ${r.removed.slice(0, 8)} replaced by ${r.added.slice(0, 8)}`);
      }),
    );
}
