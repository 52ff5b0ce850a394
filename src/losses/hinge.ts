// Binary hinge loss, elementwise on (n, D): scores f, labels y in {-1, +1}.
//   loss_n = mean over the D elements of max(0, 1 - y f)
//   dloss_n/df = -y / D where 1 - y f > 0, else 0 (0 at y f == 1 exactly)
//
// Labels must be exactly -1 or +1. A 0/1-labelled dataset is refused
// (DPT_ERR_DATASET), not silently converted: map it with y' = 2y - 1 when
// loading. (Keras' `hinge` converts 0/1 labels when ALL labels of a call are
// 0 or 1; decided per micro-shard, that guess could differ between shards.)

import { elementwiseLoss } from './elementwise.js';

export const hinge = elementwiseLoss({
  name: 'hinge',
  target: 'pm1',
  validTarget: (y) => y === 1 || y === -1,
  rule: 'hinge labels must be -1 or +1 (map 0/1 labels with y = 2 * label - 1)',
  value: (f, y) => Math.max(0, 1 - y * f),
  // NOTE: only a margin m = 1 - y f > 0 passes gradient (0 at the kink m == 0).
  derivative: (f, y) => (1 - y * f > 0 ? -y : 0),
});
