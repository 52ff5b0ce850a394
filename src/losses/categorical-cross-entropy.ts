// Categorical cross-entropy on probabilities (the model ends in a softmax
// layer), with an integer class id y per sample. Two conventions, whose
// gradients with respect to p differ (the fixtures' README, pitfall 4):
//
// categorical_cross_entropy_probs (plain):
//   loss_n = -log p_y                (= -sum_c t_c log p_c with 0 log 0 = 0)
//   dloss_n/dp_c = -1/p_y at c = y, 0 elsewhere
//   No renormalization, no clipping: p_y = 0 gives loss +Infinity.
//
// categorical_cross_entropy_probs_keras (tf.keras backend formula):
//   S = sum_c p_c,  p'_c = p_c / S,  p'' = clip(p', 1e-7, 1 - 1e-7)
//   loss_n = -log p''_y
//   The gradient goes through the clip and the renormalization:
//   dloss/dp'_y = -1/p'_y where 1e-7 <= p'_y <= 1 - 1e-7, else 0, and
//   dp'_y/dp_c = ([c = y] - p'_y) / S, so inside the clip range
//   dloss_n/dp_c = -[c = y]/p_y + 1/S: the plain gradient plus 1/S on every
//   entry, a constant that cancels when back-propagated through a softmax.

import { checkCall, readLabel, type Loss } from './loss.js';

export const categoricalCrossEntropyProbs: Loss = {
  name: 'categorical_cross_entropy_probs',
  target: 'class',
  shardLevel: false,
  targetSize: () => 1,
  forwardBackward(pred, target, n, D, dpred, scale, perSample) {
    checkCall(categoricalCrossEntropyProbs, pred, target, n, D, dpred, perSample, 2);
    let total = 0;
    for (let i = 0; i < n; i++) {
      const y = readLabel('categorical_cross_entropy_probs', target, i, D);
      const row = i * D;
      const py = pred[row + y];
      const loss = -Math.log(py);
      for (let j = 0; j < D; j++) dpred[row + j] = 0;
      dpred[row + y] = scale * (-1 / py);
      if (perSample) perSample[i] = loss;
      total += loss;
    }
    return total;
  },
};

/** Keras' epsilon() for the clip. */
export const KERAS_EPSILON = 1e-7;

export const categoricalCrossEntropyProbsKeras: Loss = {
  name: 'categorical_cross_entropy_probs_keras',
  target: 'class',
  shardLevel: false,
  targetSize: () => 1,
  forwardBackward(pred, target, n, D, dpred, scale, perSample) {
    checkCall(categoricalCrossEntropyProbsKeras, pred, target, n, D, dpred, perSample, 2);
    const lo = KERAS_EPSILON, hi = 1 - KERAS_EPSILON;
    let total = 0;
    for (let i = 0; i < n; i++) {
      const y = readLabel('categorical_cross_entropy_probs_keras', target, i, D);
      const row = i * D;
      let S = 0;
      for (let j = 0; j < D; j++) S += pred[row + j];
      const py = pred[row + y] / S;
      const clipped = py < lo ? lo : py > hi ? hi : py;
      const loss = -Math.log(clipped);
      // NOTE: the clip passes gradient on the closed range [lo, hi]; outside
      // it (e.g. p'_y exactly 1) the whole row's gradient is 0.
      const g = py >= lo && py <= hi ? -1 / py : 0;
      for (let j = 0; j < D; j++) {
        const d = g === 0 ? 0 : (g * ((j === y ? 1 : 0) - py)) / S;
        dpred[row + j] = scale * d;
      }
      if (perSample) perSample[i] = loss;
      total += loss;
    }
    return total;
  },
};
