// Generates both sides' message definitions from spec/tracer-boundary.json:
//   native/boundary_messages.h, native/boundary_messages.c  (structs, descriptor tables)
//   src/tracer/messages.ts                                  (types, descriptor tables)
// The encoders and decoders (native/boundary.c, src/tracer/codec.ts) are
// generic over those tables, so a message is defined once, in the spec.
//   node scripts/gen-boundary.mjs           write the files when they differ
//   node scripts/gen-boundary.mjs --check   fail when a file is out of date
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const spec = JSON.parse(readFileSync(join(root, 'spec', 'tracer-boundary.json'), 'utf8'));

const SCALARS = ['int', 'uint', 'count', 'port', 'double', 'bool', 'addr', 'errno', 'text'];

/** The spec's messages with their fields checked and named for each language. */
function messages() {
  const out = [];
  for (const [direction, d] of Object.entries(spec.directions)) {
    for (const m of d.messages) {
      const fields = m.fields.map(([name, type, flag]) => {
        if (!SCALARS.includes(type) && !(type in spec.enums)) throw new Error(`${m.name}.${name}: unknown type ${type}`);
        if (flag !== undefined && flag !== 'optional') throw new Error(`${m.name}.${name}: unknown flag ${flag}`);
        return { name, camel: camel(name), type, optional: flag === 'optional' };
      });
      out.push({ ...m, direction, fields, cname: m.name.replace(/-/g, '_'), tsname: pascal(m.name) });
    }
  }
  return out;
}

const camel = (s) => s.replace(/_([a-z0-9])/g, (_, c) => c.toUpperCase());
const pascal = (s) =>
  s
    .split(/[-_]/)
    .map((w) => w[0].toUpperCase() + w.slice(1))
    .join('');
const upper = (s) => s.replace(/-/g, '_').toUpperCase();
const banner = 'Generated from spec/tracer-boundary.json by scripts/gen-boundary.mjs: do not edit.';

function cType(f) {
  switch (f.type) {
    case 'int':
      return ['int32_t', ''];
    case 'uint':
      return ['uint32_t', ''];
    case 'count':
      return ['uint64_t', ''];
    case 'port':
      return ['uint16_t', ''];
    case 'double':
      return ['double', ''];
    case 'bool':
    case 'errno':
      return ['int', ''];
    case 'addr':
      return ['char', '[BND_ADDR_MAX]'];
    case 'text':
      return ['char', '[BND_TEXT_MAX + 1]'];
    default:
      return [`enum bnd_${f.type}`, ''];
  }
}

function header(ms) {
  const lines = [
    `/* ${banner} */`,
    '/* clang-format off */',
    '#ifndef GRAFT_BOUNDARY_MESSAGES_H',
    '#define GRAFT_BOUNDARY_MESSAGES_H',
    '',
    '#include <stdint.h>',
    '',
  ];
  lines.push(
    `#define BND_LINE_MAX ${spec.lineMax}`,
    `#define BND_TEXT_MAX ${spec.textMax}`,
    '/* an address, with room for an IPv6 scope */',
    '#define BND_ADDR_MAX 64',
    '',
  );
  for (const [name, words] of Object.entries(spec.enums)) {
    lines.push(`enum bnd_${name} {`, ...words.map((w) => `\tBND_${upper(name)}_${upper(w)},`), '};', '');
  }
  lines.push('enum bnd_kind {', ...ms.map((m) => `\tBND_${upper(m.cname)},`), '\tBND_KINDS', '};', '');
  for (const m of ms) {
    lines.push(`/* ${m.tag}: ${m.about} */`, `struct bnd_${m.cname} {`);
    for (const f of m.fields) {
      if (f.optional) lines.push(`\tint has_${f.name};`);
      const [t, arr] = cType(f);
      lines.push(`\t${t} ${f.name}${arr};`);
    }
    lines.push('};', '');
  }
  lines.push(
    '/* room for any message, for a decoder that does not know which comes */',
    'union bnd_any {',
    ...ms.map((m) => `\tstruct bnd_${m.cname} ${m.cname};`),
    '};',
    '',
  );
  lines.push('#endif');
  return lines.join('\n') + '\n';
}

