/**
 * The connect-cost comparison again, with a static Go binary as the client
 * (bench/fixtures/go/goconnloop: net.Dial, read the reply to EOF, close; COUNT
 * times; CGO_ENABLED=0, so no libc) against the same server as the connects
 * case (bench/fixtures/acceptd.c on hostB's DEST:7000, over uplink B):
 *   native   goconnloop DEST 7000 COUNT 203.0.113.1   (bound to uplink B's address)
 *   inplace  graft --mode inplace --mark 0x10 -- goconnloop DEST 7000 COUNT
 *   proxy    graft --mode proxy --mark 0x10 -- goconnloop DEST 7000 COUNT
 * goconnloop prints connloop.c's line, so the metrics are the connects
 * case's (see cases/connects.ts), from the program's own clock. Go's dial is
 * a non-blocking connect() followed by a wait in Go's poller, so
 * connect_latency here is that whole dial, not one blocking connect() call.
 */
import { buildBenchGo } from '../lab.js';
import { sequentialConnects } from './connects.js';

export const goconnects = sequentialConnects({
  caseName: 'goconnects',
  summary: 'sequential TCP connects from a static Go binary client -> hostB over uplink B (goconnloop against acceptd.c)',
  label: 'goconnloop',
  build: () => buildBenchGo('goconnloop'),
  latencyWord: 'dial',
  settings: { client: 'bench/fixtures/go/goconnloop (Go, CGO_ENABLED=0, statically linked)' },
});
