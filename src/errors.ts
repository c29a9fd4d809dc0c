/** Bad input from the user: reported in one line, exit status 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Exit statuses graft uses besides the program's own. */
export const EXIT = {
  usage: 2,
  cannotExecute: 126,
  notFound: 127,
  internal: 70,
} as const;
