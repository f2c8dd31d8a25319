import type { Command } from 'commander';
import { action, collect, storeOpts } from './action.js';
import { consoleSettings } from '../api/console.js';
import { JsonLog } from '../api/monitor.js';
import { withSession } from '../api/session.js';
import { checkListen, startServer } from '../serve/server.js';
import { progressLog } from './action.js';

export function register(program: Command): void {
  program
    .command('serve')
    .description('web console for techs: browse accounts and snapshots, preview and run restores (127.0.0.1 only by default)')
    .option('--listen <addr>', 'address to bind (anything but loopback needs --allow-remote and TLS)', '127.0.0.1')
    .option('--port <n>', 'TCP port (0: any free port)', (v) => Number.parseInt(v, 10), 8737)
    .option('--tls-cert <file>', 'serve HTTPS with this certificate (PEM)')
    .option('--tls-key <file>', 'the private key of --tls-cert (PEM)')
    .option('--allow-remote', 'allow a non-loopback --listen address (requires --tls-cert/--tls-key)')
    .option('--allow-host <name>', 'a host name the console is reached by (Host header check; repeatable)', collect, [])
    .option('--read-only', 'browse and download only: restores are refused')
    .option('--accounts-root <dir>', 'where accounts live (default: accounts_root of the config file, else /home)')
    .option('--staging-root <dir>', 'restores "to staging" go to a new directory under this one', '/var/tmp/snapfill-staging')
    .option('--log <file>', 'JSON log of logins and restores (default: monitoring.json_log of the config file, else stderr)')
    .option('--token-file <file>', 'where the login token is kept (default: console/token in the cache directory)')
    .addHelpText(
      'after',
      `
The login token is made at the first start, stored with mode 0600 and printed once; read it
again from the token file. Reach a console on a remote server through an SSH tunnel:

  ssh -L 8737:127.0.0.1:8737 root@server   # then open http://127.0.0.1:8737/

Every restore started from the page is logged (who, when, what, result).`,
    )
    .action(
      action(async (g, [opts]) => {
        const port = opts.port as number;
        if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error('--port must be a number from 0 to 65535');
        checkListen({
          listen: opts.listen,
          allowRemote: opts.allowRemote,
          tlsCert: opts.tlsCert,
          tlsKey: opts.tlsKey,
          allowHosts: opts.allowHost,
        });
        const settings = consoleSettings({ config: g.config });
        const session = { ...storeOpts(g), onProgress: progressLog(g) };
        // Fail now, in the terminal, when there is no repository or catalog (not at the first click).
        await withSession({ ...session, readOnly: true }, async () => {});
        const logTarget = (opts.log as string | undefined) ?? settings.monitoring.jsonLog ?? 'stderr';
        const server = await startServer({
          session,
          listen: opts.listen,
          port,
          allowRemote: opts.allowRemote,
          allowHosts: opts.allowHost,
          tlsCert: opts.tlsCert,
          tlsKey: opts.tlsKey,
          readOnly: opts.readOnly,
          accountsRoot: (opts.accountsRoot as string | undefined) ?? settings.accountsRoot,
          stagingRoot: opts.stagingRoot,
          monitoring: settings.monitoring,
          log: new JsonLog(logTarget),
          tokenFile: opts.tokenFile,
        });
        process.stdout.write(`snapfill console: ${server.url}${opts.readOnly ? ' (read-only)' : ''}\n`);
        if (server.token.created)
          process.stdout.write(`login token (shown this once; kept mode 0600 in ${server.token.file}):\n  ${server.token.token}\n`);
        else process.stdout.write(`login token: in ${server.token.file}\n`);
        await new Promise<void>((resolve) => {
          const stop = () => {
            process.stdout.write('snapfill console: stopping\n');
            void server.close().then(resolve);
          };
          process.once('SIGINT', stop);
          process.once('SIGTERM', stop);
        });
      }),
    );
}
