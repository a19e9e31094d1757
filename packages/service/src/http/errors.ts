import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import { AccountError } from '../accounts/service.js';
import { JobNotFoundError } from '../jobs/scheduler.js';
import { StoreError } from '../store/errors.js';

/** An error a route throws on purpose: its status, code and message are for the client. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    /** `body.port`, `params.id`, `querystring.cursor`... */
    readonly field?: string,
  ) {
    super(message);
  }
}

interface ErrorReply {
  readonly status: number;
  readonly code: string;
  readonly message: string;
  readonly field?: string | undefined;
}

/**
 * One error handler for the whole API. What a client may read is decided here and only here:
 * errors we threw on purpose, and Fastify's own 4xx (bad JSON, wrong media type, too large).
 * Anything else is a 500 that says `internal error`; its details (a database error may quote
 * SQL, a path, a host) go to the log only.
 */
export function installErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const known = describe(error);
    if (known === undefined) {
      request.log.error({ err: error }, 'request failed');
      return send(reply, { status: 500, code: 'INTERNAL', message: 'internal error' });
    }
    // No `err`: a validation error's details are in the reply already, and nothing of the body is logged.
    request.log.info({ code: known.code, field: known.field }, known.message);
    if (known.code === 'UNAUTHORIZED') reply.header('www-authenticate', 'Bearer realm="popwire"');
    return send(reply, known);
  });
  app.setNotFoundHandler((request, reply) => send(reply, { status: 404, code: 'NOT_FOUND', message: `no route ${request.method} ${request.url.split('?')[0]}` }));
}

function send(reply: FastifyReply, error: ErrorReply) {
  return reply.code(error.status).send({ error: { code: error.code, message: error.message, ...(error.field ? { field: error.field } : {}) } });
}

function describe(error: FastifyError): ErrorReply | undefined {
  if (error.validation !== undefined) return validation(error);
  if (error instanceof ApiError) return { status: error.statusCode, code: error.code, message: error.message, field: error.field };
  if (error instanceof AccountError) {
    if (error.code === 'ACCOUNT_INVALID') {
      const field = error.field === undefined ? undefined : `body.${error.field}`;
      return { status: 400, code: 'INVALID_REQUEST', message: field === undefined ? error.message : `${field}: ${error.message}`, field };
    }
    return { status: error.code === 'ACCOUNT_EXISTS' ? 409 : 404, code: error.code, message: error.message };
  }
  if (error instanceof StoreError && error.code === 'STORE_MESSAGE_NOT_FOUND') return { status: 404, code: 'MESSAGE_NOT_FOUND', message: error.message };
  if (error instanceof StoreError && error.code === 'STORE_ACCOUNT_NOT_FOUND') return { status: 404, code: 'ACCOUNT_NOT_FOUND', message: error.message };
  if (error instanceof JobNotFoundError) return { status: 404, code: 'JOB_NOT_FOUND', message: error.message };
  // Fastify's own request errors (FST_ERR_CTP_*: unparsable JSON, media type, size): their messages are about the request.
  if (typeof error.code === 'string' && error.code.startsWith('FST_') && error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
    return { status: error.statusCode, code: FASTIFY_CODES[error.statusCode] ?? 'INVALID_REQUEST', message: error.message };
  }
  return undefined;
}

const FASTIFY_CODES: Record<number, string> = { 404: 'NOT_FOUND', 413: 'PAYLOAD_TOO_LARGE', 415: 'UNSUPPORTED_MEDIA_TYPE' };

/**
 * A schema error, as `body.port: must be <= 65535`. Of the issues the validator found, the first
 * that names a property: `boolean` issues (from `additionalProperties: false`) repeat the
 * `additionalProperties` one, and `anyOf` ones only say a branch did not match after the
 * branch's own issue was reported.
 */
function validation(error: FastifyError): ErrorReply {
  const issues = error.validation ?? [];
  const issue = issues.find((i) => i.keyword !== 'boolean' && i.keyword !== 'anyOf') ?? issues[0];
  const context = error.validationContext ?? 'request';
  if (issue === undefined) return { status: 400, code: 'INVALID_REQUEST', message: error.message, field: context };
  const path = issue.instancePath
    .split('/')
    .slice(1)
    .map((part) => part.replaceAll('~1', '/').replaceAll('~0', '~'));
  const named = firstOf(issue.params.requiredProperties) ?? firstOf(issue.params.additionalProperties);
  if (named !== undefined) path.push(named);
  const field = [context, ...path].join('.');
  let message = `${field}: ${issue.keyword === 'required' ? 'is required' : issue.keyword === 'additionalProperties' ? 'is not allowed' : issue.message ?? 'is invalid'}`;
  if (Array.isArray(issue.params.allowedValues)) message += `: ${issue.params.allowedValues.join(', ')}`;
  return { status: 400, code: 'INVALID_REQUEST', message, field };
}

function firstOf(value: unknown): string | undefined {
  return Array.isArray(value) && typeof value[0] === 'string' ? value[0] : undefined;
}

/** For handlers that must say which request part is wrong after the schema let it through. */
export function invalid(field: string, message: string): ApiError {
  return new ApiError(400, 'INVALID_REQUEST', `${field}: ${message}`, field);
}
