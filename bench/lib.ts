import { performance } from 'node:perf_hooks';

/** Latency samples in milliseconds -> the percentiles we report. */
export function summarize(samples: number[]): {
  n: number;
  p50: number;
  p99: number;
  max: number;
  mean: number;
} {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) =>
    sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
  const mean = sorted.reduce((a, b) => a + b, 0) / Math.max(1, sorted.length);
  return {
    n: sorted.length,
    p50: at(0.5),
    p99: at(0.99),
    max: sorted[sorted.length - 1] ?? NaN,
    mean,
  };
}

export const ms = (value: number): string => (value < 10 ? value.toFixed(2) : value.toFixed(1));
export const rate = (value: number): string => Math.round(value).toLocaleString('en-US');
export const now = (): number => performance.now();

export function table(headers: string[], rows: Array<Array<string | number>>): string {
  const line = (cells: Array<string | number>) => `| ${cells.join(' | ')} |`;
  return [line(headers), line(headers.map(() => '---')), ...rows.map(line)].join('\n');
}

export const sleep = (millis: number) =>
  new Promise<void>((resolve) => setTimeout(resolve, millis));
