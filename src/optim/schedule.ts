// Learning-rate schedules: the rate at a step, as a pure function of the
// step number, so a resumed run continues on the same curve.
import * as z from 'zod';

export const ScheduleConfig = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('constant') }),
  /** Multiply by gamma every stepSize steps. */
  z.strictObject({ type: z.literal('step'), stepSize: z.number().int().positive(), gamma: z.number().positive() }),
  /** Cosine decay from lr to minLr over totalSteps (default: the whole run). */
  z.strictObject({ type: z.literal('cosine'), minLr: z.number().nonnegative().default(0), totalSteps: z.number().int().positive().optional() }),
]);
export type ScheduleConfig = z.infer<typeof ScheduleConfig>;

/**
 * Learning rate at `step` (0-based). Linear warm-up over `warmupSteps` from
 * lr/warmupSteps up to lr, then the schedule (counted from the step the
 * warm-up ends).
 */
export function learningRate(base: number, schedule: ScheduleConfig, warmupSteps: number, step: number, totalSteps: number): number {
  if (warmupSteps > 0 && step < warmupSteps) return (base * (step + 1)) / warmupSteps;
  const t = step - warmupSteps;
  switch (schedule.type) {
    case 'constant':
      return base;
    case 'step':
      return base * schedule.gamma ** Math.floor(t / schedule.stepSize);
    case 'cosine': {
      const total = Math.max(1, (schedule.totalSteps ?? totalSteps) - warmupSteps);
      const progress = Math.min(1, t / total);
      return schedule.minLr + 0.5 * (base - schedule.minLr) * (1 + Math.cos(Math.PI * progress));
    }
  }
}
