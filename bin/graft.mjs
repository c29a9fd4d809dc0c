// The Node side of the graft command; bin/graft runs it (see there).
import('../dist/src/main.js').catch((err) => {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND') {
    process.stderr.write('graft: not built yet; run `npm install` in the graft directory first\n');
    process.exit(2);
  }
  throw err;
});
