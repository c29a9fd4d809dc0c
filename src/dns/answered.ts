/**
 * The names graft answered real addresses for, by address: what records
 * and `-v` lines show beside an address the program connects to. Bounded:
 * the address answered least recently is forgotten first (a connect to it
 * then shows the address alone, as before graft answered names).
 */
export const ANSWERED_MAX = 65536;

export class AnsweredNames {
  private readonly byAddress = new Map<string, string>();

  constructor(private readonly max = ANSWERED_MAX) {}

  remember(address: string, name: string): void {
    this.byAddress.delete(address);
    this.byAddress.set(address, name);
    if (this.byAddress.size > this.max) this.byAddress.delete(this.byAddress.keys().next().value as string);
  }

  nameOf(address: string): string | undefined {
    const lower = address.toLowerCase();
    return this.byAddress.get(lower.startsWith('::ffff:') ? lower.slice(7) : lower);
  }

  get size(): number {
    return this.byAddress.size;
  }
}
