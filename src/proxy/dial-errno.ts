/**
 * The errno a program's connect fails with when graft's dial of its
 * destination failed: the dial's own errno when it has one the kernel
 * gives connect(); otherwise ECONNREFUSED.
 */
import { constants } from 'node:os';

const CONNECT_ERRNOS = new Set(['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'EADDRNOTAVAIL', 'EACCES', 'EPERM', 'ENETDOWN', 'EHOSTDOWN']);

export function dialErrno(err: unknown): string {
  const code = (err as { errno?: unknown; code?: unknown }).code;
  return typeof code === 'string' && CONNECT_ERRNOS.has(code) && code in constants.errno ? code : 'ECONNREFUSED';
}
