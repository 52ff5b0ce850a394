// Softmax cross-entropy from logits (the softmax is fused into the loss).
//
//   p_c    = softmax(z)_c = exp(z_c - m) / s,  m = max_c z_c,  s = sum_c exp(z_c - m)
//   loss_n = -sum_c t_c log p_c = sum_c t_c (log s - (z_c - m))
//   dloss_n/dz_c = T p_c - t_c,  T = sum_c t_c   (= p_c - t_c for a one-hot or probability row)
//
// Two target forms: an integer class id per sample (softmax_cross_entropy,
// t = one-hot) or a probability row of D numbers
// (softmax_cross_entropy_probs_target: soft labels, label smoothing).
//
// NOTE: the max subtraction keeps exp() finite for logits of +-1000, and
// log s - (z_y - m) keeps the loss of a confident correct prediction
// accurate (no log of a rounded probability).

import { checkCall, checkTarget, readLabel, type Loss } from './loss.js';

export const softmaxCrossEntropy: Loss = {
  name: 'softmax_cross_entropy',
  target: 'class',
  shardLevel: false,
  targetSize: () => 1,
  forwardBackward(pred, target, n, D, dpred, scale, perSample) {
    checkCall(softmaxCrossEntropy, pred, target, n, D, dpred, perSample, 2);
    let total = 0;
    for (let i = 0; i < n; i++) {
      const y = readLabel('softmax_cross_entropy', target, i, D);
      const row = i * D;
      let m = -Infinity;
      for (let j = 0; j < D; j++) if (pred[row + j] > m) m = pred[row + j];
      let s = 0;
      for (let j = 0; j < D; j++) s += Math.exp(pred[row + j] - m);
      const loss = Math.log(s) - (pred[row + y] - m);
      for (let j = 0; j < D; j++) {
        const p = Math.exp(pred[row + j] - m) / s;
        dpred[row + j] = scale * (j === y ? p - 1 : p);
      }
      if (perSample) perSample[i] = loss;
      total += loss;
    }
    return total;
  },
};

export const softmaxCrossEntropyProbsTarget: Loss = {
  name: 'softmax_cross_entropy_probs_target',
  target: 'probs',
  shardLevel: false,
  targetSize: (D) => D,
  forwardBackward(pred, target, n, D, dpred, scale, perSample) {
    checkCall(softmaxCrossEntropyProbsTarget, pred, target, n, D, dpred, perSample, 2);
    let total = 0;
    for (let i = 0; i < n; i++) {
      const row = i * D;
      let m = -Infinity, T = 0;
      for (let j = 0; j < D; j++) {
        if (pred[row + j] > m) m = pred[row + j];
        const t = target[row + j];
        checkTarget(t >= 0 && t <= 1, 'softmax_cross_entropy_probs_target', target, row + j, D,
          'probability targets must lie in [0, 1] (a one-hot or probability row per sample)');
        T += t;
      }
      let s = 0;
      for (let j = 0; j < D; j++) s += Math.exp(pred[row + j] - m);
      const logS = Math.log(s);
      let loss = 0;
      for (let j = 0; j < D; j++) {
        const t = target[row + j];
        // 0 * log p = 0: skip zero targets.
        if (t !== 0) loss += t * (logS - (pred[row + j] - m));
        const p = Math.exp(pred[row + j] - m) / s;
        dpred[row + j] = scale * (T * p - t);
      }
      if (perSample) perSample[i] = loss;
      total += loss;
    }
    return total;
  },
};
