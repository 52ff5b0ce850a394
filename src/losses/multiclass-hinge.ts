// Multi-class hinge losses on scores f (n, C) with an integer class id y per
// sample. Three conventions that differ (the fixtures' README, pitfall 3):
//
// categorical_hinge_keras (Keras `categorical_hinge`, t = one-hot of y):
//   pos = f_y,  neg = max_c (1 - t_c) f_c,  loss = max(0, neg - pos + 1)
//   The target slot takes part in the max with the value 0, so neg >= 0.
// multiclass_hinge (Crammer-Singer):
//   loss = max(0, max_{j != y} f_j - f_y + 1)
//   Equal to Keras' unless every non-target score is negative.
// multi_margin_pytorch (nn.MultiMarginLoss, p = 1, margin 1, no weights):
//   loss = (1/C) sum_{j != y} max(0, 1 - f_y + f_j)
//   A sum over every wrong class, divided by C including the target.
//
// Gradients: every hinge max(0, m) passes gradient only where m > 0 (0 at
// the kink m == 0). Where a max over classes is active, +1 goes to the
// arg-max (the lowest index on ties) and -1 to the target; in the Keras form
// the arg-max may be the target slot, whose value 0 does not depend on f,
// and then only the -1 remains.
//
// NOTE: the sums are formed in the order of the reference formulas
// ((neg - pos) + 1, (1 - f_y) + f_j) so that float32 inputs that sit exactly
// on a kink give exactly 0 here too.

import { checkCall, readLabel, type Loss } from './loss.js';

export const categoricalHingeKeras: Loss = {
  name: 'categorical_hinge_keras',
  target: 'class',
  shardLevel: false,
  targetSize: () => 1,
  forwardBackward(pred, target, n, C, dpred, scale, perSample) {
    checkCall(categoricalHingeKeras, pred, target, n, C, dpred, perSample, 2);
    let total = 0;
    for (let i = 0; i < n; i++) {
      const y = readLabel('categorical_hinge_keras', target, i, C);
      const row = i * C;
      const pos = pred[row + y];
      let neg = -Infinity, arg = -1;
      for (let j = 0; j < C; j++) {
        const v = j === y ? 0 : pred[row + j];
        if (v > neg) { neg = v; arg = j; }
      }
      const m = neg - pos + 1;
      for (let j = 0; j < C; j++) dpred[row + j] = 0;
      let loss = 0;
      if (m > 0) {
        loss = m;
        dpred[row + y] = -scale;
        if (arg !== y) dpred[row + arg] = scale;
      }
      if (perSample) perSample[i] = loss;
      total += loss;
    }
    return total;
  },
};

export const multiclassHinge: Loss = {
  name: 'multiclass_hinge',
  target: 'class',
  shardLevel: false,
  targetSize: () => 1,
  forwardBackward(pred, target, n, C, dpred, scale, perSample) {
    checkCall(multiclassHinge, pred, target, n, C, dpred, perSample, 2);
    let total = 0;
    for (let i = 0; i < n; i++) {
      const y = readLabel('multiclass_hinge', target, i, C);
      const row = i * C;
      let best = -Infinity, arg = -1;
      for (let j = 0; j < C; j++) {
        if (j !== y && pred[row + j] > best) { best = pred[row + j]; arg = j; }
      }
      const m = best - pred[row + y] + 1;
      for (let j = 0; j < C; j++) dpred[row + j] = 0;
      let loss = 0;
      if (m > 0) {
        loss = m;
        dpred[row + y] = -scale;
        dpred[row + arg] = scale;
      }
      if (perSample) perSample[i] = loss;
      total += loss;
    }
    return total;
  },
};

export const multiMarginPytorch: Loss = {
  name: 'multi_margin_pytorch',
  target: 'class',
  shardLevel: false,
  targetSize: () => 1,
  forwardBackward(pred, target, n, C, dpred, scale, perSample) {
    checkCall(multiMarginPytorch, pred, target, n, C, dpred, perSample, 2);
    const k = scale / C;
    let total = 0;
    for (let i = 0; i < n; i++) {
      const y = readLabel('multi_margin_pytorch', target, i, C);
      const row = i * C;
      const fy = pred[row + y];
      let sum = 0, active = 0;
      for (let j = 0; j < C; j++) {
        const m = j === y ? 0 : 1 - fy + pred[row + j];
        if (m > 0) {
          sum += m;
          active++;
          dpred[row + j] = k;
        } else {
          dpred[row + j] = 0;
        }
      }
      dpred[row + y] = -active * k;
      const loss = sum / C;
      if (perSample) perSample[i] = loss;
      total += loss;
    }
    return total;
  },
};
