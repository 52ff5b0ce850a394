// Compiles the WebAssembly SIMD kernels: wasm/gemm.ts (matrix products),
// wasm/cells.ts (LSTM/GRU cells, row sums), wasm/vector.ts (tree adds, SGD), wasm/adam.ts,
// wasm/conv.ts and wasm/pool.ts (convolution, pooling), wasm/norm.ts (batch
// normalization) -> dist/wasm/kernels.wasm, one
// module (AssemblyScript, baseline 128-bit SIMD, no threads, no relaxed SIMD).
// Run after tsc (scripts/build.js empties dist/ first):  node scripts/build-wasm.js
//
// The module imports its memory as env.memory (the loader in
// src/tensor/wasm-kernels.ts creates it at full size) and imports nothing else.
import asc from 'assemblyscript/asc';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const sources = ['wasm/gemm.ts', 'wasm/cells.ts', 'wasm/vector.ts', 'wasm/conv.ts', 'wasm/pool.ts', 'wasm/adam.ts', 'wasm/norm.ts'];
const outDir = root + 'dist/wasm/';
const outFile = outDir + 'kernels.wasm';

const args = [
  ...sources,
  '--enable', 'simd',
  '-O3',
  '--runtime', 'stub',
  '--importMemory', // env.memory, created by the loader, never grown
  '--noExportMemory',
  '--use', 'abort=', // no env.abort import: the kernels never assert
  '--outFile', 'kernels.wasm',
];

process.chdir(root); // asc resolves sources against the working directory
let binary = null;
const { error, stderr } = await asc.main(args, {
  // Capture the output instead of letting asc write it, then write atomically
  // (a test and a build may race to create the file).
  writeFile(name, contents) {
    if (name.endsWith('.wasm')) binary = contents;
  },
});
if (error) {
  process.stderr.write(stderr.toString());
  process.stderr.write(`build-wasm: ${error.message}\n`);
  process.exit(1);
}
if (!binary) {
  process.stderr.write('build-wasm: asc produced no binary\n');
  process.exit(1);
}
mkdirSync(outDir, { recursive: true });
const tmp = `${outFile}.${process.pid}.tmp`;
writeFileSync(tmp, binary);
renameSync(tmp, outFile);
console.log(`build-wasm: ${sources.join(' + ')} -> dist/wasm/kernels.wasm (${binary.length} bytes)`);
