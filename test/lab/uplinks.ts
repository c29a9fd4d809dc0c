/**
 * A client with two uplinks, for egress tests:
 *
 *   client upA (192.0.2.1, .11; 2001:db8:a::1, ::11) --- hostA (192.0.2.2; 2001:db8:a::2)
 *   client upB (203.0.113.1; 2001:db8:b::1)          --- hostB (203.0.113.2; 2001:db8:b::2)
 *
 * Both hosts answer on DEST4 (198.51.100.7) and DEST6 (2001:db8:7::7), each
 * with its own name (A or B; see fixtures/server.ts). In the client:
 *   main table    DEST via hostA (metric 10) and via hostB (metric 100)
 *   table 100     DEST via hostB only
 *   ip rule       fwmark 0x10 -> table 100; from the upB addresses -> table 100
 * So the client reaches A by default, and B with mark 0x10, when bound to
 * upB, or when leaving from upB's address.
 */
import type { Namespace } from './netns.js';
import { ClientLab, startServices, warmUp } from './world.js';

export const DEST4 = '198.51.100.7';
export const DEST6 = '2001:db8:7::7';
export const MARK_B = 0x10;
export const UP_A = 'upA';
export const UP_B = 'upB';
/** client addresses on each uplink */
export const SRC_A4 = '192.0.2.1';
export const SRC_A4_ALT = '192.0.2.11';
export const SRC_A6_ALT = '2001:db8:a::11';
export const SRC_B4 = '203.0.113.1';
export const SRC_B6 = '2001:db8:b::1';

export class Uplinks extends ClientLab {
  readonly hostA: Namespace;
  readonly hostB: Namespace;

  constructor() {
    super();
    this.hostA = this.lab.host('hostA');
    this.hostB = this.lab.host('hostB');
    this.build(() => {
      const c = this.client;
      this.lab.link(c, [`${SRC_A4}/24`, `${SRC_A4_ALT}/24`, '2001:db8:a::1/64', `${SRC_A6_ALT}/64`], this.hostA, ['192.0.2.2/24', '2001:db8:a::2/64'], {
        a: UP_A,
        b: 'eth0',
      });
      this.lab.link(c, [`${SRC_B4}/24`, `${SRC_B6}/64`], this.hostB, ['203.0.113.2/24', '2001:db8:b::2/64'], { a: UP_B, b: 'eth0' });
      for (const h of [this.hostA, this.hostB]) this.lab.addLocal(h, `${DEST4}/32`, `${DEST6}/128`);
      c.ip('-4', 'route', 'add', '198.51.100.0/24', 'via', '192.0.2.2', 'dev', UP_A, 'metric', '10');
      c.ip('-4', 'route', 'add', '198.51.100.0/24', 'via', '203.0.113.2', 'dev', UP_B, 'metric', '100');
      c.ip('-6', 'route', 'add', '2001:db8:7::/64', 'via', '2001:db8:a::2', 'dev', UP_A, 'metric', '10');
      c.ip('-6', 'route', 'add', '2001:db8:7::/64', 'via', '2001:db8:b::2', 'dev', UP_B, 'metric', '100');
      c.ip('-4', 'route', 'add', '198.51.100.0/24', 'via', '203.0.113.2', 'dev', UP_B, 'table', '100');
      c.ip('-6', 'route', 'add', '2001:db8:7::/64', 'via', '2001:db8:b::2', 'dev', UP_B, 'table', '100');
      for (const fam of ['-4', '-6']) c.ip(fam, 'rule', 'add', 'fwmark', `0x${MARK_B.toString(16)}`, 'lookup', '100');
      c.ip('-4', 'rule', 'add', 'from', SRC_B4, 'lookup', '100');
      c.ip('-6', 'rule', 'add', 'from', SRC_B6, 'lookup', '100');
    });
  }

  async start(): Promise<this> {
    await startServices(this.lab, this.hostA, [`A=${DEST4}`, `A=${DEST6}`], this.events);
    await startServices(this.lab, this.hostB, [`B=${DEST4}`, `B=${DEST6}`], this.events);
    warmUp(this.client, [DEST4, DEST6]);
    // and through the second uplink, leaving from its addresses
    const viaB = [
      [DEST4, SRC_B4],
      [DEST6, SRC_B6],
    ].map(([d, s]) => `socket.create_connection(('${d}', 7000), 5, ('${s}', 0)).recv(16)`);
    this.client.run('python3', '-c', `import socket\n${viaB.join('\n')}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
    this.events.length = 0;
    return this;
  }
}
