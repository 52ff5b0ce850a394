// The model spec: a JSON document listing the layers, checked by zod.
// The TypeScript types are inferred from the schemas, never written twice.
import * as z from 'zod';

const positiveInt = z.number({ error: 'expected a positive integer' })
  .int({ error: 'expected a positive integer' })
  .positive({ error: 'expected a positive integer' });
const regularization = {
  /** L1 penalty lambda * sum|w| on this layer's weights (not biases). */
  l1: z.number().nonnegative().optional(),
  /** L2 penalty lambda * sum w^2 (no 1/2 factor) on this layer's weights. */
  l2: z.number().nonnegative().optional(),
  /** Also penalize the biases (default false). */
  regularizeBias: z.boolean().optional(),
};
const activationName = z.enum(['linear', 'relu', 'sigmoid', 'tanh', 'softmax']);
const initName = z.enum(['glorot_uniform', 'glorot_normal', 'he_uniform', 'he_normal']);

export const DenseSpec = z.strictObject({
  type: z.literal('dense'),
  /** Output features. */
  units: positiveInt,
  /** Activation applied after the affine map (expanded into its own layer). */
  activation: activationName.optional(),
  useBias: z.boolean().optional(),
  kernelInit: initName.optional(),
  ...regularization,
});

export const ActivationSpec = z.strictObject({
  type: z.enum(['relu', 'sigmoid', 'tanh', 'softmax']),
});

export const DropoutSpec = z.strictObject({
  type: z.literal('dropout'),
  /** Probability of dropping a unit (PyTorch p, Keras rate), in [0, 1]. */
  rate: z.number().min(0).max(1),
});

export const BatchNormSpec = z.strictObject({
  type: z.literal('batchnorm'),
  /** Weight of the new batch statistic in the running estimate (PyTorch convention). */
  momentum: z.number().min(0).max(1).optional(),
  eps: z.number().positive().optional(),
  ...regularization,
});

export const RecurrentSpec = z.strictObject({
  type: z.enum(['lstm', 'gru']),
  /** Hidden size H. */
  units: positiveInt,
  /** Output the whole sequence [T, H] instead of the last state [H]. */
  returnSequences: z.boolean().optional(),
  kernelInit: initName.optional(),
  ...regularization,
});

export const FlattenSpec = z.strictObject({ type: z.literal('flatten') });

export const ReshapeSpec = z.strictObject({
  type: z.literal('reshape'),
  /** Target per-sample shape; its size must equal the input's. */
  shape: z.array(positiveInt).min(1),
});

export const LayerSpec = z.discriminatedUnion('type', [
  DenseSpec, ActivationSpec, DropoutSpec, BatchNormSpec, RecurrentSpec, FlattenSpec, ReshapeSpec,
]);

export const ModelSpec = z.strictObject({
  /** Per-sample input shape, e.g. [784] or [28, 28] (time, features). */
  inputShape: z.array(positiveInt).min(1),
  layers: z.array(LayerSpec).min(1),
});

export type DenseSpec = z.infer<typeof DenseSpec>;
export type ActivationSpec = z.infer<typeof ActivationSpec>;
export type DropoutSpec = z.infer<typeof DropoutSpec>;
export type BatchNormSpec = z.infer<typeof BatchNormSpec>;
export type RecurrentSpec = z.infer<typeof RecurrentSpec>;
export type FlattenSpec = z.infer<typeof FlattenSpec>;
export type ReshapeSpec = z.infer<typeof ReshapeSpec>;
export type LayerSpec = z.infer<typeof LayerSpec>;
export type ModelSpec = z.infer<typeof ModelSpec>;
