/**
 * Real upstream proxies from Debian's packages, run inside a lab namespace:
 *   microsocks  SOCKS5, optionally with user/password (-u/-P)
 *   danted      SOCKS5 with username auth, or SOCKS4/4a without auth
 *   tinyproxy   HTTP CONNECT with BasicAuth, in the foreground (-d)
 *   ssh -D      OpenSSH's dynamic forwarding: SOCKS4, SOCKS4a (the server
 *               resolves the name) and SOCKS5 without auth, through a
 *               private sshd in the same namespace
 *   fake        a python3 TCP server that accepts and then either closes
 *               after reading the first bytes (hangup) or never answers (silent)
 *
 * Each proxy gets its own address on the namespace's loopback (the client
 * reaches it through the namespace's veth) and leaves from that address
 * (microsocks -b, dante's external, tinyproxy's Bind), so a destination in
 * the same namespace sees which proxy a connection came through.
 *
 * Every process is adopted by the lab (killed by Lab.destroy(), which also
 * kills whatever else is left in the namespace, dante's children included);
 * config and log files live in the lab's temp dir (removed with it).
 *
 * Dante's username method checks passwords with getpwnam/getspnam. The
 * machine's accounts are never touched: danted runs in a private mount
 * namespace where copies of /etc/passwd and /etc/shadow with one test user
 * appended are bind-mounted over the originals. sshd (no PAM) refuses a
 * locked root, so it runs the same way over a copy of /etc/shadow where
 * root's password field is "*".
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync, existsSync, chmodSync, mkdirSync, copyFileSync } from 'node:fs';
import type { Lab, Namespace } from './netns.js';
import { poll } from './procs.js';
import { findCommand } from './capabilities.js';

export interface Credentials {
  readonly user: string;
  readonly password: string;
}

export interface RunningProxy {
  /** what it is, for messages */
  readonly label: string;
  readonly addr: string;
  readonly port: number;
  readonly child: ChildProcess;
  /** the proxy's own log so far (its log file, or its stdout+stderr) */
  log(): string;
  stop(): void;
}

export interface ProxyAt {
  readonly addr: string;
  readonly port: number;
}

/** SHA-512 crypt(3) hash for /etc/shadow, made with openssl or python3's crypt. */
export function shadowHash(password: string): string {
  try {
    return execFileSync('openssl', ['passwd', '-6', '-stdin'], { input: `${password}\n`, encoding: 'utf8' }).trim();
  } catch {
    const code = 'import crypt, sys; print(crypt.crypt(sys.stdin.read(), crypt.mksalt(crypt.METHOD_SHA512)))';
    return execFileSync('python3', ['-W', 'ignore', '-c', code], { input: password, encoding: 'utf8' }).trim();
  }
}

function listening(ns: Namespace, addr: string, port: number): boolean {
  const out = ns.run('ss', '-ltnH');
  return out.split('\n').some((l) => l.split(/\s+/).includes(`${addr}:${port}`));
}

const FAKE_PROXY = `
import socket, sys
addr, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((addr, port))
s.listen(64)
held = []
while True:
    c, peer = s.accept()
    if mode == 'hangup':
        c.settimeout(5)
        try:
            first = c.recv(1024)
        except OSError:
            first = b''
        print('accepted %s:%d first=%s' % (peer[0], peer[1], first.hex()), flush=True)
        c.close()
    else:
        print('accepted %s:%d' % (peer[0], peer[1]), flush=True)
        held.append(c)
`;

export class ProxyHost {
  private readonly added = new Set<string>();

  /**
   * @param lab the lab that owns the namespace (processes are adopted by it)
   * @param ns where the proxies run
   * @param path file paths in a temp dir removed with the lab
   */
  constructor(
    private readonly lab: Lab,
    readonly ns: Namespace,
    private readonly path: (name: string) => string,
  ) {}

  private address(addr: string): void {
    if (this.added.has(addr)) return;
    this.lab.addLocal(this.ns, `${addr}/32`);
    this.added.add(addr);
  }

