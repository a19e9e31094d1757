/**
 * fast-check arbitraries from the JSON Schemas of the OpenAPI document: values the schema
 * accepts (`valid`), and values it should refuse or that probe the edges (`invalid`). Only the
 * keywords @fastify/swagger writes for our TypeBox schemas are read: type, properties, required,
 * additionalProperties, enum, const, anyOf/oneOf, minimum/maximum, minLength/maxLength, pattern,
 * format, items.
 */
import fc from 'fast-check';

export interface JsonSchema {
  readonly type?: string | readonly string[];
  readonly properties?: Readonly<Record<string, JsonSchema>>;
  readonly required?: readonly string[];
  readonly enum?: readonly unknown[];
  readonly const?: unknown;
  readonly anyOf?: readonly JsonSchema[];
  readonly oneOf?: readonly JsonSchema[];
  readonly minimum?: number;
  readonly maximum?: number;
  readonly minLength?: number;
  readonly maxLength?: number;
  readonly pattern?: string;
  readonly format?: string;
  readonly items?: JsonSchema;
}

/** Values for a property by its name, where a random string would be useless or harmful (a host to dial, a secret to trace). */
export type Overrides = Readonly<Record<string, fc.Arbitrary<unknown>>>;

/** A value the schema accepts. */
export function valid(schema: JsonSchema, overrides: Overrides = {}, name?: string): fc.Arbitrary<unknown> {
  if (name !== undefined && overrides[name] !== undefined) return overrides[name];
  const branches = schema.anyOf ?? schema.oneOf;
  if (branches !== undefined) return fc.oneof(...branches.map((b) => valid(b, overrides, name)));
  if (schema.const !== undefined) return fc.constant(schema.const);
  if (schema.enum !== undefined) return fc.constantFrom(...schema.enum);
  switch (Array.isArray(schema.type) ? schema.type[0] : schema.type) {
    case 'object': {
      const model: Record<string, fc.Arbitrary<unknown>> = {};
      for (const [key, property] of Object.entries(schema.properties ?? {})) model[key] = valid(property, overrides, key);
      return fc.record(model, { requiredKeys: [...(schema.required ?? [])] });
    }
    case 'array':
      return fc.array(valid(schema.items ?? {}, overrides), { maxLength: 3 });
    case 'integer':
      return integer(schema);
    case 'number':
      return fc.double({ min: schema.minimum ?? -1e9, max: schema.maximum ?? 1e9, noNaN: true });
    case 'boolean':
      return fc.boolean();
    case 'null':
      return fc.constant(null);
    case 'string':
      return string(schema);
    default:
      return fc.jsonValue();
  }
}

/** Something that should be refused: the wrong type, a bound crossed, a field dropped or added, or any JSON at all. */
export function invalid(schema: JsonSchema, overrides: Overrides = {}): fc.Arbitrary<unknown> {
  const base = valid(schema, overrides);
  const isObject = schema.type === 'object' && schema.properties !== undefined;
  const keys = Object.keys(schema.properties ?? {});
  const options: Array<fc.Arbitrary<unknown>> = [junk(), crossedBound(schema)];
  if (isObject && keys.length > 0) {
    options.push(
      // One field dropped, replaced by junk, or nested junk inside it.
      fc.tuple(base, fc.constantFrom(...keys), junk(), fc.constantFrom('drop', 'replace')).map(([value, key, bad, how]) => {
        const copy = { ...(value as Record<string, unknown>) };
        if (how === 'drop') delete copy[key];
        else copy[key] = bad;
        return copy;
      }),
      fc.tuple(base, fc.constantFrom(...keys)).chain(([value, key]) =>
        crossedBound(schema.properties![key]!).map((bad) => ({ ...(value as Record<string, unknown>), [key]: bad })),
      ),
      // A field the schema does not have, prototype pollution among them.
      // A computed `__proto__` key is an own property, which JSON.stringify writes out.
      fc.tuple(base, fc.constantFrom('extra', '__proto__', 'constructor', 'id', 'credentialType', 'createdAt'), junk()).map(([value, key, bad]) => ({ ...(value as Record<string, unknown>), [key]: bad })),
    );
  }
  return fc.oneof(...options);
}

/** Any JSON, with the values that break careless code weighted in. */
export function junk(): fc.Arbitrary<unknown> {
  return fc.oneof(
    fc.jsonValue({ maxDepth: 3 }),
    fc.constantFrom('', ' ', 'a\r\nb', 'nul\u0000byte', '\ud800', '../../etc/passwd', '<script>', "'; drop table accounts; --", '1e309', '-0', 'NaN', 'null', '%00', '\u202e'),
    fc.constantFrom(-1, 0, 1.5, -2147483649, 2 ** 53, 1e308, Number.MIN_VALUE),
    fc.constantFrom({}, [], [[]], { type: 'password' }, { __proto__: { admin: true } }),
  );
}

/** A value just past one of the schema's bounds (or of the wrong type when it has none). */
function crossedBound(schema: JsonSchema): fc.Arbitrary<unknown> {
  const options: Array<fc.Arbitrary<unknown>> = [fc.constant(null), fc.constant('x'), fc.constant(1)];
  if (schema.minimum !== undefined) options.push(fc.constant(schema.minimum - 1));
  if (schema.maximum !== undefined) options.push(fc.constant(schema.maximum + 1));
  if (schema.minLength !== undefined && schema.minLength > 0) options.push(fc.constant('x'.repeat(schema.minLength - 1)));
  if (schema.maxLength !== undefined) options.push(fc.constant('x'.repeat(schema.maxLength + 1)));
  if (schema.enum !== undefined) options.push(fc.constant(`${String(schema.enum[0])}X`));
  return fc.oneof(...options);
}

function integer(schema: JsonSchema): fc.Arbitrary<number> {
  const lo = schema.minimum ?? -1_000_000;
  const hi = schema.maximum ?? 1_000_000;
  // fc.integer is 32-bit; the bounds themselves (up to 2^53 - 1) come as constants.
  return fc.oneof(fc.integer({ min: Math.max(lo, -(2 ** 31)), max: Math.min(hi, lo + 10_000, 2 ** 31 - 1) }), fc.constantFrom(lo, hi));
}

function string(schema: JsonSchema): fc.Arbitrary<string> {
  if (schema.format === 'date-time') return fc.date({ min: new Date(0), max: new Date('2100-01-01'), noInvalidDate: true }).map((d) => d.toISOString());
  const min = schema.minLength ?? 0;
  const max = Math.min(schema.maxLength ?? 40, Math.max(min, 40));
  const text = fc.string({ minLength: min, maxLength: max });
  if (schema.pattern === undefined) return text;
  const pattern = new RegExp(schema.pattern, 'u');
  return text.filter((s) => pattern.test(s));
}
