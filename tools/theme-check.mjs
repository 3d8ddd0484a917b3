// Runs Shopify's theme-check (@shopify/theme-check-node) on theme app extensions.
//
// Usage: node tools/theme-check.mjs [--fail-level error|warning|info] <extension dir>...
// The package ships no CLI binary (the CLI lives in Shopify CLI), so this calls its `check`
// API. A directory holding a *.extension.toml gets the `theme-check:theme-app-extension`
// config, the same one `shopify app` uses. Exits 1 if any offense is at or above the fail
// level (default: error), 2 if an argument is not an extension directory.
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { themeCheckRun, Severity } from '@shopify/theme-check-node';

const LEVELS = { error: Severity.ERROR, warning: Severity.WARNING, info: Severity.INFO };
const NAMES = ['error', 'warning', 'info'];

const args = process.argv.slice(2);
let failLevel = Severity.ERROR;
const dirs = [];
for (let i = 0; i < args.length; i += 1) {
  if (args[i] === '--fail-level') {
    failLevel = LEVELS[args[i + 1]];
    i += 1;
    if (failLevel === undefined) {
      console.error('--fail-level must be error, warning or info');
      process.exit(2);
    }
  } else {
    dirs.push(args[i]);
  }
}
if (dirs.length === 0) {
  console.error('usage: node tools/theme-check.mjs [--fail-level LEVEL] <extension dir>...');
  process.exit(2);
}

let failing = 0;
for (const dir of dirs) {
  const root = path.resolve(dir);
  if (!existsSync(root) || !readdirSync(root).some((f) => f.endsWith('.extension.toml'))) {
    console.error(`${dir}: not a theme app extension (no *.extension.toml)`);
    process.exit(2);
  }
  const { theme, offenses } = await themeCheckRun(root, undefined, () => {});
  for (const o of offenses) {
    const file = path.relative(process.cwd(), new URL(o.uri).pathname);
    console.log(`${file}:${o.start.line}:${o.start.character + 1} ${NAMES[o.severity]} ${o.check}: ${o.message}`);
    if (o.severity <= failLevel) failing += 1;
  }
  console.log(`${dir}: ${theme.length} files checked, ${offenses.length} offense(s)`);
}
if (failing > 0) {
  console.error(`theme-check failed: ${failing} offense(s) at or above ${NAMES[failLevel]}`);
  process.exit(1);
}