  /** Spawns `cmd` in the namespace and waits until addr:port listens. */
  private async start(label: string, at: ProxyAt, cmd: string, args: readonly string[], logFile?: string): Promise<RunningProxy> {
    this.address(at.addr);
    const child = this.lab.adopt(this.ns.spawn(cmd, args));
    let output = '';
    child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    const log = (): string => (logFile && existsSync(logFile) ? readFileSync(logFile, 'utf8') : '') + output;
    try {
      await poll(
        () => {
          if (child.exitCode !== null || child.signalCode !== null)
            throw new Error(`${label} exited (${child.exitCode ?? child.signalCode}) before listening:\n${log()}`);
          return listening(this.ns, at.addr, at.port);
        },
        10_000,
        `${label} to listen on ${at.addr}:${at.port}`,
      );
    } catch (err) {
      child.kill('SIGKILL');
      throw new Error(`${(err as Error).message}\n${log()}`, { cause: err });
    }
    return {
      label,
      addr: at.addr,
      port: at.port,
      child,
      log,
      stop: () => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      },
    };
  }

  /** microsocks on addr:port, leaving from addr. */
  microsocks(at: ProxyAt, auth?: Credentials): Promise<RunningProxy> {
    const args = ['-i', at.addr, '-p', String(at.port), '-b', at.addr];
    if (auth) args.push('-u', auth.user, '-P', auth.password);
    return this.start(`microsocks ${at.addr}:${at.port}`, at, 'microsocks', args);
  }

  /**
   * danted on addr:port, leaving from addr. With `auth`: SOCKS5 with the
   * username method against a private passwd/shadow holding that user;
   * without: no authentication (what SOCKS4 and SOCKS4a clients use).
   */
  danted(at: ProxyAt, auth?: Credentials): Promise<RunningProxy> {
    const tag = `danted-${at.addr}-${at.port}`;
    const conf = this.path(`${tag}.conf`);
    const logFile = this.path(`${tag}.log`);
    writeFileSync(
      conf,
      [
        `logoutput: ${logFile}`,
        `internal: ${at.addr} port = ${at.port}`,
        `external: ${at.addr}`,
        'clientmethod: none',
        `socksmethod: ${auth ? 'username' : 'none'}`,
        'user.privileged: root',
        'user.unprivileged: nobody',
        'client pass {',
        '  from: 0.0.0.0/0 to: 0.0.0.0/0',
        '  log: error connect disconnect',
        '}',
        'socks pass {',
        '  from: 0.0.0.0/0 to: 0.0.0.0/0',
        '  command: connect',
        '  log: error connect disconnect',
        '}',
        '',
      ].join('\n'),
    );
    const pid = this.path(`${tag}.pid`);
    let script = `exec /usr/sbin/danted -f '${conf}' -p '${pid}'`;
    if (auth) {
      const passwd = this.path(`${tag}.passwd`);
      const shadow = this.path(`${tag}.shadow`);
      writeFileSync(passwd, `${readFileSync('/etc/passwd', 'utf8').trimEnd()}\n${auth.user}:x:4242:4242:graft test:/nonexistent:/usr/sbin/nologin\n`);
      writeFileSync(shadow, `${readFileSync('/etc/shadow', 'utf8').trimEnd()}\n${auth.user}:${shadowHash(auth.password)}:20000:0:99999:7:::\n`);
      chmodSync(shadow, 0o600);
      script = `mount --bind '${passwd}' /etc/passwd && mount --bind '${shadow}' /etc/shadow && ${script}`;
    }
    // unshare -m: a private mount namespace (private propagation), so the
    // bind mounts are seen by danted alone.
    return this.start(`danted ${at.addr}:${at.port}`, at, 'unshare', ['-m', 'sh', '-c', script], logFile);
  }

  /** tinyproxy on addr:port (HTTP CONNECT), leaving from addr, with BasicAuth when given. */
  tinyproxy(at: ProxyAt, auth?: Credentials): Promise<RunningProxy> {
    const tag = `tinyproxy-${at.addr}-${at.port}`;
    const conf = this.path(`${tag}.conf`);
    const logFile = this.path(`${tag}.log`);
    writeFileSync(
      conf,
      [
        `Listen ${at.addr}`,
        `Port ${at.port}`,
        `Bind ${at.addr}`,
        'Timeout 30',
        'MaxClients 50',
        `LogFile "${logFile}"`,
        'LogLevel Info',
        `PidFile "${this.path(`${tag}.pid`)}"`,
        'DisableViaHeader Yes',
        'Allow 192.0.2.0/24',
        'Allow 127.0.0.1',
        ...(auth ? [`BasicAuth ${auth.user} ${auth.password}`] : []),
        '',
      ].join('\n'),
    );
    return this.start(`tinyproxy ${at.addr}:${at.port}`, at, 'tinyproxy', ['-d', '-c', conf], logFile);
  }

  /**
   * OpenSSH's dynamic forwarding as the SOCKS server on addr:port: a private
   * sshd on addr:sshdPort, and `ssh -N -D addr:port` logged in to it as root.
   * The SOCKS listener is the client's; each request becomes a direct-tcpip
   * channel that sshd opens, so a SOCKS4a host name is resolved by sshd with
   * the namespace's resolver (/etc/netns/NS/resolv.conf, which `ip netns
   * exec` puts in place: write it before starting this). Connections leave
   * from the address the namespace's routes choose, not from addr.
   *
   * Keys, config and known hosts are the lab's own: host and user keys are
   * made with ssh-keygen in the temp dir, sshd reads only its config file
   * (-f), the client only its command line (-F /dev/null, which also keeps
   * it from creating ~/.ssh); nothing under /etc/ssh or ~/.ssh is read for
   * keys or written. log() is sshd's output (the targets it opens) and the
   * client's (-v).
   */
  async sshSocks(at: ProxyAt, sshdPort = 22): Promise<RunningProxy> {
    const tag = `ssh-${at.addr}-${at.port}`;
    const hostKey = this.path(`${tag}.host_key`);
    const userKey = this.path(`${tag}.user_key`);
    const authorized = this.path(`${tag}.authorized_keys`);
    const conf = this.path(`${tag}.sshd_config`);
    for (const key of [hostKey, userKey]) execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', tag, '-f', key]);
    copyFileSync(`${userKey}.pub`, authorized);
    writeFileSync(
      conf,
      [
        `ListenAddress ${at.addr}:${sshdPort}`,
        `HostKey ${hostKey}`,
        `AuthorizedKeysFile ${authorized}`,
        'PidFile none',
        'UsePAM no',
        'StrictModes no',
        'PermitRootLogin prohibit-password',
        'PubkeyAuthentication yes',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'AllowTcpForwarding yes',
        'PermitOpen any',
        'LogLevel DEBUG1',
        '',
      ].join('\n'),
    );
    // sshd's privilege separation needs this (empty) directory; the package's
    // service makes it at boot, and nothing here starts that service.
    if (!existsSync('/run/sshd')) mkdirSync('/run/sshd', { mode: 0o755 });
    // Without PAM, sshd refuses a locked account (a password field starting
    // with "!", as root's is on many machines): it sees a copy of
    // /etc/shadow where root's is "*" (no password, not locked), bind-mounted
    // in a private mount namespace as for danted.
    const shadow = this.path(`${tag}.shadow`);
    writeFileSync(shadow, readFileSync('/etc/shadow', 'utf8').replace(/^root:[^:\n]*:/m, 'root:*:'));
    chmodSync(shadow, 0o600);
    // sshd re-executes itself, so it must be started by its absolute path.
    const sshdPath = findCommand('sshd') ?? '/usr/sbin/sshd';
    const sshd = await this.start(`sshd ${at.addr}:${sshdPort}`, { addr: at.addr, port: sshdPort }, 'unshare', [
      '-m',
      'sh',
      '-c',
      `mount --bind '${shadow}' /etc/shadow && exec '${sshdPath}' -D -e -f '${conf}'`,
    ]);
    let client: RunningProxy;
    try {
      client = await this.start(`ssh -D ${at.addr}:${at.port}`, at, 'ssh', [
        '-N',
        '-v',
        '-F',
        '/dev/null',
        '-i',
        userKey,
        '-o',
        'IdentitiesOnly=yes',
        '-o',
        'UserKnownHostsFile=/dev/null',
        '-o',
        'GlobalKnownHostsFile=/dev/null',
        '-o',
        'StrictHostKeyChecking=no',
        '-o',
        'BatchMode=yes',
        '-o',
        'ExitOnForwardFailure=yes',
        '-p',
        String(sshdPort),
        '-D',
        `${at.addr}:${at.port}`,
        `root@${at.addr}`,
      ]);
    } catch (err) {
      sshd.stop();
      throw new Error(`${(err as Error).message}\nsshd:\n${sshd.log()}`, { cause: err });
    }
    return {
      label: `ssh -D (OpenSSH) ${at.addr}:${at.port}`,
      addr: at.addr,
      port: at.port,
      child: client.child,
      log: () => `sshd:\n${sshd.log()}\nssh:\n${client.log()}`,
      stop: () => {
        client.stop();
        sshd.stop();
      },
    };
  }

  /**
   * Not a proxy: accepts and then either reads the first bytes and closes
   * (hangup) or holds the connection without a word (silent). It prints one
   * "accepted PEER [first=HEX]" line per connection (see log()).
   */
  fake(at: ProxyAt, mode: 'hangup' | 'silent'): Promise<RunningProxy> {
    return this.start(`${mode} fake proxy ${at.addr}:${at.port}`, at, 'python3', ['-u', '-c', FAKE_PROXY, at.addr, String(at.port), mode]);
  }
}
