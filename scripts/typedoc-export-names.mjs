// A TypeDoc plugin (typedoc.json, `npm run docs`): names each entry point's
// module after the package export users import it by (`dptrain`,
// `dptrain/core`), read from package.json's `exports`, instead of after its
// folder (`coordinator`, `src`), without a TypeDoc tag in the sources.
import { readFileSync } from 'node:fs';
import { Converter } from 'typedoc';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));

/** Folder of an export's declarations -> its import name: { coordinator: 'dptrain', src: 'dptrain/core' }. */
function exportNames() {
  const names = new Map();
  for (const [key, target] of Object.entries(pkg.exports)) {
    const types = typeof target === 'object' ? target.types : undefined;
    const folder = types?.match(/^\.\/dist\/(.+)\/index\.d\.ts$/)?.[1];
    if (folder !== undefined) names.set(folder, key === '.' ? pkg.name : `${pkg.name}/${key.slice(2)}`);
  }
  return names;
}

export function load(app) {
  const names = exportNames();
  app.converter.on(Converter.EVENT_RESOLVE_BEGIN, (context) => {
    for (const module of context.project.children ?? []) {
      const name = names.get(module.name);
      if (name !== undefined) module.name = name;
    }
  });
}
