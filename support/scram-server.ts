/**
 * The server side of SCRAM-SHA-1 / SCRAM-SHA-256 (RFC 5802, RFC 7677), for scripted-server tests:
 * it checks the client's proof as a real server would, and can be told to send a wrong server
 * signature, to play an impostor (a test that wants no signature at all just says +OK instead).
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';

export type ScramHash = 'sha1' | 'sha256';

export interface ScramServerOptions {
  readonly hash: ScramHash;
  readonly password: string;
  readonly iterations?: number;
  /** `wrong`: a signature computed from another password, as an impostor would have to. */
  readonly signature?: 'right' | 'wrong';
}

export interface ScramServer {
  /** Takes the client-first message (decoded), returns the server-first message. */
  first(clientFirst: string): string;
  /** Takes the client-final message, returns the server-final one (`v=...`, or `e=invalid-proof`). */
  final(clientFinal: string): string;
  /** The user name from the client-first message, still escaped (`=2C`, `=3D`). */
  readonly user: string;
  /** Whether the client's proof was right. */
  readonly proofOk: boolean;
}

export function scramServer(options: ScramServerOptions): ScramServer {
  const { hash } = options;
  const length = hash === 'sha1' ? 20 : 32;
  const iterations = options.iterations ?? 4096;
  const salt = randomBytes(16);
  let clientFirstBare = '';
  let serverFirst = '';
  let nonce = '';
  let user = '';
  let proofOk = false;
  const hmac = (key: Buffer, data: string) => createHmac(hash, key).update(data).digest();
  const salted = (password: string) => pbkdf2Sync(password, salt, iterations, length, hash);
  return {
    first(clientFirst) {
      if (!clientFirst.startsWith('n,,')) throw new Error(`unexpected GS2 header in ${clientFirst}`);
      clientFirstBare = clientFirst.slice(3);
      const match = /^n=([^,]*),r=([^,]+)$/.exec(clientFirstBare);
      if (match === null) throw new Error(`bad client-first message ${clientFirst}`);
      user = match[1] as string;
      nonce = `${match[2]}${randomBytes(12).toString('base64')}`;
      serverFirst = `r=${nonce},s=${salt.toString('base64')},i=${iterations}`;
      return serverFirst;
    },
    final(clientFinal) {
      const match = /^(c=biws,r=([^,]+)),p=(.+)$/.exec(clientFinal);
      if (match === null || match[2] !== nonce) throw new Error(`bad client-final message ${clientFinal}`);
      const authMessage = `${clientFirstBare},${serverFirst},${match[1]}`;
      const key = salted(options.password);
      const clientKey = hmac(key, 'Client Key');
      const signature = hmac(createHash(hash).update(clientKey).digest(), authMessage);
      const proof = Buffer.from(match[3] as string, 'base64');
      const recovered = Buffer.from(proof.map((byte, i) => byte ^ (signature[i] as number)));
      proofOk = createHash(hash).update(recovered).digest().equals(createHash(hash).update(clientKey).digest());
      if (!proofOk) return 'e=invalid-proof';
      const serverKey = hmac(options.signature === 'wrong' ? salted(`not ${options.password}`) : key, 'Server Key');
      return `v=${hmac(serverKey, authMessage).toString('base64')}`;
    },
    get user() {
      return user;
    },
    get proofOk() {
      return proofOk;
    },
  };
}
