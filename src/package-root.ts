/**
 * graft's package directory, as a file: URL ending in "/". This module is
 * dist/src/package-root.js, and the bundle bin/graft runs is
 * dist/bundle/graft.mjs (scripts/build.mjs): both sit two levels below
 * the package, so the same relative URL finds it from either.
 */
export const packageRoot = new URL('../../', import.meta.url);
