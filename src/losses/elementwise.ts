// The shared loop of the elementwise losses on (n, D) (BCE, MSE, MAE, binary
// hinge): a sample's loss is the MEAN over its D elements of one term, and
// d(scale * loss_n)/dpred = scale / D * dterm. Each loss supplies its term,
// the term's derivative and its target rule; the loop, the checks and the
// float64 accumulation live here once.
import { checkCall, checkTarget, type Loss, type TargetKind } from './loss.js';

export interface ElementwiseTerm {
  readonly name: string;
  readonly target: TargetKind;
  /** Whether a target value is allowed, and the rule to quote when it is not. */
  validTarget(t: number): boolean;
  readonly rule: string;
  /** The term's value at prediction p, target t. */
  value(p: number, t: number): number;
  /** d value / d p. */
  derivative(p: number, t: number): number;
}

export function elementwiseLoss(term: ElementwiseTerm): Loss {
  const loss: Loss = {
    name: term.name,
    target: term.target,
    shardLevel: false,
    targetSize: (D) => D,
    forwardBackward(pred, target, n, D, dpred, scale, perSample) {
      checkCall(loss, pred, target, n, D, dpred, perSample);
      const k = scale / D;
      let total = 0;
      for (let i = 0; i < n; i++) {
        const row = i * D;
        let sum = 0;
        for (let j = 0; j < D; j++) {
          const p = pred[row + j], t = target[row + j];
          checkTarget(term.validTarget(t), term.name, target, row + j, D, term.rule);
          sum += term.value(p, t);
          dpred[row + j] = k * term.derivative(p, t);
        }
        const value = sum / D;
        if (perSample) perSample[i] = value;
        total += value;
      }
      return total;
    },
  };
  return loss;
}
