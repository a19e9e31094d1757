import type { Capabilities } from '../capabilities.js';
import { Pop3AuthenticationError, Pop3UsageError } from '../errors.js';

/**
 * The mechanisms a password can log in with, strongest first: SCRAM (RFC 5802, 7677) proves the
 * password without revealing it and authenticates the server; CRAM-MD5 (RFC 2195) hides it behind
 * a fast hash; PLAIN (RFC 4616) and LOGIN send it as is, but within one SASL exchange; APOP (RFC
 * 1939 section 7) hides it behind MD5; USER/PASS is the base protocol's clear text.
 */
export const PASSWORD_MECHANISMS = ['SCRAM-SHA-256', 'SCRAM-SHA-1', 'CRAM-MD5', 'PLAIN', 'LOGIN', 'APOP', 'USER'] as const;
/**
 * The mechanisms an OAuth 2.0 access token can log in with. OAUTHBEARER (RFC 7628) first: it is the
 * standard, names the host and port the token is meant for, and defines its failure exchange;
 * XOAUTH2 is its vendor predecessor, which Office 365 offers alone and Gmail beside it.
 */
export const TOKEN_MECHANISMS = ['OAUTHBEARER', 'XOAUTH2'] as const;

export type PasswordMechanism = (typeof PASSWORD_MECHANISMS)[number];
export type TokenMechanism = (typeof TOKEN_MECHANISMS)[number];
/** How popwire can log in: a SASL mechanism, `APOP`, or `USER` (USER/PASS). */
export type AuthMechanism = PasswordMechanism | TokenMechanism;
export type SaslMechanismName = Exclude<AuthMechanism, 'APOP' | 'USER'>;

/**
 * Mechanisms allowed on a connection without TLS although the caller did not opt in: SCRAM alone.
 * The others either reveal the secret (PLAIN, LOGIN, USER, XOAUTH2, OAUTHBEARER) or hand an
 * eavesdropper an MD5 digest to test guesses against at billions a second (CRAM-MD5, APOP).
 * SCRAM's proof is salted and iterated (4096 rounds at least), and its server signature unmasks an
 * impostor; what it cannot do is protect the session after login, which `tls: 'none'` gave up.
 */
const SAFE_WITHOUT_TLS: ReadonlySet<AuthMechanism> = new Set(['SCRAM-SHA-256', 'SCRAM-SHA-1']);

export interface ServerOffer {
  readonly capabilities: Capabilities;
  /** From the greeting; undefined when it has none (see apop.ts). */
  readonly apopTimestamp: string | undefined;
}

export interface Channel {
  readonly secure: boolean;
  readonly allowPlaintextAuth: boolean;
  readonly host: string;
}

/**
 * A mechanism name as a caller (or a URL's `;AUTH=`) writes it, case-insensitive. RFC 2384 section
 * 4 writes APOP as `+APOP` in a URL; `USER` stands for USER/PASS.
 */
export function parseAuthMechanism(name: string): AuthMechanism {
  const upper = String(name).toUpperCase();
  const known: readonly string[] = [...PASSWORD_MECHANISMS, ...TOKEN_MECHANISMS];
  if (upper === '+APOP') return 'APOP';
  if (known.includes(upper)) return upper as AuthMechanism;
  throw new Pop3UsageError(`Unknown authentication mechanism ${JSON.stringify(name)}; popwire knows ${known.join(', ')}`, {
    code: 'POP3_INVALID_ARGUMENT',
  });
}

/**
 * The mechanisms to try, in order: the one the caller named, or those the server offers and the
 * policy allows, strongest first. Throws, before anything is sent, when there is none. Only a
 * mechanism the server refuses outright (a bare "AUTH X" answered -ERR, nothing of the
 * credentials sent) lets the next one be tried; see authenticate.ts.
 */
