/** Formats the benchmark's figures as a table of figure, target and verdict. */

/** One line of the report. */
export interface Row {
  what: string;
  figure: string;
  target: string;
  /** True met, false missed, undefined for figures without a target. */
  pass?: boolean;
}

/** Renders rows as an aligned text table. */
export function table(rows: Row[]): string {
  const cells = rows.map((r) => [
    r.what,
    r.figure,
    r.target,
    r.pass === undefined ? '' : r.pass ? 'PASS' : 'MISS',
  ]);
  const head = ['measure', 'figure', 'target', 'verdict'];
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) =>
    c
      .map((v, i) => v.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n');
}

/** Bytes as MB (2^20 bytes) with one decimal. */
export function mb(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MB`;
}

/** Milliseconds with two decimals. */
export function ms(value: number): string {
  return `${value.toFixed(2)} ms`;
}
