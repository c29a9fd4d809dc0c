/**
 * What a benchmark case is, and the runner they share: every repeat runs
 * each variant once, in the same order (native, inplace, proxy, native,
 * inplace, proxy, ...), so drift in the machine hits all variants alike.
 * Nothing here asserts on the figures: a case fails when a run fails, or
 * when it returns failed checks (only soak and dns have checks).
 */
import type { BenchLab } from './lab.js';
import { summarize } from './stats.js';

export interface Row {
  readonly case: string;
  readonly variant: string;
  readonly metric: string;
  readonly unit: string;
  /** the variant ratio and delta compare with */
  readonly baseline: string;
  /** one value per repeat, in run order */
  readonly runs: number[];
  readonly median: number;
  readonly min: number;
  readonly max: number;
  /** median / the baseline variant's median, measured in the same run */
  readonly ratio: number;
  /** median - the baseline variant's median (e.g. added latency) */
  readonly delta: number;
}

export interface Metric {
  readonly id: string;
  readonly unit: string;
}

export interface Variant {
  readonly name: string;
  /** what runs, for the report */
  readonly command: string;
  /** one measurement: a value for every metric of the case */
  measure(): Promise<Record<string, number>>;
}

export interface BenchContext {
  readonly lab: BenchLab;
  readonly quick: boolean;
  /** --seconds N: how long a timed case (soak) runs, when given */
  readonly seconds?: number;
  progress(line: string): void;
}

export interface CaseResult {
  readonly rows: Row[];
  readonly variants: { name: string; command: string }[];
  readonly settings: Record<string, unknown>;
  /** the case's own report, printed after the table */
  readonly report?: string;
  /** checks that failed (soak and dns assert; the other cases only measure): the case fails, its figures are kept */
  readonly failed?: readonly string[];
}

export interface BenchCase {
  readonly name: string;
  readonly summary: string;
  run(ctx: BenchContext): Promise<CaseResult>;
}

export interface InterleaveSpec {
  readonly caseName: string;
  readonly metrics: readonly Metric[];
  /** the first variant is the baseline */
  readonly variants: readonly Variant[];
  readonly repeats: number;
  /** run once each, unrecorded, before the repeats (e.g. shorter runs of the variants) */
  readonly warmup?: readonly Variant[];
  /** a short form of a measurement for the progress line */
  readonly show: (values: Record<string, number>) => string;
}

export async function interleave(spec: InterleaveSpec, ctx: BenchContext): Promise<Row[]> {
  const baseline = spec.variants[0];
  if (!baseline) throw new Error(`${spec.caseName}: no variants`);
  const runs = new Map<string, Map<string, number[]>>(spec.variants.map((v) => [v.name, new Map(spec.metrics.map((m) => [m.id, [] as number[]]))]));
  for (const v of spec.warmup ?? []) {
    ctx.progress(`${spec.caseName} warm-up ${v.name}: ${spec.show(await v.measure())}`);
  }
  for (let r = 0; r < spec.repeats; r++) {
    for (const v of spec.variants) {
      const values = await v.measure();
      ctx.progress(`${spec.caseName} ${r + 1}/${spec.repeats} ${v.name}: ${spec.show(values)}`);
      for (const m of spec.metrics) {
        const value = values[m.id];
        if (value === undefined || !Number.isFinite(value)) throw new Error(`${spec.caseName} ${v.name}: no value for ${m.id}`);
        runs.get(v.name)!.get(m.id)!.push(value);
      }
    }
  }
  const rows: Row[] = [];
  for (const m of spec.metrics) {
    const base = summarize(runs.get(baseline.name)!.get(m.id)!);
    for (const v of spec.variants) {
      const values = runs.get(v.name)!.get(m.id)!;
      const s = summarize(values);
      rows.push({
        case: spec.caseName,
        variant: v.name,
        metric: m.id,
        unit: m.unit,
        baseline: baseline.name,
        runs: values,
        median: s.median,
        min: s.min,
        max: s.max,
        ratio: s.median / base.median,
        delta: s.median - base.median,
      });
    }
  }
  return rows;
}

/**
 * Rows for figures measured once each (samples taken along one run, as the
 * soak's): one row per [variant, value], the first the baseline.
 */
export function singleRows(caseName: string, metric: string, unit: string, series: readonly (readonly [string, number])[]): Row[] {
  const [baseName, base] = series[0] ?? ['', NaN];
  return series.map(([variant, value]) => ({
    case: caseName,
    variant,
    metric,
    unit,
    baseline: baseName,
    runs: [value],
    median: value,
    min: value,
    max: value,
    ratio: value / base,
    delta: value - base,
  }));
}
