/**
 * `popwire-service/webhooks`: what a webhook receiver needs, and nothing else. Importing it loads
 * node:crypto only (not the service, its database drivers or native modules), so a receiver can
 * depend on popwire-service for this alone.
 *
 *   import { verifySignature, SIGNATURE_HEADER } from 'popwire-service/webhooks';
 *   if (!verifySignature(secret, request.headers['popwire-signature'], rawBody)) refuse(401);
 *
 * The scheme is described in ./delivery/signature.ts; signatureHeader() is there for a receiver's
 * own tests.
 */
export { DEFAULT_TOLERANCE_SECONDS, SIGNATURE_HEADER, signatureHeader, verifySignature } from './delivery/signature.js';
