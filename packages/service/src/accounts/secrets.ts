import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';

/**
 * Secrets at rest: AES-256-GCM under a key ring.
 *
 * Sealed text: `v1.<key id>.<iv>.<tag>.<ciphertext>` (base64url parts). The key id (the first 8
 * hex digits of the key's SHA-256) says which key of the ring opens it, so keys can be rotated:
 * the first key of the ring seals, every key opens, and `popwire keys rotate` re-seals
 * whatever an older key sealed. A fresh 96-bit IV per seal (NIST SP 800-38D's recommended
 * size); the 128-bit tag makes a changed byte fail to open instead of decrypting to garbage.
 * The context (`aad`) binds a sealed value to where it belongs, so a ciphertext copied from one
 * account's row to another's does not open there.
 */
export class SecretBox {
  private readonly keys: ReadonlyMap<string, Buffer>;
  readonly currentKeyId: string;

  constructor(ring: readonly Buffer[]) {
    if (ring.length === 0) throw new SecretKeyError('no secret key: set POPWIRE_SECRET_KEY or secretKeyFile');
    for (const key of ring) if (key.length !== 32) throw new SecretKeyError(`a secret key must be 32 bytes; got ${key.length}`);
    this.keys = new Map(ring.map((key) => [keyId(key), key]));
    this.currentKeyId = keyId(ring[0]!);
  }

  seal(plaintext: string, aad: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.keys.get(this.currentKeyId)!, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(Buffer.from(aad, 'utf8'));
    const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return ['v1', this.currentKeyId, iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), ciphertext.toString('base64url')].join('.');
  }

  open(sealed: string, aad: string): string {
    const [version, id, iv, tag, ciphertext] = sealed.split('.');
    if (version !== 'v1' || id === undefined || iv === undefined || tag === undefined || ciphertext === undefined) {
      throw new SecretKeyError('a stored secret is not in a form this version can read');
    }
    const key = this.keys.get(id);
    if (key === undefined) throw new SecretKeyError(`a stored secret was sealed with key ${id}, which is not in the key ring`, { keyId: id });
    const authTag = Buffer.from(tag, 'base64url');
    // Node accepts GCM tags of 4 to 16 bytes unless told the length: a forger who may shorten
    // the tag to 4 bytes needs about 2^32 tries instead of 2^128. Ours are always 16.
    if (authTag.length !== TAG_BYTES) throw new SecretKeyError('a stored secret failed its integrity check (wrong key, or changed)');
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'), { authTagLength: TAG_BYTES });
      decipher.setAAD(Buffer.from(aad, 'utf8'));
      decipher.setAuthTag(authTag);
      return Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]).toString('utf8');
    } catch (cause) {
      throw new SecretKeyError('a stored secret failed its integrity check (wrong key, or changed)', { cause });
    }
  }

  /** Whether a key of the ring has this id. */
  has(id: string): boolean {
    return this.keys.has(id);
  }

  /** Whether the current key sealed this (else rotation re-seals it). */
  isCurrent(sealed: string): boolean {
    return sealed.split('.')[1] === this.currentKeyId;
  }
}

export class SecretKeyError extends Error {
  override readonly name = 'SecretKeyError';
  readonly code = 'SECRET_KEY_INVALID';
  /** The id of the key a secret was sealed with, when that key is not in the ring. */
  readonly keyId: string | undefined;
  constructor(message: string, options: ErrorOptions & { keyId?: string } = {}) {
    super(message, options);
    this.keyId = options.keyId;
  }
}

/** The id of the key that sealed this value (`v1.<key id>.…`), or undefined if it is not sealed text. */
export function sealedKeyId(sealed: string): string | undefined {
  const [version, id] = sealed.split('.');
  return version === 'v1' && id !== undefined && /^[0-9a-f]{8}$/.test(id) ? id : undefined;
}

/** GCM's full 128-bit tag (NIST SP 800-38D): never a shorter one. */
const TAG_BYTES = 16;

export function keyId(key: Buffer): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 8);
}

/**
 * The key ring from its text: keys separated by commas or new lines, first one current, each 32
 * bytes as base64 (44 characters) or hex (64). Lines starting with # are comments.
 */
export function parseKeyRing(text: string): Buffer[] {
  return text
    .split(/[\n,]/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const key = /^[0-9a-f]{64}$/i.test(line) ? Buffer.from(line, 'hex') : Buffer.from(line, 'base64');
      if (key.length !== 32) throw new SecretKeyError('each secret key must be 32 bytes, written as 64 hex digits or 44 base64 characters');
      return key;
    });
}

/** POPWIRE_SECRET_KEY wins over the key file; the file is read once, at start. */
export function loadKeyRing(source: { env?: string | undefined; file?: string | undefined }): Buffer[] {
  if (source.env !== undefined && source.env.trim() !== '') return parseKeyRing(source.env);
  if (source.file !== undefined) {
    let text: string;
    try {
      text = readFileSync(source.file, 'utf8');
    } catch (cause) {
      throw new SecretKeyError(`cannot read the secret key file ${source.file}: ${(cause as Error).message}`, { cause });
    }
    return parseKeyRing(text);
  }
  return [];
}

/** A new random key, as base64: what `popwire keys generate` prints. */
export function generateKey(): string {
  return randomBytes(32).toString('base64');
}
