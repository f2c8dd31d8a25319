import type { Command } from 'commander';
import { action, withSession } from './action.js';
import { EXIT, info, printJson, type GlobalOpts } from './output.js';
import { checkMountAvailable, mount, unmountHint } from '../api/mount.js';
import type { MountHandle } from '../api/index.js';

/** Stays mounted until SIGINT or SIGTERM, then unmounts. */
async function serveUntilSignal(g: GlobalOpts, handle: MountHandle): Promise<number> {
  await new Promise<void>((resolve) => {
    const stop = (sig: string) => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      info(g, `${sig}: unmounting ${handle.mountpoint}`);
      resolve();
    };
    const onInt = () => stop('SIGINT');
    const onTerm = () => stop('SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
  });
  try {
    await handle.unmount();
  } catch (e) {
    // fuse-native's thread may still hold the event loop: say why and leave for sure.
    process.stderr.write(`snapfill: ${(e as Error).message}\n`);
    process.exit(EXIT.FAIL);
  }
  info(g, `unmounted ${handle.mountpoint}`);
  return EXIT.OK;
}

export function register(program: Command): void {
  program
    .command('mount')
    .description('browse all snapshots read-only through FUSE until Ctrl-C (needs /dev/fuse and the optional fuse-native module)')
    .argument('<mountpoint>', 'an existing empty directory')
    .option('--accounts-root <dir>', 'where account homes live, for /accounts/<name>/<time>/', '/home')
    .option('--allow-other', 'let other users use the mount (non-root needs user_allow_other in /etc/fuse.conf)')
    .option('--cache-mb <n>', 'memory for cached content blobs, in MiB', '64')
    .addHelpText(
      'after',
      `
Layout:
  MOUNTPOINT/snapshots/<time>_<id>/<original paths>
  MOUNTPOINT/latest/...                   the newest snapshot
  MOUNTPOINT/accounts/<name>/<time>/      one account's home in every snapshot that has it

The command stays in the foreground; Ctrl-C or SIGTERM unmounts. A mount left behind by a
killed process ("Transport endpoint is not connected") is removed with:
  fusermount -u MOUNTPOINT        (fusermount3 -u on FUSE 3 systems; or, as root: umount -l MOUNTPOINT)

Examples:
  snapfill mount /mnt/snapfill &
  cp -a /mnt/snapfill/accounts/alice/2026-11-20T030000Z/. /home/alice/`,
    )
    .action(
      action(async (g, [mountpoint, opts]) => {
        checkMountAvailable(); // fail with the reason before touching the repository
        const cacheMb = Number(opts.cacheMb);
        if (!Number.isFinite(cacheMb) || cacheMb < 0) throw new Error(`--cache-mb: "${opts.cacheMb}" is not a number of MiB`);
        return withSession(g, { readOnly: true }, async (s) => {
          const { handle, snapshots } = await mount(s, {
            mountpoint,
            accountsRoot: opts.accountsRoot,
            allowOther: opts.allowOther,
            cacheBytes: cacheMb * 1024 * 1024,
            onLog: (m) => process.stderr.write(`snapfill mount: ${m}\n`),
          });
          if (g.json) printJson({ mountpoint: handle.mountpoint, mounted: true });
          info(
            g,
            `mounted ${snapshots} snapshot(s) at ${handle.mountpoint}; Ctrl-C to unmount ` +
              `(if this process is killed, run ${unmountHint(handle.mountpoint)})`,
          );
          return serveUntilSignal(g, handle);
        });
      }),
    );
}
