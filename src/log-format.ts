/** Turns one ndjson log record into the short line -v prints. */

function bytes(n: unknown): string {
  if (typeof n !== 'number') return '?';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** A field as text: graft's records hold strings and numbers there. */
function text(v: unknown): string {
  if (typeof v === 'string') return v;
  if (v === undefined) return 'undefined';
  return JSON.stringify(v);
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
  // a control API listener's connection comes from a client of its address, not the program
  const who = rec.pid !== undefined ? `${basename(rec.exe)}[${text(rec.pid)}]` : rec.client !== undefined ? `${text(rec.client)} via ${text(rec.proxy)}` : '';
  // "example.com (198.18.0.3:443)" when graft answered the name, else the address alone
  const dst = rec.name !== undefined ? `${text(rec.name)} (${text(rec.dst)})` : text(rec.dst);
  if (rec.event === 'connection') {
    const faults = Array.isArray(rec.faults) && rec.faults.length ? ` [faults: ${rec.faults.join('; ')}]` : '';
    const via = (rec.egress !== undefined ? ` (${text(rec.egress)})` : '') + faults;
    const head = `graft: ${who} -> ${dst} ${text(rec.action)}${via}`;
    if (rec.action === 'inplace') return head;
    const flow = `${bytes(rec.bytesUp)} up, ${bytes(rec.bytesDown)} down, ${text(rec.durationMs)} ms`;
    return rec.error !== undefined ? `${head}: ${flow}, error: ${text(rec.error)}` : `${head}: ${flow}`;
  }
  if (rec.event === 'delayed') {
    return `graft: ${who} -> ${dst} connect delayed [faults: ${(rec.faults as string[]).join('; ')}]`;
  }
  if (rec.event === 'kept-local') {
    return `graft: ${who} -> ${dst} datagram socket connected, kept on this machine: ${text(rec.reason)}`;
  }
  if (rec.event === 'refused') {
    return `graft: ${who} -> ${dst} failed with ${text(rec.errno)}: ${text(rec.reason)}`;
  }
  const msg = typeof rec.msg === 'string' ? rec.msg : JSON.stringify(rec);
  return `graft: ${who ? `${who} ` : ''}${msg}`;
}
