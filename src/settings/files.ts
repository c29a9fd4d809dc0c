/**
 * Files graft is told to read or write, checked before the program starts
 * so that each problem is one line at start, never a crash later: what
 * kind of file it is, how much there is to read, whether it can be written.
 */
import { accessSync, closeSync, constants, fstatSync, openSync, readSync, statSync, type Stats } from 'node:fs';
import { dirname } from 'node:path';
import { UsageError } from '../errors.js';

const errnoOf = (err: unknown): string => (err as NodeJS.ErrnoException).code ?? String(err);

const DESCRIBE: Record<string, string> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  EISDIR: 'it is a directory',
  ENOTDIR: 'a part of the path is not a directory',
  ELOOP: 'too many symbolic links',
  ENAMETOOLONG: 'the name is too long',
  EROFS: 'read-only file system',
};
const why = (err: unknown): string => {
  const code = errnoOf(err);
  return DESCRIBE[code] ? `${DESCRIBE[code]} (${code})` : code;
};

/** "a directory", "a socket": what a file is, when it is not what graft can use. */
function kindOf(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isSocket()) return 'a socket';
  if (st.isBlockDevice()) return 'a block device';
  return 'not a regular file';
}

/**
 * Reads a file of at most `cap` bytes: a regular file, or a pipe such as
 * `--config <(generate)`. Anything longer, and endless sources such as
 * /dev/zero, stop at the cap with an error rather than fill memory.
 */
export function readCappedFile(path: string, cap: number, what: string): string {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOCTTY);
  } catch (err) {
    throw new UsageError(`${what} '${path}': cannot read it: ${why(err)}`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile() && !st.isFIFO() && !st.isCharacterDevice()) throw new UsageError(`${what} '${path}': cannot read it: it is ${kindOf(st)}`);
    const buf = Buffer.alloc(cap + 1);
    let got = 0;
    for (;;) {
      const n = readSync(fd, buf, got, buf.length - got, null);
      if (n === 0) break;
      got += n;
      if (got > cap) throw new UsageError(`${what} '${path}': longer than ${cap} bytes; not a config file`);
    }
    return buf.subarray(0, got).toString('utf8');
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(`${what} '${path}': cannot read it: ${why(err)}`);
  } finally {
    closeSync(fd);
  }
}

/**
 * Checks that graft can write a log to `path`: an existing file, pipe or
 * device it may write, or a new file in a directory it may write (missing
 * directories are created, as the log does). `where` names the setting.
 */
export function checkLogFile(path: string, where: string): void {
  const bad = (reason: string): never => {
    throw new UsageError(`${where}: '${path}': cannot write the log there: ${reason}`);
  };
  let st: Stats | undefined;
  try {
    st = statSync(path);
  } catch (err) {
    if (errnoOf(err) !== 'ENOENT') bad(why(err));
  }
  if (st) {
    if (!st.isFile() && !st.isFIFO() && !st.isCharacterDevice()) bad(`it is ${kindOf(st)}`);
    return writable(path, bad);
  }
  // a new file: the nearest existing ancestor must be a directory graft may write into
  let dir = dirname(path);
  for (;;) {
    try {
      if (!statSync(dir).isDirectory()) bad(`'${dir}' is not a directory`);
      return writable(dir, bad, constants.W_OK | constants.X_OK);
    } catch (err) {
      if (err instanceof UsageError) throw err;
      if (errnoOf(err) !== 'ENOENT' || dirname(dir) === dir) bad(why(err));
      dir = dirname(dir);
    }
  }
}

function writable(path: string, bad: (reason: string) => never, mode = constants.W_OK): void {
  try {
    accessSync(path, mode);
  } catch (err) {
    bad(why(err));
  }
}
