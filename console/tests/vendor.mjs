// The console's vendored files are byte-for-byte copies of files in the pinned npm packages
// (console/package.json + package-lock.json). `--write` refreshes them after a pin changes;
// without it, checks them and exits non-zero on any difference.
import { readFileSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

export function checkVendor({ write = false } = {}) {
  const map = JSON.parse(readFileSync(join(root, 'vendor.json'), 'utf8'));
  const problems = [];
  for (const [dest, source] of Object.entries(map)) {
    const from = join(root, 'node_modules', source);
    const to = join(root, dest);
    if (!existsSync(from)) {
      problems.push(`${source} is missing from console/node_modules (run: make console/node_modules/.installed)`);
      continue;
    }
    const want = readFileSync(from);
    if (write) {
      mkdirSync(dirname(to), { recursive: true });
      writeFileSync(to, want);
    } else if (!existsSync(to) || !readFileSync(to).equals(want)) {
      problems.push(`console/${dest} differs from npm ${source} (run: make console-vendor)`);
    }
  }
  return problems;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const problems = checkVendor({ write: process.argv.includes('--write') });
  for (const p of problems) console.error(p);
  process.exit(problems.length ? 1 : 0);
}
