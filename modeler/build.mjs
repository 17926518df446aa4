// Bundle the modeler into api/static/modeler/, which the FastAPI app serves under /static/modeler/.
// The output is build output: git ignores it, and `make install` (or `make run` and `make test`) rebuilds it.
import { build } from 'esbuild';
import { mkdirSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(fileURLToPath(import.meta.url));
const output = join(root, '..', 'api', 'static', 'modeler');

rmSync(output, { recursive: true, force: true });
mkdirSync(output, { recursive: true });

// moddle-xml 11 writes an attribute of an unknown (generic) element without its prefix when the prefix is
// the element's own, so <flowable:collection flowable:class="…"> is saved as <flowable:collection class="…">
// and the attribute leaves its namespace. This keeps prefixes that were written in the file. The build
// fails when the patched file or lines change in a newer moddle-xml, so the patch is never skipped silently.
const keepAttributePrefixes = {
  name: 'keep-attribute-prefixes',
  setup(build) {
    let applied = false;
    build.onLoad({ filter: /moddle-xml[\\/]dist[\\/]index\.js$/ }, async (args) => {
      const source = await readFile(args.path, 'utf8');
      const original = '  // strip prefix if same namespace like parent\n  if (this.isLocalNs(effectiveNs)) {';
      const patched = '  // strip prefix if same namespace like parent, unless the file wrote one\n'
        + '  if (this.isLocalNs(effectiveNs) && !(isString(element) && ns.prefix)) {';
      if (!source.includes(original)) {
        throw new Error(`moddle-xml changed: ${args.path} no longer contains the lines keep-attribute-prefixes patches`);
      }
      applied = true;
      return { contents: source.replace(original, patched), loader: 'js' };
    });
    build.onEnd(() => {
      if (!applied) {
        throw new Error('keep-attribute-prefixes found no moddle-xml/dist/index.js to patch');
      }
    });
  }
};

await build({
  entryPoints: { modeler: join(root, 'src', 'index.js') },
  bundle: true,
  format: 'iife',
  target: [ 'es2020' ],
  minify: true,
  sourcemap: true,
  outdir: output,
  jsx: 'automatic',
  jsxImportSource: '@bpmn-io/properties-panel/preact',
  loader: { '.woff': 'file', '.woff2': 'file', '.eot': 'file', '.ttf': 'file', '.svg': 'file' },
  assetNames: 'assets/[name]-[hash]',
  plugins: [ keepAttributePrefixes ],
  logLevel: 'info'
});
