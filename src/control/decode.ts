/**
 * Request bodies to model inputs, read the way Toxiproxy's Go server reads
 * them (encoding/json into structs), so a body its clients send means the
 * same here:
 *  - a key matches its field case-insensitively ("Name" fills name), the
 *    last matching key winning;
 *  - null leaves a field as if absent;
 *  - unknown keys are ignored;
 *  - a value of the wrong JSON type is a 400 "bad request body".
 */
import { badBody, failure, MESSAGES, missingField, success, type Result } from './errors.js';
import {
  attributeNames,
  checkProxy,
  checkToxic,
  isTextAttribute,
  isToxicType,
  STREAMS,
  type ProxyConfig,
  type ProxyInput,
  type Stream,
  type Toxic,
  type ToxicInput,
} from './model.js';

type JsonObject = Readonly<Record<string, unknown>>;

/** Where Toxiproxy listens when a proxy names no address is every interface; graft keeps to loopback unless told. */
export const DEFAULT_LISTEN = '127.0.0.1:0';

export function parseJson(body: string): Result<unknown> {
  // Go's decoder reports an empty body as EOF
  if (body.trim() === '') return badBody('EOF');
  try {
    return success(JSON.parse(body) as unknown);
  } catch (err) {
    return badBody(err instanceof Error ? err.message : 'malformed JSON');
  }
}

const isObject = (value: unknown): value is JsonObject => typeof value === 'object' && value !== null && !Array.isArray(value);

const jsonType = (value: unknown): string => (Array.isArray(value) ? 'array' : typeof value);

/** The value for `key`, matched as Go matches a struct field; undefined when absent or null. */
function field(object: JsonObject, key: string): unknown {
  let found: unknown;
  for (const [k, value] of Object.entries(object)) {
    if (k === key || k.toLowerCase() === key) found = value;
  }
  return found ?? undefined;
}

/** Reads field `key` as `type`; undefined when absent. */
function typed<T>(object: JsonObject, key: string, type: 'string' | 'boolean' | 'number', label = key): Result<T | undefined> {
  const value = field(object, key);
  if (value === undefined || typeof value === type) return success(value as T | undefined);
  return badBody(`${label}: ${jsonType(value)} where a ${type} belongs`);
}

function asObject(value: unknown, what: string): Result<JsonObject> {
  return isObject(value) ? success(value) : badBody(`${what}: ${jsonType(value)} where an object belongs`);
}

/** A model check's problem as the 400 Toxiproxy would give for a value its struct cannot hold. */
function checked<T>(check: { ok: true; value: T } | { ok: false; problem: string }): Result<T> {
  return check.ok ? success(check.value) : badBody(check.problem);
}

/** The proxy fields of a body, type-checked; undefined where absent. */
type ProxyFields = { readonly [K in keyof ProxyInput]: ProxyInput[K] | undefined };

function proxyFields(object: JsonObject): Result<ProxyFields> {
  const name = typed<string>(object, 'name', 'string');
  if (!name.ok) return name;
  const listen = typed<string>(object, 'listen', 'string');
  if (!listen.ok) return listen;
  const upstream = typed<string>(object, 'upstream', 'string');
  if (!upstream.ok) return upstream;
  const enabled = typed<boolean>(object, 'enabled', 'boolean');
  if (!enabled.ok) return enabled;
  return success({ name: name.value, listen: listen.value, upstream: upstream.value, enabled: enabled.value });
}

/** Fields of a new proxy: name and upstream required (`where` names the entry of a /populate list), enabled by default. */
function newProxyInput(fields: ProxyFields, where = ''): Result<ProxyInput> {
  if (!fields.name) return missingField(`name${where}`);
  if (!fields.upstream) return missingField(`upstream${where}`);
  return success({ name: fields.name, listen: fields.listen || DEFAULT_LISTEN, upstream: fields.upstream, enabled: fields.enabled ?? true });
}

/** POST /proxies */
export function decodeNewProxy(value: unknown): Result<ProxyConfig> {
  const object = asObject(value, 'proxy');
  if (!object.ok) return object;
  const fields = proxyFields(object.value);
  if (!fields.ok) return fields;
  const input = newProxyInput(fields.value);
  return input.ok ? checked(checkProxy(input.value)) : input;
}

/** POST /proxies/{name}: fields absent keep their value; a name in the body is ignored, as Toxiproxy does. */
export function decodeProxyUpdate(current: ProxyConfig, value: unknown): Result<ProxyConfig> {
  const object = asObject(value, 'proxy');
  if (!object.ok) return object;
  const fields = proxyFields(object.value);
  if (!fields.ok) return fields;
  const { listen, upstream, enabled } = fields.value;
  return checked(
    checkProxy({ name: current.name, listen: listen ?? current.listen, upstream: upstream ?? current.upstream, enabled: enabled ?? current.enabled }),
  );
}

