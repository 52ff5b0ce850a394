// Every case of metrics.json (scikit-learn 1.2.1, README section 11): the
// confusion matrix and supports exactly, every ratio within 1e-12.
import { describe, expect, it } from 'vitest';
import { compareTensor } from '../../src/check/fixture.js';
import { DptrainError } from '../../src/errors.js';
import { accumulateConfusion, argmaxRows, classificationReport, confusionMatrix, thresholdRows } from '../../src/metrics/index.js';
import { loadFixture } from '../helpers/fixtures.js';

const file = loadFixture('metrics.json');

describe('metrics.json', () => {
  it.each(file.cases.map((c) => ({ label: c.label, c })))('$label', ({ c }) => {
    const C = c.config['num_classes'] as number;
    const yTrue = c.inputs['y_true'].data, yPred = c.inputs['y_pred'].data;
    const cm = confusionMatrix(yTrue, yPred, C);
    const r = classificationReport(cm);
    expect(r.numClasses).toBe(C);
    expect(r.total).toBe(yTrue.length);
    const actual: Record<string, number[]> = {
      accuracy: [r.accuracy],
      precision_macro: [r.macro.precision], recall_macro: [r.macro.recall], f1_macro: [r.macro.f1],
      precision_micro: [r.micro.precision], recall_micro: [r.micro.recall], f1_micro: [r.micro.f1],
      precision_weighted: [r.weighted.precision], recall_weighted: [r.weighted.recall], f1_weighted: [r.weighted.f1],
      precision_per_class: r.perClass.precision, recall_per_class: r.perClass.recall, f1_per_class: r.perClass.f1,
    };
    if (c.config['binary_pos_label'] === 1) {
      expect(r.binary).not.toBeNull();
      actual['precision_binary'] = [r.binary!.precision];
      actual['recall_binary'] = [r.binary!.recall];
      actual['f1_binary'] = [r.binary!.f1];
    } else {
      expect(r.binary).toBeNull();
    }
    const exact: Record<string, number[]> = {
      confusion_matrix: Array.from(cm),
      support_per_class: r.perClass.support,
    };
    for (const [name, expected] of Object.entries(c.outputs)) {
      if (name in exact) {
        expect(exact[name], name).toEqual(expected.data);
      } else {
        expect(actual[name], `${name} is not produced`).toBeDefined();
        const cmp = compareTensor(actual[name], expected, 1e-12, 1e-12);
        expect(cmp.ok, `${name}: ${JSON.stringify(actual[name])} vs ${JSON.stringify(expected.data)}`).toBe(true);
      }
    }
    // Every value the report produces is checked by the fixture.
    for (const name of [...Object.keys(actual), ...Object.keys(exact)]) expect(c.outputs[name], name).toBeDefined();
  });
});

describe('confusion matrix', () => {
  it('rows are true classes, columns predicted; parts add up', () => {
    const cm = confusionMatrix([0, 0, 1, 2], [1, 0, 1, 0], 3);
    expect(Array.from(cm)).toEqual([1, 1, 0, 0, 1, 0, 1, 0, 0]);
    accumulateConfusion(cm, [2, 2, 9], [2, 2, 9], 3, 2);
    expect(Array.from(cm)).toEqual([1, 1, 0, 0, 1, 0, 1, 0, 2]);
  });

  it('refuses invalid labels, naming the array, the sample and the value', () => {
    const cases: Array<[number[], number[], string]> = [
      [[0, 3], [0, 0], 'y_true sample 1 has class label 3'],
      [[0, 1], [0.5, 0], 'y_pred sample 0 has class label 0.5'],
      [[0, -1], [0, 0], 'y_true sample 1 has class label -1'],
    ];
    for (const [t, p, msg] of cases) {
      try {
        confusionMatrix(t, p, 3);
        expect.unreachable();
      } catch (e) {
        expect(e).toBeInstanceOf(DptrainError);
        expect((e as DptrainError).code).toBe('DPT_ERR_DATASET');
        expect((e as DptrainError).message).toContain(msg);
      }
    }
    expect(() => confusionMatrix([0, 1], [0], 2)).toThrow(/y_true has 2 labels but y_pred has 1/);
    expect(() => classificationReport(new Int32Array(5))).toThrow(/not C \* C/);
  });

  it('an empty matrix reports zeros, not NaN', () => {
    const r = classificationReport(new Int32Array(4));
    for (const v of [r.accuracy, r.macro.f1, r.micro.precision, r.weighted.recall, r.binary!.f1]) expect(v).toBe(0);
  });
});

describe('predicted classes', () => {
  it('argmaxRows takes the first maximum on ties', () => {
    const out = new Int32Array(4).fill(-1);
    argmaxRows(Float32Array.from([1, 3, 3, /**/ -1, -2, -3, /**/ 0, 0, 0]), 3, 3, out);
    expect(Array.from(out)).toEqual([1, 0, 0, -1]);
  });

  it('thresholdRows turns one output per sample into 0/1', () => {
    expect(Array.from(thresholdRows([-0.5, 0, 2], 3, 0, new Int32Array(3)))).toEqual([0, 0, 1]);
  });
});
