// Choosing the kernels from the public API in a browser (or any runtime
// with fetch): the WebAssembly SIMD kernels, fetched from the package's
// kernels.wasm or from what the caller gives, or the pure-TypeScript
// reference. Without a call the core computes with the TypeScript kernels:
// correct everywhere, several times slower.
//
// Where kernels.wasm comes from (`wasm` option, else the default):
//   - default: new URL('../../wasm/kernels.wasm', import.meta.url), i.e.
//     dist/wasm/kernels.wasm of the installed package. webpack 5 and Vite
//     (outside dependency pre-bundling) copy the file and rewrite the URL;
//     native ES modules served from the package folder find it as is;
//   - a URL (string or URL) the page serves it at: esbuild's file loader
//     (`import kernelsUrl from 'dptrain/kernels.wasm'` with
//     loader { '.wasm': 'file' }), Vite's `dptrain/kernels.wasm?url`;
//   - its bytes, or a compiled WebAssembly.Module.
// Node: `dptrain`'s initKernels reads the file itself (no fetch of file: URLs).
import * as z from 'zod';
import { formatZodError, plainIssueMessage } from '../check/zod-format.js';
import { DptrainError, dptError } from '../errors.js';
import { activeKernelName, useKernels, useWasmKernels } from '../tensor/setup.js';
import { isWasmModule, type WasmModule, type WasmSource } from '../tensor/wasm-kernels.js';

export type { WasmModule } from '../tensor/wasm-kernels.js';
export type KernelName = 'wasm-simd' | 'typescript';

/** Where the WebAssembly kernels come from: a URL, the bytes of kernels.wasm, or a compiled module. */
export type WasmKernelsSource = string | { readonly href: string } | ArrayBuffer | ArrayBufferView | WasmModule;

const isUrlLike = (v: unknown): v is string | { readonly href: string } =>
  typeof v === 'string' || (typeof v === 'object' && v !== null && typeof (v as { href?: unknown }).href === 'string');

export const KernelsOptions = z.strictObject({
  /** 'wasm' (default): the WebAssembly SIMD kernels; 'ts': the pure-TypeScript reference. */
  kind: z.enum(['wasm', 'ts']).default('wasm'),
  /** kernels.wasm: a URL, its bytes or a compiled module (default: the package's own file). */
  wasm: z.custom<WasmKernelsSource>((v) => isUrlLike(v) || v instanceof ArrayBuffer || ArrayBuffer.isView(v) || isWasmModule(v), {
    error: 'must be a URL, the bytes of kernels.wasm (ArrayBuffer, Uint8Array) or a compiled WebAssembly.Module',
  }).optional(),
  /** Size of the kernels' fixed WebAssembly memory in bytes (default 256 MiB). */
  memoryBytes: z.number().int().positive().optional(),
});
export type KernelsOptions = z.input<typeof KernelsOptions>;

/** The package's kernels.wasm, next to this module in dist/ (dist/src/api -> dist/wasm). */
export function packagedWasmUrl(): string {
  return new URL('../../wasm/kernels.wasm', import.meta.url).href;
}

export function parseKernelsOptions(options: KernelsOptions): z.output<typeof KernelsOptions> {
  const r = KernelsOptions.safeParse(options, { error: plainIssueMessage });
  if (!r.success) throw dptError('DPT_ERR_CONFIG', formatZodError(r.error, 'kernels options'));
  return r.data;
}

interface FetchResponse {
  readonly ok: boolean;
  readonly status: number;
  arrayBuffer(): Promise<ArrayBuffer>;
}

async function fetchBytes(url: string): Promise<ArrayBuffer> {
  // NOTE: typed locally: src/ compiles without the DOM library.
  const fetchFn = (globalThis as { fetch?: (url: string) => Promise<FetchResponse> }).fetch;
  if (fetchFn === undefined) throw dptError('DPT_ERR_KERNELS', `cannot fetch the kernels from ${url}: this runtime has no fetch; pass their bytes as options.wasm`);
  let response: FetchResponse;
  try {
    response = await fetchFn(url);
  } catch (e) {
    throw dptError('DPT_ERR_KERNELS', `cannot fetch the kernels from ${url} (${(e as Error).message}); serve dptrain/kernels.wasm and pass its URL as options.wasm (see the README, "Use it from code")`);
  }
  if (!response.ok) {
    throw dptError('DPT_ERR_KERNELS', `cannot fetch the kernels from ${url}: HTTP ${response.status}; serve dptrain/kernels.wasm and pass its URL as options.wasm (see the README, "Use it from code")`);
  }
  return response.arrayBuffer();
}

/**
 * Makes this thread compute with the chosen kernels; call it before building
 * or loading models (their buffers then live in the kernels' memory). Returns
 * the active kernels' name.
 */
export async function initKernels(options: KernelsOptions = {}): Promise<KernelName> {
  const o = parseKernelsOptions(options);
  if (o.kind === 'ts') {
    useKernels(null);
    return 'typescript';
  }
  const given = o.wasm ?? packagedWasmUrl();
  const where = isUrlLike(given) ? (typeof given === 'string' ? given : given.href) : 'options.wasm';
  const source: WasmSource = isUrlLike(given) ? await fetchBytes(where) : given;
  try {
    await useWasmKernels(source, o.memoryBytes === undefined ? {} : { memoryBytes: o.memoryBytes });
  } catch (e) {
    if (e instanceof DptrainError) throw e;
    throw dptError('DPT_ERR_KERNELS', `${where}: not the dptrain WebAssembly kernels (${(e as Error).message})`);
  }
  return activeKernelName() as KernelName;
}
