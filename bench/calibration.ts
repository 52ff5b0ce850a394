// Measurements that `npm run sim:cluster` is calibrated against: ms per
// step of the ws runs of `npm run bench:cluster -- --netns RATE`, each with
// the date, the machine and its load (one file in the repository,
// bench/calibration/cluster.json, refreshed by `bench:cluster
// --save-calibration FILE`). A point is keyed by model, batch, topology,
// workers and link; a new measurement replaces the old one of its key.
import { existsSync, readFileSync } from 'node:fs';
import * as z from 'zod';
import { writeOutputFile } from '../coordinator/run/output-paths.js';

export const CalibrationPoint = z.strictObject({
  model: z.enum(['mlp', 'lstm']),
  batch: z.number().int().positive(),
  /** inproc: the coordinator's own thread in the same run (workers 0): the compute the sim scales its own measurements to. */
  topology: z.enum(['inproc', 'star', 'collective']),
  workers: z.number().int().nonnegative(),
  /** tc rate of every link, e.g. 100mbit, 1gbit; or loopback. */
  link: z.string(),
  measuredMsPerStep: z.number().positive(),
  /** Cores the rest of the machine kept busy during the measured round, on average (absent in older points: taken as 0). */
  otherCores: z.number().nonnegative().optional(),
  /** CPU per step (ms, every round of the engine) of the coordinator's process and of each worker process: the model's CPU is checked against it. */
  cpuMsPerStep: z.strictObject({ coordinator: z.number().nonnegative(), workers: z.array(z.number().nonnegative()) }).optional(),
});
export type CalibrationPoint = z.infer<typeof CalibrationPoint>;

const Machine = z.strictObject({
  cpu: z.string(),
  cores: z.number().int().positive(),
  load1: z.strictObject({ start: z.number(), end: z.number() }),
  node: z.string(),
});
export type Machine = z.infer<typeof Machine>;

export const Calibration = z.strictObject({
  about: z.string(),
  points: z.array(CalibrationPoint.extend({ date: z.string(), machine: Machine })),
});
export type Calibration = z.infer<typeof Calibration>;

const ABOUT = 'ms per step of npm run bench:cluster -- --netns RATE (best round), what npm run sim:cluster is calibrated against; refresh with --save-calibration';

const keyOf = (p: CalibrationPoint) => `${p.model}/${p.batch}/${p.topology}/${p.workers}/${p.link}`;

export function loadCalibration(file: string): Calibration {
  if (!existsSync(file)) return { about: ABOUT, points: [] };
  return Calibration.parse(JSON.parse(readFileSync(file, 'utf8')));
}

/** Merges the points (measured now, on `machine`) into the file. */
export function saveCalibration(file: string, points: readonly CalibrationPoint[], machine: Machine): void {
  const old = loadCalibration(file);
  const date = new Date().toISOString();
  const fresh = new Map(old.points.map((p) => [keyOf(p), p]));
  for (const p of points) {
    if (p.link === 'loopback') continue; // the model is of links; loopback shares the cores differently
    fresh.set(keyOf(p), { ...p, measuredMsPerStep: Math.round(p.measuredMsPerStep * 1000) / 1000, date, machine });
  }
  const sorted = [...fresh.values()].sort((a, b) => keyOf(a).localeCompare(keyOf(b)));
  writeOutputFile(file, new TextEncoder().encode(JSON.stringify({ about: ABOUT, points: sorted }, null, 2) + '\n'), 'the calibration file');
}
