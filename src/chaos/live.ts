/**
 * The toxics of one direction of a relayed connection as a chain of stages
 * that can be changed while bytes flow, as Toxiproxy changes the toxics of
 * open connections. The same chain serves the toxics given at start.
 *
 * Invariant that keeps bytes in order: a stage nearer the destination only
 * ever holds bytes older than those held by a stage nearer the source. Every
 * change keeps it (see `set`), and everything happens synchronously, so no
 * byte can slip in between.
 */
import { toxicStage, type Sink, type Stage, type StageContext, type ToxicSpec } from './toxics.js';

export interface LiveToxic {
  /** identifies the toxic within its direction across changes, e.g. 'cli:0' or 'api:web/lat' */
  readonly key: string;
  readonly spec: ToxicSpec;
}

interface Link {
  readonly key: string;
  readonly spec: ToxicSpec;
  readonly stage: Stage;
}

/** Specs are flat records of numbers and strings. */
function sameSpec(a: ToxicSpec, b: ToxicSpec): boolean {
  const keys = Object.keys(a) as (keyof ToxicSpec)[];
  return keys.length === Object.keys(b).length && keys.every((k) => a[k] === b[k]);
}

export class ToxicChain {
  private links: Link[] = [];
  constructor(
    /** what the last stage writes to: the destination socket */
    private readonly sink: Sink,
    private readonly ctx: StageContext,
  ) {}

  /** Where the source's bytes go: the first stage, or straight to the destination when there is none. */
  get head(): Sink {
    return this.links[0]?.stage ?? this.sink;
  }

  get empty(): boolean {
    return this.links.length === 0;
  }

  /** pieces held in the stages */
  get pieces(): number {
    let n = 0;
    for (const l of this.links) n += l.stage.pieces;
    return n;
  }

  /** bytes held in the stages */
  get held(): number {
    let n = 0;
    for (const l of this.links) n += l.stage.held;
    return n;
  }

  /**
   * Reconciles the chain to `toxics`, in order (index 0 nearest the source).
   * A toxic with the same key and spec keeps its stage and state; one whose
   * spec changed hands what it holds to its new stage; one removed passes
   * what it holds on to what now follows it, at once. Leaving stages are
   * emptied from the destination end back, each into a stage that is
   * already in place, so older bytes always land ahead of newer ones.
   */
  set(toxics: readonly LiveToxic[]): void {
    const old = this.links;
    const byKey = new Map(old.map((l, i) => [l.key, { link: l, index: i }]));
    // keep a stage only where it keeps its order relative to the other kept ones
    let lastKept = -1;
    const next: Link[] = [];
    /** old index -> the new link that takes its bytes, for the stages that stay or are replaced */
    const successor = new Map<number, Link>();
    for (const t of toxics) {
      const found = byKey.get(t.key);
      byKey.delete(t.key); // a key listed twice gets a new stage the second time
      if (found && found.index > lastKept && sameSpec(found.link.spec, t.spec)) {
        lastKept = found.index;
        next.push(found.link);
        successor.set(found.index, found.link);
        continue;
      }
      const link = { key: t.key, spec: t.spec, stage: toxicStage(t.spec, this.ctx) };
      next.push(link);
      if (found) successor.set(found.index, link);
    }
    const positions = [...successor.entries()].sort(([a], [b]) => a - b).map(([, l]) => next.indexOf(l));
    if (positions.some((p, i) => i > 0 && p < positions[i - 1]!)) {
      // replacements in another order (the control API never asks for that):
      // nothing can take the old bytes in order but the destination, and
      // every toxic starts afresh
      successor.clear();
      next.forEach((l, i) => {
        if (old.includes(l)) next[i] = { ...l, stage: toxicStage(l.spec, this.ctx) };
      });
    }
    this.links = next;
    next.forEach((l, i) => (l.stage.next = next[i + 1]?.stage ?? this.sink));
    let after: Sink = this.sink;
    for (let i = old.length - 1; i >= 0; i--) {
      const link = old[i]!;
      const taker = successor.get(i);
      if (taker === link) {
        after = link.stage;
        continue;
      }
      const into = taker?.stage ?? after;
      const { chunks, ended } = link.stage.leave();
      for (const c of chunks) into.write(c);
      if (ended) into.end();
      if (!taker) link.stage.removed();
      after = into;
    }
    this.ctx.released();
  }

  /** The connection is gone: stops every timer, drops what is held. */
  dispose(): void {
    for (const l of this.links) l.stage.leave();
    this.links = [];
  }
}
