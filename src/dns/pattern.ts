/**
 * Host name patterns in rules: `example.com` is that name alone;
 * `*.example.com` is every name below it, at any depth, but not
 * `example.com` itself. Names compare as DNS does: case-insensitively,
 * with or without the root's trailing dot.
 */

export interface NamePattern {
  /** the name, lower case, no trailing dot (for a wildcard: the part after `*.`) */
  readonly name: string;
  readonly wildcard: boolean;
}

/** One label: letters, digits, hyphens and underscores (SRV-style names), not starting or ending with a hyphen, at most 63 bytes. */
const LABEL = /^(?!-)[a-z0-9_-]{1,63}(?<!-)$/;

/** `name` lower-cased without its trailing dot, or undefined when it is not a host name. */
export function canonicalName(name: string): string | undefined {
  const lower = name.toLowerCase().replace(/\.$/, '');
  if (lower.length === 0 || lower.length > 253) return undefined;
  const labels = lower.split('.');
  if (!labels.every((l) => LABEL.test(l))) return undefined;
  // a last label of digits alone is an address typed wrong, not a name (RFC 3696 section 2)
  if (/^\d+$/.test(labels[labels.length - 1]!)) return undefined;
  return lower;
}

/** `example.com` or `*.example.com`, or undefined when `word` is neither. */
export function parseNamePattern(word: string): NamePattern | undefined {
  const wildcard = word.startsWith('*.');
  const name = canonicalName(wildcard ? word.slice(2) : word);
  return name === undefined ? undefined : { name, wildcard };
}

/** True when the canonical name `name` is covered by `p`. */
export function nameMatches(p: NamePattern, name: string): boolean {
  return p.wildcard ? name.endsWith(`.${p.name}`) : name === p.name;
}

export function describePattern(p: NamePattern): string {
  return p.wildcard ? `*.${p.name}` : p.name;
}