function source(ms) {
  const lines = [`/* ${banner} */`, '/* clang-format off */', '#include "boundary.h"', '', '#include <stddef.h>', ''];
  for (const [name, words] of Object.entries(spec.enums)) {
    lines.push(`static const char *const ${name}_words[] = { ${words.map((w) => JSON.stringify(w)).join(', ')}, NULL };`);
  }
  lines.push('');
  for (const m of ms) {
    lines.push(`static const struct bnd_field ${m.cname}_fields[] = {`);
    for (const f of m.fields) {
      const enumType = f.type in spec.enums;
      const type = enumType ? 'BND_T_ENUM' : `BND_T_${f.type.toUpperCase()}`;
      const has = f.optional ? `offsetof(struct bnd_${m.cname}, has_${f.name})` : 'BND_REQUIRED';
      const words = enumType ? `${f.type}_words` : 'NULL';
      lines.push(`\t{ "${f.name}", ${type}, offsetof(struct bnd_${m.cname}, ${f.name}), ${has}, ${words} },`);
    }
    lines.push('};', '');
  }
  lines.push('const struct bnd_message bnd_messages[BND_KINDS] = {');
  for (const m of ms) {
    lines.push(`\t[BND_${upper(m.cname)}] = { "${m.tag}", "${m.name}", ${m.cname}_fields, ${m.fields.length}, sizeof(struct bnd_${m.cname}) },`);
  }
  lines.push('};');
  return lines.join('\n') + '\n';
}

function tsType(f) {
  if (f.type in spec.enums) return pascal(f.type);
  return ['addr', 'errno', 'text'].includes(f.type) ? 'string' : f.type === 'bool' ? 'boolean' : 'number';
}

function typescript(ms) {
  const lines = [`// ${banner}`, "import type { MessageSpec } from './spec.js';", ''];
  lines.push(`export const LINE_MAX = ${spec.lineMax};`, `export const TEXT_MAX = ${spec.textMax};`, '');
  for (const [name, words] of Object.entries(spec.enums)) {
    lines.push(
      `export const ${upper(name)} = [${words.map((w) => `'${w}'`).join(', ')}] as const;`,
      `export type ${pascal(name)} = (typeof ${upper(name)})[number];`,
      '',
    );
  }
  for (const m of ms) {
    lines.push(`/** ${m.tag}: ${m.about} */`, `export interface ${m.tsname}Message {`, `  readonly kind: '${m.name}';`);
    for (const f of m.fields) lines.push(`  readonly ${f.camel}${f.optional ? '?' : ''}: ${tsType(f)};`);
    lines.push('}', '');
  }
  for (const [direction] of Object.entries(spec.directions)) {
    const names = ms.filter((m) => m.direction === direction).map((m) => `${m.tsname}Message`);
    lines.push(`export type ${pascal(direction.replace(/s$/, ''))}Message = ${names.join(' | ')};`);
  }
  lines.push(
    `export type Message = ${Object.keys(spec.directions)
      .map((d) => `${pascal(d.replace(/s$/, ''))}Message`)
      .join(' | ')};`,
    '',
  );
  lines.push("export const MESSAGES: { readonly [K in Message['kind']]: MessageSpec } = {");
  for (const m of ms) {
    lines.push(`  '${m.name}': {`, `    tag: '${m.tag}',`, `    direction: '${m.direction}',`, '    fields: [');
    for (const f of m.fields) {
      const words = f.type in spec.enums ? `, words: ${upper(f.type)}` : '';
      const type = f.type in spec.enums ? 'enum' : f.type;
      lines.push(`      { name: '${f.camel}', type: '${type}', optional: ${f.optional}${words} },`);
    }
    lines.push('    ],', '  },');
  }
  lines.push('};');
  return lines.join('\n') + '\n';
}

const ms = messages();
const outputs = {
  'native/boundary_messages.h': header(ms),
  'native/boundary_messages.c': source(ms),
  'src/tracer/messages.ts': typescript(ms),
};
const check = process.argv.includes('--check');
let stale = 0;
for (const [rel, text] of Object.entries(outputs)) {
  const path = join(root, rel);
  const current = existsSync(path) ? readFileSync(path, 'utf8') : '';
  if (current === text) continue;
  if (check) {
    process.stderr.write(`${rel} is out of date with spec/tracer-boundary.json: run node scripts/gen-boundary.mjs\n`);
    stale++;
  } else {
    writeFileSync(path, text);
  }
}
if (stale) process.exit(1);