export function chooseMechanisms<M extends AuthMechanism>(
  order: readonly M[],
  secret: 'password' | 'access token',
  requested: AuthMechanism | undefined,
  offer: ServerOffer,
  channel: Channel,
): M[] {
  const given = secret === 'password' ? 'a password' : 'an access token';
  if (requested !== undefined) {
    if (!(order as readonly AuthMechanism[]).includes(requested)) {
      const needs = secret === 'password' ? 'an access token' : 'a password';
      throw new Pop3UsageError(`${requested} needs ${needs}, and ${given} was given`, { code: 'POP3_INVALID_ARGUMENT' });
    }
    if (!offers(offer, requested, true)) throw unavailable(`${channel.host} does not offer ${requested}; it offers ${describe(offer)}`);
    if (!allowedOn(channel, requested)) throw plaintextRefused([requested], secret, channel);
    return [requested as M];
  }
  const offered = order.filter((mechanism) => offers(offer, mechanism, false));
  if (offered.length === 0) {
    throw unavailable(`${channel.host} offers no way to log in with ${given}; it offers ${describe(offer)}`);
  }
  const allowed = offered.filter((mechanism) => allowedOn(channel, mechanism));
  if (allowed.length === 0) throw plaintextRefused(offered, secret, channel);
  return allowed;
}

/**
 * Whether the server offers `mechanism`. A server that did not answer CAPA predates RFC 2449: it
 * has USER/PASS (RFC 1939), and may have AUTH (RFC 1734), which is tried only when named.
 */
function offers(offer: ServerOffer, mechanism: AuthMechanism, named: boolean): boolean {
  const caps = offer.capabilities;
  const noCapa = caps.lines.length === 0;
  if (mechanism === 'APOP') return offer.apopTimestamp !== undefined;
  if (mechanism === 'USER') return caps.user || noCapa;
  return caps.sasl.includes(mechanism) || (named && noCapa);
}

function allowedOn(channel: Channel, mechanism: AuthMechanism): boolean {
  return channel.secure || channel.allowPlaintextAuth || SAFE_WITHOUT_TLS.has(mechanism);
}

/** Mechanisms that do not send the secret but an MD5 digest of it (RFC 2195, RFC 1939 section 7). */
const MD5_DIGEST: ReadonlySet<AuthMechanism> = new Set(['CRAM-MD5', 'APOP']);

/** The refusal for `mechanisms`, none of which is allowed on this channel. */
function plaintextRefused(mechanisms: readonly AuthMechanism[], secret: string, channel: Channel): Pop3UsageError {
  const hashed = mechanisms.filter((m) => MD5_DIGEST.has(m));
  const revealed = mechanisms.filter((m) => !MD5_DIGEST.has(m));
  const risks = [
    ...(revealed.length > 0 ? [`${revealed.join(', ')} would send the ${secret} readable`] : []),
    ...(hashed.length > 0 ? [`${hashed.join(', ')} would expose an MD5 digest of it that can be cracked offline`] : []),
  ];
  return new Pop3UsageError(
    `Refusing to log in on the unencrypted connection to ${channel.host}: ${risks.join('; ')}.` +
      " Use tls: 'implicit' or 'starttls', or set allowPlaintextAuth: true to accept the risk.",
    { code: 'POP3_PLAINTEXT_REFUSED' },
  );
}

function describe(offer: ServerOffer): string {
  const all = PASSWORD_MECHANISMS.filter((m) => offers(offer, m, false));
  const others = offer.capabilities.sasl.filter((m) => !(PASSWORD_MECHANISMS as readonly string[]).includes(m));
  const list = [...all, ...others];
  const noCapa = offer.capabilities.lines.length === 0 ? ' (it does not answer CAPA)' : '';
  return `${list.length > 0 ? list.join(', ') : 'nothing: no SASL, APOP or USER'}${noCapa}`;
}

function unavailable(message: string): Pop3AuthenticationError {
  return new Pop3AuthenticationError(message, { code: 'POP3_AUTH_MECHANISM_UNAVAILABLE' });
}
