// Node side of the fingerprint data: the first FINGERPRINT_SAMPLES digits of
// the MNIST training split, as a dataset blob (src/data/binary.ts), the
// bytes the browser test serves to the page.
import { loadMnist } from '../../coordinator/data/mnist.js';
import { encodeDataset } from '../../src/data/binary.js';
import { subset } from '../../src/data/dataset.js';
import { FINGERPRINT_SAMPLES } from './fingerprint.js';

export async function fingerprintBlob(): Promise<Uint8Array> {
  const { train } = await loadMnist();
  const indices = Array.from({ length: FINGERPRINT_SAMPLES }, (_, i) => i);
  return encodeDataset(subset(train.dataset, indices, 'mnist-fingerprint'));
}
