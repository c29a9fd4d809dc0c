// The Node side of the graft command; bin/graft runs it (see there). It loads
// graft bundled in one file (dist/src/main.js and what it imports; see
// scripts/build.mjs), which starts faster than the modules one by one.
import('../dist/bundle/graft.mjs').catch((err) => {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND') {
    process.stderr.write('graft: not built yet; run `npm install` in the graft directory first\n');
    process.exit(2);
  }
  throw err;
});
