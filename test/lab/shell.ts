/** One sh command line that runs each argv in turn: for "this program, then that one" under one graft. */
export function inSequence(...commands: readonly (readonly string[])[]): string[] {
  const quote = (a: string): string => `'${a.replaceAll("'", "'\\''")}'`;
  return ['sh', '-c', commands.map((argv) => argv.map(quote).join(' ')).join('; ')];
}
