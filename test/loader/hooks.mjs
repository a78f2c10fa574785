// Module hooks that load .ts files as ES modules: each file is transpiled
// alone by TypeScript (types are checked by `npm run typecheck`, not here),
// with an inline source map for stack traces and coverage, and the result
// is cached on disk, keyed by the file's path and text, the TypeScript
// version and the options. Every test file is its own process: without the
// cache each would transpile what it imports again (most of a second).
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const require = createRequire(join(root, 'package.json'));
const CACHE = join(root, 'node_modules', '.cache', 'qmp-mux-test-loader');
const OPTIONS = { module: 'ESNext', target: 'ES2022', verbatimModuleSyntax: true, inlineSourceMap: true };
const VERSION = JSON.parse(readFileSync(require.resolve('typescript/package.json'), 'utf8')).version;

/** TypeScript itself, loaded only on a cache miss. */
let ts;

export async function load(url, context, next) {
  if (!url.startsWith('file:') || !url.endsWith('.ts')) return next(url, context);
  const path = fileURLToPath(url);
  const text = readFileSync(path, 'utf8');
  const key = createHash('sha256').update(JSON.stringify([VERSION, OPTIONS, path])).update(text).digest('hex');
  const cached = join(CACHE, `${key}.js`);
  let source;
  try {
    source = readFileSync(cached, 'utf8');
  } catch {
    ts ??= require('typescript');
    const compilerOptions = ts.convertCompilerOptionsFromJson(OPTIONS, root).options;
    source = ts.transpileModule(text, { fileName: path, compilerOptions }).outputText;
    // Test files run in parallel: each writes its own temporary file, and the rename is atomic.
    mkdirSync(CACHE, { recursive: true });
    const temporary = `${cached}.${process.pid}`;
    writeFileSync(temporary, source);
    renameSync(temporary, cached);
  }
  return { format: 'module', source, shortCircuit: true };
}
