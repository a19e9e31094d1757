import { Type, type Static, type TSchema } from 'typebox';

/** A value or null: `anyOf [T, null]` (OpenAPI 3.1 is JSON Schema 2020-12, so `type: null` is allowed). */
export const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

/** Database ids: positive integers. A path segment that is not one is a 400 naming the param. */
export const Id = Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER });
export const IdParams = Type.Object({ id: Id }, { additionalProperties: false });

/** Page sizes: at most 200 items a request. */
export const Limit = (fallback: number) => Type.Integer({ minimum: 1, maximum: 200, description: `default ${fallback}` });

/** A time, as everywhere in the API, in webhooks and in the CLI's --json: ISO 8601, UTC, with milliseconds. */
export const Time = Type.String({ format: 'date-time', description: 'ISO 8601 in UTC with milliseconds, e.g. 2026-12-07T14:07:01.000Z' });

/** A person, as everywhere in the API, in webhooks and in the CLI's --json: `name` is empty when the header gives none. */
export const Mailbox = Type.Object({ name: Type.String({ description: 'the display name, decoded; empty when none' }), address: Type.String() });

/**
 * Every error of the API has this body. `code` is one of: INVALID_REQUEST (with `field`, e.g.
 * `body.port`, `params.id`, `querystring.cursor`), UNAUTHORIZED, NOT_FOUND, ACCOUNT_NOT_FOUND,
 * ACCOUNT_EXISTS, MESSAGE_NOT_FOUND, ATTACHMENT_NOT_FOUND, JOB_NOT_FOUND, PAYLOAD_TOO_LARGE,
 * UNSUPPORTED_MEDIA_TYPE, INTERNAL. A 5xx never says more than `internal error`.
 */
export const ErrorBody = Type.Object(
  {
    error: Type.Object({
      code: Type.String(),
      message: Type.String(),
      field: Type.Optional(Type.String({ description: 'the request part and property at fault: body.port, params.id, querystring.limit' })),
    }),
  },
  { $id: 'Error', description: 'An error' },
);

/**
 * The error responses every route may give; serialized by schema like any other response.
 * A reference to the shared schema (app.addSchema(ErrorBody)), so the OpenAPI document holds
 * it once, as components/schemas/Error.
 */
const ErrorRef = Type.Unsafe<Static<typeof ErrorBody>>({ $ref: 'Error#' });
export const ERRORS = { '4xx': ErrorRef, '5xx': ErrorRef } as const;

/** The OpenAPI response of a route whose body is bytes, not JSON. */
export function bytes(description: string, contentType: string) {
  return { description, content: { [contentType]: { schema: { type: 'string', format: 'binary' } } } };
}
