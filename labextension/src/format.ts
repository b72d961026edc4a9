/**
 * Values as short text for people: numbers, times, durations, sizes and counts. Pure
 * functions, no DOM.
 */

/** A value shown as short text: JSON for objects, as-is for text and numbers. */
export function show(value: unknown): string {
  if (value === null || value === undefined) {
    return '—';
  }
  if (typeof value === 'string') {
    return value;
  }
  if (typeof value === 'number') {
    return Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(6)));
  }
  return JSON.stringify(value);
}

/** A time in seconds since the epoch as local date and time. */
export function when(seconds: number | null | undefined): string {
  if (!seconds) {
    return '—';
  }
  const date = new Date(seconds * 1000);
  return date.toLocaleString(undefined, {
    year: 'numeric',
    month: 'short',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit'
  });
}

/** A duration in seconds, short. */
export function duration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined) {
    return '—';
  }
  if (seconds < 1) {
    return `${Math.round(seconds * 1000)} ms`;
  }
  if (seconds < 120) {
    return `${seconds.toFixed(1)} s`;
  }
  return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
}

/** A size in bytes as short text: 512 B, 3.4 KB, 12 MB. */
export function bytes(size: number): string {
  if (!Number.isFinite(size)) {
    return '—';
  }
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = size;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0
    ? `${value} B`
    : `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

/** "N thing" or "N things". */
export function plural(count: number, thing: string): string {
  return `${count} ${thing}${count === 1 ? '' : 's'}`;
}

/** How many runs a page shows of how many match: "50 of 1,234" ("+" when counting stopped). */
export function pageCount(shown: number, total: number, capped: boolean): string {
  return `${shown.toLocaleString()} of ${total.toLocaleString()}${capped ? '+' : ''}`;
}
