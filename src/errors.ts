/**
 * Bad input from the user: reported in one line, exit status 2. Messages
 * quote the user's text, which may hold line breaks or other control
 * characters; they are shown escaped (\n, \x1b), so the message stays one
 * line and cannot drive the terminal.
 */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  constructor(message: string) {
    super(oneLine(message));
  }
}

/** Control characters escaped as in a JavaScript string: "a\nb", "\x1b". */
export function oneLine(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\x00-\x1f\x7f\u2028\u2029]/g, (c) => {
    const named: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };
    const code = c.charCodeAt(0);
    return named[c] ?? (code > 0xff ? `\\u${code.toString(16)}` : `\\x${code.toString(16).padStart(2, '0')}`);
  });
}

/** Exit statuses graft uses besides the program's own. */
export const EXIT = {
  usage: 2,
  cannotExecute: 126,
  notFound: 127,
  internal: 70,
} as const;
