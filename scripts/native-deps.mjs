// Runs before node-gyp (npm's install step): the native addons need libdeflate's header and
// library (Debian: libdeflate-dev). Without them the compiler's wall of errors would bury the
// one fact that matters, so this says it in one line and fails the install.
import { spawnSync } from 'node:child_process';

const probe = spawnSync('cc', ['-x', 'c', '-fsyntax-only', '-'], { input: '#include <libdeflate.h>\n', encoding: 'utf8' });
if (probe.error || probe.status !== 0) {
  process.stderr.write('snapfill: building the native addon needs libdeflate-dev: apt-get install -y libdeflate-dev, then npm rebuild\n');
  process.exit(1);
}
