/**
 * The names graft answered real addresses for, by address: what records
 * and `-v` lines show beside an address the program connects to. Bounded:
 * the address answered least recently is forgotten first (a connect to it
 * then shows the address alone, as before graft answered names).
 */
import { BoundedMap } from './bounded.js';

export const ANSWERED_MAX = 65536;

export class AnsweredNames {
  private readonly byAddress: BoundedMap<string, string>;

  constructor(max = ANSWERED_MAX) {
    this.byAddress = new BoundedMap(max);
  }

  remember(address: string, name: string): void {
    this.byAddress.set(address.toLowerCase(), name);
  }

  nameOf(address: string): string | undefined {
    const lower = address.toLowerCase();
    return this.byAddress.get(lower.startsWith('::ffff:') ? lower.slice(7) : lower);
  }

  get size(): number {
    return this.byAddress.size;
  }
}
