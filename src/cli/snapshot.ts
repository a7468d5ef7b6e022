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
  /** The record at a location, a page at a time (a full snapshot needs what it left out). */
  levelsAt(
    ctx: Context,
    locationId: string,
    limit: number,
    cursor?: string,
  ): Promise<{ items: Array<{ sku: string; onHand: number }>; nextCursor: string | null }>;
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
  /** Sum of |counted - book| over corrected rows (and zeroed items). */
  unitsOff: number;
  /**
   * With `full`: items on the record at a location the snapshot covers that the snapshot does
   * not list, counted as none there (only those with stock on the book; the rest match).
   */
  zeroed: number;
  rejected: RejectedRow[];
}

const ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/;
const COLUMNS = {
  sku: ['sku', 'sku_code', 'article'],
  location: ['location_id', 'locationid', 'location', 'store', 'store_id'],
  quantity: ['quantity', 'qty', 'on_hand', 'onhand', 'stock'],
};

/**
 * The records of a CSV text, RFC 4180: a quoted field may hold the separator, doubled quotes
 * and line breaks, so a record can span lines. Blank lines are no records. Each record keeps
 * the line it starts on and its raw text, for the report of rejected rows.
 */
export function csvRecords(
  text: string,
  separator: string,
): Array<{ line: number; text: string; fields: string[] }> {
  const records: Array<{ line: number; text: string; fields: string[] }> = [];
  let line = 1;
  let start = 0;
  let startLine = 1;
  let fields: string[] = [];
  let field = '';
  let quoted = false;
  const end = (at: number) => {
    fields.push(field.trim());
    const raw = text.slice(start, at);
    if (raw.trim() !== '') records.push({ line: startLine, text: raw, fields });
    fields = [];
    field = '';
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else {
        if (c === '\n') line++;
        field += c;
      }
    } else if (c === '"') quoted = true;
    else if (c === separator) {
      fields.push(field.trim());
      field = '';
    } else if (c === '\n' || c === '\r') {
      end(i);
      if (c === '\r' && text[i + 1] === '\n') i++;
      line++;
      start = i + 1;
      startLine = line;
    } else field += c;
  }
  if (start < text.length) end(text.length);
  return records;
}

/** Where each needed column is, from the header row; a one-line reason when one is missing. */
export function readHeader(header: string): {
  separator: string;
  at: Record<keyof typeof COLUMNS, number>;
} {
  const separator = header.includes(';') && !header.includes(',') ? ';' : ',';
  const names = (csvRecords(header.replace(/^\uFEFF/, ''), separator)[0]?.fields ?? []).map((n) =>
    n.toLowerCase(),
  );
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
    /**
     * The snapshot lists everything its locations hold: an item on the record there that it
     * does not list is counted as none.
     */
    full?: boolean;
    chunkSize?: number;
    progress?: (done: number, total: number) => void;
  },
): Promise<SnapshotReport> {
  const { separator, at } = readHeader(text.split(/\r?\n/, 1)[0] ?? '');
  const report: SnapshotReport = {
    rows: 0,
    matched: 0,
    corrected: 0,
    unitsOff: 0,
    zeroed: 0,
    rejected: [],
  };
  const seen = new Map<string, number>();
  /** A count to apply: a row of the file, or (absent) an item a full snapshot leaves out. */
  interface Count {
    line: number;
    text: string;
    sku: string;
    locationId: string;
    counted: number;
    absent: boolean;
  }
  const valid: Count[] = [];
  // The first record is the header (readHeader read it).
  for (const record of csvRecords(text, separator).slice(1)) {
    const { line, text: raw, fields } = record;
    report.rows++;
    const sku = fields[at.sku] ?? '';
    const locationId = fields[at.location] ?? '';
    const quantity = fields[at.quantity] ?? '';
    const reject = (reason: string) => report.rejected.push({ line, text: raw, reason });
    if (!ID.test(sku)) reject(`sku '${sku}' is not a SKU code`);
    else if (!ID.test(locationId)) reject(`location '${locationId}' is not a location id`);
    else if (!/^\d{1,10}$/.test(quantity)) {
      reject(`quantity '${quantity}' is not a whole number of units (0 or more)`);
    } else {
      const key = `${sku}\u0000${locationId}`;
      const first = seen.get(key);
      if (first !== undefined) reject(`${sku} at ${locationId} is on line ${first} already`);
      else {
        seen.set(key, line);
        valid.push({ line, text: raw, sku, locationId, counted: Number(quantity), absent: false });
      }
    }
  }
  const chunk = options.chunkSize ?? 2000;
  // A full snapshot: what the record holds at its locations and it leaves out is counted as
  // none. Only locations with a row that applies count as covered (not an unknown one).
  const absent: Count[] = [];
  if (options.full) {
    const covered = new Set(valid.map((r) => r.locationId));
    for (const locationId of covered) {
      let cursor: string | undefined;
      do {
        let page;
        try {
          page = await target.levelsAt(ctx, locationId, 1000, cursor);
        } catch {
          break; // an unknown location: its rows are rejected below, it covers nothing
        }
        for (const level of page.items) {
          if (!seen.has(`${level.sku}\u0000${locationId}`) && level.onHand !== 0) {
            absent.push({
              line: 0,
              text: `${level.sku} at ${locationId} (not in the snapshot)`,
              sku: level.sku,
              locationId,
              counted: 0,
              absent: true,
            });
          }
        }
        cursor = page.nextCursor ?? undefined;
      } while (cursor !== undefined);
    }
  }
  const counts = [...valid, ...absent];
  options.progress?.(0, counts.length);
  for (let i = 0; i < counts.length; i += chunk) {
    const part = counts.slice(i, i + chunk);
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
        return;
      }
      const off = Math.abs(result.result.variance);
      if (row.absent) {
        if (off > 0) report.zeroed++;
      } else if (off === 0) report.matched++;
      else report.corrected++;
      report.unitsOff += off;
    });
    options.progress?.(Math.min(counts.length, i + chunk), counts.length);
  }
  report.rejected.sort((a, b) => a.line - b.line);
  return report;
}
