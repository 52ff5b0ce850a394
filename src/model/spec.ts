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
  /**
   * The axis normalized (one mean, variance, gamma and beta per index of it,
   * statistics over the batch and every other axis): 'channels' is the first
   * axis of the per-sample shape (the C of [C, H, W]: PyTorch's BatchNorm2d),
   * 'last' the last one (the F of [F] and of a sequence [T, F]). Default:
   * 'channels' for an input of three or more axes (an image), 'last' otherwise.
   */
  axis: z.enum(['channels', 'last']).optional(),
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

/** A size per spatial axis: one number for both, or [height, width]. */
const pair = z.union([positiveInt, z.tuple([positiveInt, positiveInt])]);
const nonNegativeInt = z.number({ error: 'expected a non-negative integer' })
  .int({ error: 'expected a non-negative integer' })
  .nonnegative({ error: 'expected a non-negative integer' });
/**
 * 'valid' (none), 'same' (TF / Keras: the output is ceil(input / stride),
 * any extra row or column of padding goes to the bottom / right), or
 * explicit zeros on both sides: one number or [height, width] (PyTorch).
 */
const padding = z.union([
  z.enum(['valid', 'same']),
  nonNegativeInt,
  z.tuple([nonNegativeInt, nonNegativeInt]),
]);

/** 2-D convolution over a [C, H, W] input (NCHW, PyTorch's cross-correlation). */
export const Conv2dSpec = z.strictObject({
  type: z.literal('conv2d'),
  /** Output channels O. */
  filters: positiveInt,
  /** Kernel size kh x kw. */
  kernelSize: pair,
  /** Default 1. */
  stride: pair.optional(),
  /** Default 'valid'. */
  padding: padding.optional(),
  /** Spacing between kernel taps; default 1. */
  dilation: pair.optional(),
  /** Activation applied after the convolution (expanded into its own layer). */
  activation: activationName.optional(),
  useBias: z.boolean().optional(),
  kernelInit: initName.optional(),
  ...regularization,
});

/** 2-D max or average pooling over a [C, H, W] input, per channel. */
export const Pool2dSpec = z.strictObject({
  type: z.enum(['maxpool2d', 'avgpool2d']),
  /** Window kh x kw. */
  poolSize: pair,
  /** Default: the pool size (non-overlapping windows). */
  stride: pair.optional(),
  /** Default 'valid'. Max pooling pads with -infinity, average pooling with zeros. */
  padding: padding.optional(),
  /**
   * Average pooling: divide by the whole window (true, PyTorch's default) or
   * by the cells inside the input only (false; what 'same' means in TF.js).
   */
  countIncludePad: z.boolean().optional(),
});

export const ReshapeSpec = z.strictObject({
  type: z.literal('reshape'),
  /** Target per-sample shape; its size must equal the input's. */
  shape: z.array(positiveInt).min(1),
});

export const LayerSpec = z.discriminatedUnion('type', [
  DenseSpec, ActivationSpec, DropoutSpec, BatchNormSpec, RecurrentSpec, FlattenSpec, ReshapeSpec, Conv2dSpec, Pool2dSpec,
]);

export const ModelSpec = z.strictObject({
  /** Per-sample input shape, e.g. [784], [28, 28] (time, features) or [1, 28, 28] (channels, height, width). */
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
export type Conv2dSpec = z.infer<typeof Conv2dSpec>;
export type Pool2dSpec = z.infer<typeof Pool2dSpec>;
export type LayerSpec = z.infer<typeof LayerSpec>;
export type ModelSpec = z.infer<typeof ModelSpec>;
