/** Turns one ndjson log record into the short line -v prints. */

function bytes(n: unknown): string {
  if (typeof n !== 'number') return '?';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

function basename(path: unknown): string {
  return typeof path === 'string' ? path.slice(path.lastIndexOf('/') + 1) : '?';
}

export function humanLine(json: string): string | undefined {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  const who = rec.pid !== undefined ? `${basename(rec.exe)}[${String(rec.pid)}]` : '';
  if (rec.event === 'connection') {
    const faults = Array.isArray(rec.faults) && rec.faults.length ? ` [faults: ${rec.faults.join('; ')}]` : '';
    const via = (rec.egress !== undefined ? ` (${String(rec.egress)})` : '') + faults;
    const head = `graft: ${who} -> ${String(rec.dst)} ${String(rec.action)}${via}`;
    if (rec.action === 'inplace') return head;
    const flow = `${bytes(rec.bytesUp)} up, ${bytes(rec.bytesDown)} down, ${String(rec.durationMs)} ms`;
    return rec.error !== undefined ? `${head}: ${flow}, error: ${String(rec.error)}` : `${head}: ${flow}`;
  }
  if (rec.event === 'delayed') {
    return `graft: ${who} -> ${String(rec.dst)} connect delayed [faults: ${(rec.faults as string[]).join('; ')}]`;
  }
  if (rec.event === 'refused') {
    return `graft: ${who} -> ${String(rec.dst)} failed with ${String(rec.errno)}: ${String(rec.reason)}`;
  }
  const msg = typeof rec.msg === 'string' ? rec.msg : JSON.stringify(rec);
  return `graft: ${who ? `${who} ` : ''}${msg}`;
}
