import type { FastifySchemaCompiler, FastifySchemaValidationError } from 'fastify';
import type { TSchema } from 'typebox';
import { Compile } from 'typebox/compile';

/**
 * Request validation by TypeBox, instead of Fastify's default Ajv. That Ajv coerces types
 * everywhere (a port of "995" or a name of 1 would pass) and drops unknown properties without
 * a word; the type provider's own compiler converts path and query parameters with
 * Value.Convert, which truncates "1.5" to the id 1. So, here:
 * - a body is checked as sent: a wrong type or an unknown property is a 400;
 * - params and query strings, always text, are converted first, strictly: an integer from
 *   decimal digits only, a number from a decimal numeral, a boolean from `true` or `false`.
 *   Anything else stays text and fails the check, naming the parameter.
 */
export const validatorCompiler: FastifySchemaCompiler<TSchema> = ({ schema, httpPart }) => {
  const validator = Compile(schema);
  const properties = httpPart === 'body' ? undefined : propertiesOf(schema);
  return (value) => {
    const input = properties === undefined ? value : converted(value, properties);
    if (!validator.Check(input)) return { error: [...validator.Errors(input)] as FastifySchemaValidationError[] };
    const unpaired = illFormed(input, '');
    return unpaired === undefined ? { value: input } : { error: [unpaired] };
  };
};

/** A UTF-16 surrogate without its other half: JSON's `"\ud800"` parses to one. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * The first string (or key) that is not well-formed Unicode. The schema cannot say it, and the
 * store cannot keep one: SQLite writes the surrogate as three bytes it reads back as three
 * U+FFFD, so an account key made from such a user name changed between sealing its credentials
 * (the key is in their AAD) and opening them, and every test and sync of it was a 500.
 */
function illFormed(value: unknown, path: string): FastifySchemaValidationError | undefined {
  if (typeof value === 'string') {
    return LONE_SURROGATE.test(value) ? { keyword: 'wellFormed', instancePath: path, schemaPath: '#', params: {}, message: 'is not well-formed Unicode (a lone surrogate)' } : undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  for (const [key, item] of Object.entries(value)) {
    const at = `${path}/${key.replaceAll('~', '~0').replaceAll('/', '~1')}`;
    const found = LONE_SURROGATE.test(key) ? illFormed(key, at) : illFormed(item, at);
    if (found !== undefined) return found;
  }
  return undefined;
}

type PropertySchema = { type?: unknown };

function propertiesOf(schema: TSchema): Record<string, PropertySchema> | undefined {
  const properties = (schema as { properties?: unknown }).properties;
  return typeof properties === 'object' && properties !== null ? (properties as Record<string, PropertySchema>) : undefined;
}

function converted(value: unknown, properties: Record<string, PropertySchema>): unknown {
  if (typeof value !== 'object' || value === null) return value;
  const out: Record<string, unknown> = { ...value };
  for (const [key, text] of Object.entries(out)) {
    if (typeof text === 'string' && properties[key] !== undefined) out[key] = fromText(text, properties[key].type);
  }
  return out;
}

function fromText(text: string, type: unknown): unknown {
  if (type === 'integer' && /^-?\d{1,16}$/.test(text)) return Number(text);
  if (type === 'number' && /^-?\d{1,16}(\.\d{1,16})?$/.test(text)) return Number(text);
  if (type === 'boolean' && (text === 'true' || text === 'false')) return text === 'true';
  return text;
}
