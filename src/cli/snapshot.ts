import type { Context } from '../platform/context.js';

/** The slice of the inventory the snapshot import needs. */
export interface SnapshotTarget {
  count(
    ctx: Context,
    lines: Array<{ sku: string; locationId: string; counted: number; reference?: string }>,
    mode: 'per-line',
  ): Promise<
    Array<
      | { index: number; status: 'applied'; result: { variance: number } }
      | { index: number; status: 'failed'; code: string; detail: string }
    >
  >;
}

export interface RejectedRow {
  line: number;
  text: string;
  reason: string;
}

export interface SnapshotReport {
  rows: number;
  /** Counted and matching the book. */
  matched: number;
  /** Counted and different from the book: the record was corrected, the variance kept. */
  corrected: number;
  /** Sum of |counted - book| over corrected rows. */
  unitsOff: number;
  rejected: RejectedRow[];
}

const ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/;
const COLUMNS = {
  sku: ['sku', 'sku_code', 'article'],
  location: ['location_id', 'locationid', 'location', 'store', 'store_id'],
  quantity: ['quantity', 'qty', 'on_hand', 'onhand', 'stock'],
};

/** Splits one CSV line (RFC 4180 quoting, comma or semicolon as the legacy export uses). */
export function splitCsvLine(line: string, separator: string): string[] {
  const fields: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === separator) {
      fields.push(field.trim());
      field = '';
    } else field += c;
  }
  fields.push(field.trim());
  return fields;
}

/** Where each needed column is, from the header row; a one-line reason when one is missing. */
export function readHeader(header: string): {
  separator: string;
  at: Record<keyof typeof COLUMNS, number>;
} {
  const separator = header.includes(';') && !header.includes(',') ? ';' : ',';
  const names = splitCsvLine(header.replace(/^\uFEFF/, ''), separator).map((n) => n.toLowerCase());
  const at = {} as Record<keyof typeof COLUMNS, number>;
  for (const [key, aliases] of Object.entries(COLUMNS) as Array<[keyof typeof COLUMNS, string[]]>) {
    const index = names.findIndex((n) => aliases.includes(n));
    if (index < 0) {
      throw new Error(
        `the header has no ${key} column (expected one of: ${aliases.join(', ')}; found: ${names.join(', ')})`,
      );
    }
    at[key] = index;
  }
  return { separator, at };
}

/**
 * Imports a full stock snapshot from a legacy system. Each row is a cycle count, not an
 * overwrite: the record takes the counted quantity, and the difference from the book goes
 * into the ledger as variance (so a bad feed shows up in the accuracy KPI instead of silently
 * rewriting history). Rows that cannot be read, repeat an item or name an unknown SKU or
 * location are rejected with their line number and reason; all others are applied.
 */
export async function importSnapshot(
  target: SnapshotTarget,
  ctx: Context,
  text: string,
  options: {
    reference: string;
    chunkSize?: number;
    progress?: (done: number, total: number) => void;
  },
): Promise<SnapshotReport> {
  const lines = text.split(/\r?\n/);
  const { separator, at } = readHeader(lines[0] ?? '');
  const report: SnapshotReport = { rows: 0, matched: 0, corrected: 0, unitsOff: 0, rejected: [] };
  const seen = new Map<string, number>();
  const valid: Array<{
    line: number;
    text: string;
    sku: string;
    locationId: string;
    counted: number;
  }> = [];
  for (let i = 1; i < lines.length; i++) {
    const raw = lines[i]!;
    if (raw.trim() === '') continue;
    report.rows++;
    const fields = splitCsvLine(raw, separator);
    const sku = fields[at.sku] ?? '';
    const locationId = fields[at.location] ?? '';
    const quantity = fields[at.quantity] ?? '';
    const reject = (reason: string) => report.rejected.push({ line: i + 1, text: raw, reason });
    if (!ID.test(sku)) reject(`sku '${sku}' is not a SKU code`);
    else if (!ID.test(locationId)) reject(`location '${locationId}' is not a location id`);
    else if (!/^\d{1,10}$/.test(quantity)) {
      reject(`quantity '${quantity}' is not a whole number of units (0 or more)`);
    } else {
      const key = `${sku}\u0000${locationId}`;
      const first = seen.get(key);
      if (first !== undefined) reject(`${sku} at ${locationId} is on line ${first} already`);
      else {
        seen.set(key, i + 1);
        valid.push({ line: i + 1, text: raw, sku, locationId, counted: Number(quantity) });
      }
    }
  }
  const chunk = options.chunkSize ?? 2000;
  options.progress?.(0, valid.length);
  for (let i = 0; i < valid.length; i += chunk) {
    const part = valid.slice(i, i + chunk);
    const results = await target.count(
      ctx,
      part.map((r) => ({
        sku: r.sku,
        locationId: r.locationId,
        counted: r.counted,
        reference: options.reference,
      })),
      'per-line',
    );
    results.forEach((result, j) => {
      const row = part[j]!;
      if (result.status === 'failed') {
        report.rejected.push({ line: row.line, text: row.text, reason: result.detail });
      } else if (result.result.variance === 0) report.matched++;
      else {
        report.corrected++;
        report.unitsOff += Math.abs(result.result.variance);
      }
    });
    options.progress?.(Math.min(valid.length, i + chunk), valid.length);
  }
  report.rejected.sort((a, b) => a.line - b.line);
  return report;
}
