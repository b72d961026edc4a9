/**
 * A tag as a person types it: `key=value`. Pure functions, no DOM.
 */

/** The key and value of `key=value` (spaces around each trimmed), or null if no key. */
export function parseTag(text: string): [string, string] | null {
  const trimmed = text.trim();
  const at = trimmed.indexOf('=');
  if (at <= 0) {
    return null;
  }
  return [trimmed.slice(0, at).trim(), trimmed.slice(at + 1).trim()];
}

/** A tag as shown: `key=value`. */
export function tagText(key: string, value: string): string {
  return `${key}=${value}`;
}
