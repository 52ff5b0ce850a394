// The unit project needs only the WebAssembly kernels (dist/wasm/kernels.wasm):
// built here when missing or older than their sources, not the whole dist/.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../', import.meta.url));

export default function setup(): void {
  if (process.env.DPTRAIN_TEST_DIST_BUILT === '1') return;
  const wasm = `${root}dist/wasm/kernels.wasm`;
  const newest = Math.max(...readdirSync(`${root}wasm`).map((f) => statSync(`${root}wasm/${f}`).mtimeMs));
  if (existsSync(wasm) && statSync(wasm).mtimeMs >= newest) return;
  execFileSync(process.execPath, [`${root}scripts/build-wasm.js`], { stdio: 'inherit' });
}
