import { createHash, createHmac, pbkdf2, randomBytes, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import { Pop3ProtocolError } from '../errors.js';
import type { Sensitive } from '../protocol/command.js';
import { badChallenge, escapeSaslName, type SaslMechanism } from './sasl.js';
import { saslPrep } from './saslprep.js';

const pbkdf2Async = promisify(pbkdf2);

export type ScramHash = 'sha1' | 'sha256';

const MECHANISM = { sha1: 'SCRAM-SHA-1', sha256: 'SCRAM-SHA-256' } as const;
const DIGEST_LENGTH = { sha1: 20, sha256: 32 } as const;

/**
 * RFC 7677 section 4: a server SHOULD use at least 4096 iterations. Fewer make a captured exchange
 * cheap to brute-force; an impostor who asks for 1 would get the proof at the price of one HMAC
 * per guess. Refused.
 */
const MIN_ITERATIONS = 4096;
/**
 * PBKDF2 runs on libuv's thread pool, but a hostile server could ask for 2^31 rounds and keep a
 * worker busy for many minutes. A million is about half a second of SHA-256 on one core, above
 * the 600,000 OWASP recommends for stored hashes.
 */
const MAX_ITERATIONS = 1_000_000;

/** RFC 5802 section 7: a printable character other than ",". */
const NONCE = /^[\x21-\x2b\x2d-\x7e]+$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** No channel binding (RFC 5802 section 6): gs2-cbind-flag "n", no authzid. */
const GS2_HEADER = 'n,,';

export interface ScramOptions {
  /** The client nonce; random unless a test pins it to reproduce RFC 5802/7677's examples. */
  readonly nonce?: string;
}

/**
 * SCRAM-SHA-1 (RFC 5802) and SCRAM-SHA-256 (RFC 7677), without channel binding (the -PLUS
 * variants are not offered). The password never crosses the wire, and the server must prove in
 * its final message that it knows it too: an impostor that cannot is refused, and the connection
 * closed, even if it says +OK.
 */
export function scram(hash: ScramHash, user: string, password: Sensitive, options: ScramOptions = {}): SaslMechanism {
  const name = MECHANISM[hash];
  const nonce = options.nonce ?? randomBytes(24).toString('base64');
  let clientFirstBare = '';
  let normalizedPassword = '';
  let serverSignature: Buffer | undefined;
  let stage: 'server-first' | 'server-final' | 'done' = 'server-first';
  let verified = false;
  let failureDetail: string | undefined;
  return {
    name,
    async start() {
      // RFC 5802 section 5.1: the user name is SASLprepped, then "=" and "," are escaped.
      clientFirstBare = `n=${escapeSaslName(saslPrep(user, 'user name'))},r=${nonce}`;
      normalizedPassword = saslPrep(password.reveal(), 'password');
      return Buffer.from(GS2_HEADER + clientFirstBare, 'utf8');
    },
    async step(challenge) {
      const message = challenge.toString('utf8');
      if (stage === 'server-first') {
        stage = 'server-final';
        const { final, signature } = await clientFinal(hash, message, nonce, clientFirstBare, normalizedPassword);
        serverSignature = signature;
        return final;
      }
      if (stage === 'server-final') {
        stage = 'done';
        // RFC 5802 section 7: server-final-message = (server-error / verifier) ["," extensions].
        const [first = ''] = message.split(',');
        if (first.startsWith('e=')) {
          // The server's reason, e.g. "invalid-proof" (RFC 5802 section 7); its -ERR follows our
          // empty answer and carries the response code.
          failureDetail = `server says ${first.slice(2)}`;
          return Buffer.alloc(0);
        }
        if (!first.startsWith('v=') || !BASE64.test(first.slice(2))) {
          throw badChallenge(name, 'the server-final message has no verifier');
        }
        const received = Buffer.from(first.slice(2), 'base64');
        const expected = serverSignature as Buffer;
        if (received.length !== expected.length || !timingSafeEqual(received, expected)) throw wrongSignature(name);
        verified = true;
        // RFC 5034 section 4: additional data with success comes as a challenge; the answer is empty.
        return Buffer.alloc(0);
      }
      throw badChallenge(name, 'the server sent a challenge after its final message');
    },
    isComplete() {
      // The answer to server-final: empty, sent after the signature was checked (or after e=).
      return stage === 'done';
    },
    finish() {
      if (!verified) {
        throw new Pop3ProtocolError(`${name}: the server said +OK without proving it knows the password (no server signature)`, {
          code: 'POP3_SASL_SERVER_SIGNATURE',
        });
      }
    },
    get failureDetail() {
      return failureDetail;
    },
  };
}

async function clientFinal(
  hash: ScramHash,
  serverFirst: string,
  nonce: string,
  clientFirstBare: string,
  password: string,
): Promise<{ final: Buffer; signature: Buffer }> {
  const name = MECHANISM[hash];
  const attributes = serverFirst.split(',');
  // RFC 5802 section 5.1: "m" announces a mandatory extension; a client that does not know it
  // must fail.
  if (attributes[0]?.startsWith('m=')) throw badChallenge(name, 'the server requires an extension (m=) this client does not know');
  const [r, s, i] = attributes;
  if (r === undefined || !r.startsWith('r=') || s === undefined || !s.startsWith('s=') || i === undefined || !i.startsWith('i=')) {
    throw badChallenge(name, 'the server-first message is not "r=...,s=...,i=..."');
  }
  const combinedNonce = r.slice(2);
  // RFC 5802 section 5.1: the server's nonce must start with ours, and add to it.
  if (!combinedNonce.startsWith(nonce) || combinedNonce.length === nonce.length || !NONCE.test(combinedNonce)) {
    throw badChallenge(name, 'the server nonce does not extend the client nonce');
  }
  const saltText = s.slice(2);
  if (saltText.length === 0 || !BASE64.test(saltText)) throw badChallenge(name, 'the salt is not base64');
  if (!/^[1-9][0-9]{0,9}$/.test(i.slice(2))) throw badChallenge(name, 'the iteration count is not a number');
  const iterations = Number(i.slice(2));
  if (iterations < MIN_ITERATIONS || iterations > MAX_ITERATIONS) {
    throw badChallenge(name, `the iteration count ${iterations} is outside ${MIN_ITERATIONS}..${MAX_ITERATIONS}`);
  }
  // RFC 5802 section 3: SaltedPassword := Hi(Normalize(password), salt, i), and Hi is PBKDF2.
  const salted = await pbkdf2Async(Buffer.from(password, 'utf8'), Buffer.from(saltText, 'base64'), iterations, DIGEST_LENGTH[hash], hash);
  const clientKey = hmac(hash, salted, 'Client Key');
  const storedKey = createHash(hash).update(clientKey).digest();
  const withoutProof = `c=${Buffer.from(GS2_HEADER).toString('base64')},r=${combinedNonce}`;
  const authMessage = `${clientFirstBare},${serverFirst},${withoutProof}`;
  const clientSignature = hmac(hash, storedKey, authMessage);
  const proof = Buffer.alloc(clientKey.length);
  for (let n = 0; n < proof.length; n++) proof[n] = (clientKey[n] as number) ^ (clientSignature[n] as number);
  return {
    final: Buffer.from(`${withoutProof},p=${proof.toString('base64')}`, 'utf8'),
    signature: hmac(hash, hmac(hash, salted, 'Server Key'), authMessage),
  };
}

function hmac(hash: ScramHash, key: Buffer, data: string): Buffer {
  return createHmac(hash, key).update(data, 'utf8').digest();
}

function wrongSignature(name: string): Pop3ProtocolError {
  return new Pop3ProtocolError(
    `${name}: the server's signature is wrong, so it does not know the password: it may be an impostor`,
    { code: 'POP3_SASL_SERVER_SIGNATURE' },
  );
}