/**
 * POST /populate: every entry is checked before any is applied, so a bad
 * list changes nothing (Toxiproxy checks name and upstream up front too).
 */
export function decodePopulate(value: unknown): Result<ProxyConfig[]> {
  if (!Array.isArray(value)) return badBody(`${jsonType(value)} where an array of proxies belongs`);
  const configs: ProxyConfig[] = [];
  for (const [i, entry] of (value as unknown[]).entries()) {
    const object = asObject(entry, `proxy ${i + 1}`);
    if (!object.ok) return object;
    const fields = proxyFields(object.value);
    if (!fields.ok) return fields;
    const input = newProxyInput(fields.value, ` at proxy ${i + 1}`);
    if (!input.ok) return input;
    const config = checked(checkProxy(input.value));
    if (!config.ok) return badBody(`proxy ${i + 1}: ${config.error.error.replace(/^bad request body: /, '')}`);
    configs.push(config.value);
  }
  return success(configs);
}

/** The known attributes of `type` present in `attributes`, each a number (an errno: a string); unknown keys ignored. */
function attributeValues(type: Toxic['type'], attributes: unknown): Result<Record<string, number | string>> {
  if (attributes === undefined) return success({});
  const object = asObject(attributes, 'attributes');
  if (!object.ok) return object;
  const values: Record<string, number | string> = {};
  for (const name of attributeNames(type)) {
    const value = typed<number | string>(object.value, name, isTextAttribute(type, name) ? 'string' : 'number', `attributes.${name}`);
    if (!value.ok) return value;
    if (value.value !== undefined) values[name] = value.value;
  }
  return success(values);
}

function parseStream(text: string): Stream | undefined {
  // Toxiproxy's stream.ParseDirection lowercases
  const lower = text.toLowerCase();
  return STREAMS.find((s) => s === lower);
}

/** A new toxic's fields but its attributes, which are read once its name is known to be free. */
export type NewToxic = Omit<ToxicInput, 'attributes'> & { readonly attributes: unknown };

/**
 * POST /proxies/{name}/toxics, first part: the toxic's name (defaulted to
 * type_stream), type, stream and toxicity. The caller checks the name is
 * free before checkNewToxic reads the attributes: Toxiproxy answers a
 * duplicate 409 before it decodes them.
 */
export function decodeNewToxic(value: unknown): Result<NewToxic> {
  const object = asObject(value, 'toxic');
  if (!object.ok) return object;
  const name = typed<string>(object.value, 'name', 'string');
  if (!name.ok) return name;
  const type = typed<string>(object.value, 'type', 'string');
  if (!type.ok) return type;
  const streamText = typed<string>(object.value, 'stream', 'string');
  if (!streamText.ok) return streamText;
  const toxicity = typed<number>(object.value, 'toxicity', 'number');
  if (!toxicity.ok) return toxicity;
  const stream = parseStream(streamText.value ?? 'downstream');
  if (!stream) return failure(400, MESSAGES.invalidStream);
  if (!isToxicType(type.value ?? '')) return failure(400, MESSAGES.invalidToxicType);
  const toxicType = type.value as Toxic['type'];
  // Go decodes this first pass into an empty struct: the values wait, but not being an object is already an error
  const attributes = field(object.value, 'attributes');
  if (attributes !== undefined && !isObject(attributes)) return badBody(`attributes: ${jsonType(attributes)} where an object belongs`);
  return success({
    name: name.value || `${toxicType}_${stream}`,
    type: toxicType,
    stream,
    toxicity: toxicity.value ?? 1,
    attributes,
  });
}

/** POST /proxies/{name}/toxics, second part: the attributes read and every value checked. */
export function checkNewToxic(toxic: NewToxic): Result<Toxic> {
  const attributes = attributeValues(toxic.type, toxic.attributes);
  return attributes.ok ? checked(checkToxic({ ...toxic, attributes: attributes.value })) : attributes;
}

/**
 * POST /proxies/{name}/toxics/{toxic}: only toxicity and attributes change;
 * attributes absent from the body keep their value (Go decodes the body
 * over the toxic in place). Name, type and stream in the body are ignored,
 * as Toxiproxy ignores them; toxiproxy-node-client sends them all.
 */
export function decodeToxicUpdate(current: Toxic, value: unknown): Result<Toxic> {
  const object = asObject(value, 'toxic');
  if (!object.ok) return object;
  const toxicity = typed<number>(object.value, 'toxicity', 'number');
  if (!toxicity.ok) return toxicity;
  const attributes = attributeValues(current.type, field(object.value, 'attributes'));
  if (!attributes.ok) return attributes;
  return checked(
    checkToxic({
      ...current,
      toxicity: toxicity.value ?? current.toxicity,
      attributes: { ...(current.attributes as Readonly<Record<string, number | string>>), ...attributes.value },
    }),
  );
}
