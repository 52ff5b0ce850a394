// The dashboard's two curves, drawn with uPlot (bundled: ~50 KB, canvas,
// no dependencies, made for live series): the loss (training loss per step,
// faint, with its exponential moving average over it; test loss per epoch as
// dots on the same step axis) and the test accuracy per epoch. Both are redrawn from the whole series on each update
// (a few thousand points at most: run-status.ts thins the series).
import uPlot from 'uplot';
import type { EvalPoint, LossPoint } from '../live/status-types.js';

const GRID = '#edf0f5';
const MUTED = '#687386';
const TRAIN = '#2f6fdf';
const TEST = '#e0792b';
const ACC = '#1f9d55';

/** Decimals that tell ticks `step` apart: 0.5 -> 1, 0.25 -> 2, 5 -> 0. */
function decimalsFor(vals: number[]): number {
  const step = vals.length > 1 ? Math.abs(vals[1] - vals[0]) : 1;
  return step > 0 ? Math.min(4, Math.max(0, Math.ceil(-Math.log10(step) - 1e-9))) : 0;
}

function axes(yLabel: (v: number, decimals: number) => string): uPlot.Axis[] {
  const common = { stroke: MUTED, grid: { stroke: GRID, width: 1 }, ticks: { stroke: GRID, width: 1 }, font: '12px system-ui, sans-serif' };
  return [
    { ...common, label: 'step', labelFont: '12px system-ui, sans-serif', labelSize: 22, values: (_u, vals) => vals.map((v) => (Number.isInteger(v) ? v.toLocaleString('en') : '')) },
    { ...common, size: 56, values: (_u, vals) => vals.map((v) => yLabel(v, decimalsFor(vals))) },
  ];
}

function sizeOf(el: HTMLElement): { width: number; height: number } {
  return { width: Math.max(200, el.clientWidth), height: Math.max(160, el.clientHeight) };
}

/**
 * The exponential moving average of the loss series, debiased (as
 * TensorBoard's smoothing): heavier the more points there are, so a short run
 * stays close to its raw losses and a long one reads at a glance.
 */
export function smoothed(points: readonly LossPoint[]): LossPoint[] {
  const alpha = Math.min(0.95, Math.max(0, 1 - 10 / Math.max(1, points.length)));
  let ema = 0;
  return points.map(([step, loss], i) => {
    ema = alpha * ema + (1 - alpha) * loss;
    return [step, ema / (1 - alpha ** (i + 1))];
  });
}

export interface Charts {
  update(losses: readonly LossPoint[], evals: readonly EvalPoint[]): void;
}

export function createCharts(lossEl: HTMLElement, accEl: HTMLElement): Charts {
  const lossChart = new uPlot({
    ...sizeOf(lossEl),
    legend: { show: false },
    cursor: { drag: { x: false, y: false }, points: { size: 7 } },
    scales: { x: { time: false }, y: { range: (_u, min, max) => [Math.max(0, min - (max - min) * 0.05), max + (max - min) * 0.08 || 1] } },
    axes: axes((v, decimals) => v.toFixed(decimals)),
    series: [
      {},
      { label: 'training loss', stroke: 'rgba(47,111,223,0.25)', width: 1, points: { show: false }, spanGaps: true },
      { label: 'training loss (smoothed)', stroke: TRAIN, width: 2, points: { show: false }, spanGaps: true },
      { label: 'test loss', stroke: TEST, width: 1.5, dash: [4, 4], spanGaps: true, points: { show: true, size: 8, width: 2, fill: '#ffffff', stroke: TEST } },
    ],
  }, [[], [], [], []], lossEl);

  const accChart = new uPlot({
    ...sizeOf(accEl),
    legend: { show: false },
    cursor: { drag: { x: false, y: false }, points: { size: 7 } },
    scales: { x: { time: false }, y: { range: (_u, min, max) => [Math.max(0, Math.floor((min - 2) / 5) * 5), Math.min(100, Math.ceil((max + 1) / 5) * 5)] } },
    axes: axes((v, decimals) => `${v.toFixed(decimals)}%`),
    series: [
      {},
      { label: 'test accuracy', stroke: ACC, width: 2, fill: 'rgba(31,157,85,0.08)', spanGaps: true, points: { show: true, size: 8, width: 2, fill: '#ffffff', stroke: ACC } },
    ],
  }, [[], []], accEl);

  const resize = () => {
    lossChart.setSize(sizeOf(lossEl));
    accChart.setSize(sizeOf(accEl));
  };
  new ResizeObserver(resize).observe(lossEl);

  return {
    update(losses, evals) {
      // One x axis for both loss series: every step with a training point or an evaluation.
      const steps = [...new Set([...losses.map((p) => p[0]), ...evals.map((e) => e.step)])].sort((a, b) => a - b);
      const train = new Map(losses.map((p) => [p[0], p[1]]));
      const smooth = new Map(smoothed(losses).map((p) => [p[0], p[1]]));
      const test = new Map(evals.map((e) => [e.step, e.testLoss]));
      lossChart.setData([steps, steps.map((s) => train.get(s) ?? null), steps.map((s) => smooth.get(s) ?? null), steps.map((s) => test.get(s) ?? null)]);
      const withAcc = evals.filter((e) => e.accuracy !== null);
      accChart.setData([withAcc.map((e) => e.step), withAcc.map((e) => 100 * e.accuracy!)]);
      // What is drawn, for tests and for anyone inspecting the page.
      lossEl.dataset.points = String(losses.length);
      lossEl.dataset.testPoints = String(test.size);
      accEl.dataset.points = String(withAcc.length);
    },
  };
}
