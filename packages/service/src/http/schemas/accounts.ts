import { Type } from 'typebox';
import { Nullable, Time } from './common.js';

const TLS_MODES = ['implicit', 'starttls', 'none'] as const;
/** The client's mechanisms (packages/client/src/auth/select.ts); USER is USER/PASS. */
const MECHANISMS = ['SCRAM-SHA-256', 'SCRAM-SHA-1', 'CRAM-MD5', 'PLAIN', 'LOGIN', 'APOP', 'USER', 'OAUTHBEARER', 'XOAUTH2'] as const;

/**
 * No CR, LF or NUL: the client refuses them in a command (they would end it early and smuggle
 * another), so they are refused here, with the field named, instead of failing every sync.
 */
const CommandSafe = (options: { minLength: number; maxLength: number; description?: string }) => Type.String({ ...options, pattern: '^[^\\r\\n\\u0000]*$' });
const HttpUrl = Type.String({ format: 'uri', pattern: '^https?://', maxLength: 2048 });

const PasswordCredentials = Type.Object(
  { type: Type.Literal('password'), password: CommandSafe({ minLength: 1, maxLength: 1024 }) },
  { additionalProperties: false },
);
const OAuthCredentials = Type.Object(
  {
    type: Type.Literal('oauth2'),
    accessToken: Type.Optional(CommandSafe({ minLength: 1, maxLength: 8192 })),
    refreshToken: Type.Optional(Type.String({ minLength: 1, maxLength: 8192 })),
    tokenUrl: Type.Optional(HttpUrl),
    clientId: Type.Optional(Type.String({ minLength: 1, maxLength: 1024 })),
    clientSecret: Type.Optional(Type.String({ minLength: 1, maxLength: 1024 })),
  },
  { additionalProperties: false },
);

const Policy = Type.Object(
  {
    retention: Type.Enum(['leave', 'delete', 'keep'], { description: 'leave messages on the server, delete them once stored, or keep them keepDays days' }),
    keepDays: Type.Optional(Nullable(Type.Integer({ minimum: 1, maximum: 36_500 }))),
    maxSize: Type.Optional(Nullable(Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER, description: 'octets; larger messages are not retrieved' }))),
    oversize: Type.Optional(Type.Enum(['skip', 'headers'], { description: 'what to keep of a message over maxSize' })),
  },
  { additionalProperties: false },
);

const Webhook = Type.Object(
  { url: HttpUrl, secret: Type.String({ minLength: 16, maxLength: 1024, description: 'HMAC-SHA256 key of the signature; never shown again' }) },
  { additionalProperties: false },
);

const DestinationCredentials = Type.Union(
  [
    Type.Object(
      { type: Type.Literal('password'), user: Type.Optional(CommandSafe({ minLength: 1, maxLength: 320 })), password: CommandSafe({ minLength: 1, maxLength: 1024 }) },
      { additionalProperties: false },
    ),
    Type.Object(
      { type: Type.Literal('oauth2'), user: Type.Optional(CommandSafe({ minLength: 1, maxLength: 320 })), accessToken: CommandSafe({ minLength: 1, maxLength: 8192 }) },
      { additionalProperties: false },
    ),
  ],
  { description: 'SMTP AUTH or the IMAP login (a password, or an OAuth access token for XOAUTH2); write-only, sealed at rest, never returned. Given again without credentials, a destination keeps its own' },
);

const DestinationInput = Type.Object(
  {
    spec: CommandSafe({
      minLength: 3,
      maxLength: 2048,
      description:
        'lmtp:HOST[:PORT], lmtp:unix:/PATH, smtp:HOST[:PORT], smtps:HOST[:PORT], imap(s)://USER@HOST[:PORT]/FOLDER, maildir:/DIR, mda:/ABSOLUTE/COMMAND ARGS. MDA commands, Maildir folders and Unix sockets only where the operator allows them (config destinations); network hosts pass the network policy (network.allow)',
    }),
    to: Type.Optional(CommandSafe({ minLength: 1, maxLength: 320, description: "the envelope recipient (RCPT TO, the MDA's %T); default: the account's username" })),
    credentials: Type.Optional(DestinationCredentials),
    uidHeader: Type.Optional(Type.Boolean({ description: 'prepend X-Popwire-UID so that the destination can drop a duplicate; default true' })),
    seen: Type.Optional(Type.Boolean({ description: 'IMAP: store the message as \\Seen' })),
    tlsInsecure: Type.Optional(Type.Boolean({ description: 'accept a certificate that does not verify' })),
    allowPlaintext: Type.Optional(Type.Boolean({ description: 'hand messages to a non-loopback server without TLS' })),
  },
  { additionalProperties: false },
);

const Destinations = Type.Array(DestinationInput, {
  maxItems: 8,
  description: 'Where each stored message is handed over; a message is deleted from the server only once every destination accepted it. The whole list: a destination left out is removed',
});

const changeable = {
  name: Type.String({ minLength: 1, maxLength: 200 }),
  tls: Type.Enum(TLS_MODES, { description: 'implicit (port 995), starttls (STLS on port 110) or none; default implicit' }),
  auth: Nullable(Type.Enum(MECHANISMS, { description: 'the login mechanism; null or absent: the strongest the server offers' })),
  credentials: Type.Union([PasswordCredentials, OAuthCredentials], { description: 'write-only: never returned' }),
  syncInterval: Nullable(
    Type.Integer({
      minimum: 1,
      maximum: 31_536_000,
      description: "seconds between syncs; null: only on request; default 300. At least the service's sync.minInterval (default 60), else a 400; never more often than the server's LOGIN-DELAY",
    }),
  ),
  policy: Policy,
  webhook: Nullable(Webhook),
  paused: Type.Boolean(),
  allowPlaintextAuth: Type.Boolean({ description: 'allow a password to be sent without TLS' }),
  tlsInsecure: Type.Boolean({ description: 'accept a certificate that does not verify' }),
  destinations: Destinations,
  skipExisting: Type.Boolean({ description: "the account's first sync records the messages on the server as seen without retrieving them: only mail that arrives later is stored and delivered" }),
};

export const AccountInput = Type.Object(
  {
    name: changeable.name,
    host: Type.String({ minLength: 1, maxLength: 253, pattern: '^[^\\s/@]+$' }),
    port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
    tls: Type.Optional(changeable.tls),
    username: CommandSafe({ minLength: 1, maxLength: 320 }),
    auth: Type.Optional(changeable.auth),
    credentials: changeable.credentials,
    syncInterval: Type.Optional(changeable.syncInterval),
    policy: Type.Optional(changeable.policy),
    webhook: Type.Optional(changeable.webhook),
    paused: Type.Optional(changeable.paused),
    allowPlaintextAuth: Type.Optional(changeable.allowPlaintextAuth),
    tlsInsecure: Type.Optional(changeable.tlsInsecure),
    destinations: Type.Optional(changeable.destinations),
    skipExisting: Type.Optional(changeable.skipExisting),
  },
  { additionalProperties: false },
);

/** Host, port and user name the mailbox: to change them, make a new account. */
export const AccountChange = Type.Object(
  {
    name: Type.Optional(changeable.name),
    tls: Type.Optional(changeable.tls),
    auth: Type.Optional(changeable.auth),
    credentials: Type.Optional(changeable.credentials),
    syncInterval: Type.Optional(changeable.syncInterval),
    policy: Type.Optional(changeable.policy),
    webhook: Type.Optional(changeable.webhook),
    paused: Type.Optional(changeable.paused),
    allowPlaintextAuth: Type.Optional(changeable.allowPlaintextAuth),
    tlsInsecure: Type.Optional(changeable.tlsInsecure),
    destinations: Type.Optional(changeable.destinations),
    skipExisting: Type.Optional(changeable.skipExisting),
  },
  { additionalProperties: false },
);

const DestinationView = Type.Object(
  {
    id: Type.Integer(),
    kind: Type.Enum(['mda', 'lmtp', 'smtp', 'imap', 'maildir']),
    spec: Type.String(),
    to: Nullable(Type.String()),
    credentialType: Nullable(Type.Enum(['password', 'oauth2'])),
    uidHeader: Type.Boolean(),
    seen: Type.Boolean(),
    tlsInsecure: Type.Boolean(),
    allowPlaintext: Type.Boolean(),
  },
  { description: 'A destination, without its credentials' },
);

/** An account as returned: no secret is in this schema, so none can be serialized. */
export const AccountView = Type.Object(
  {
    id: Type.Integer(),
    name: Type.String(),
    host: Type.String(),
    port: Type.Integer(),
    tls: Type.Enum(TLS_MODES),
    username: Type.String(),
    auth: Nullable(Type.String()),
    credentialType: Nullable(Type.Enum(['password', 'oauth2'])),
    syncInterval: Nullable(Type.Integer()),
    policy: Type.Object({
      retention: Type.Enum(['leave', 'delete', 'keep']),
      keepDays: Nullable(Type.Integer()),
      maxSize: Nullable(Type.Integer()),
      oversize: Type.Enum(['skip', 'headers']),
    }),
    policyOwner: Type.Enum(['api', 'cli'], {
      description: 'who set the policy last: api, or cli (popwire sync made the account, or replaced its policy with --replace-policy); popwire sync changes an api policy only when told to',
    }),
    webhookUrl: Nullable(Type.String()),
    paused: Type.Boolean(),
    needsAttention: Type.Boolean({ description: 'the server rejected the credentials; not synced until they change' }),
    statusNote: Nullable(Type.String()),
    identity: Nullable(Type.String()),
    loginDelay: Nullable(Type.Integer({ description: "the server's LOGIN-DELAY (seconds, from CAPA at the last login): scheduled syncs never come more often" })),
    retryAfter: Nullable(Time),
    nextSyncAt: Nullable(Time),
    createdAt: Time,
    updatedAt: Time,
    destinations: Type.Array(DestinationView),
    skipExisting: Type.Boolean(),
  },
  { description: 'An account, without its credentials or webhook secret' },
);

export const MessageDeliveries = Type.Object(
  {
    deliveries: Type.Array(
      Type.Object({
        destinationId: Type.Integer(),
        key: Type.String({ description: 'the destination, as its spec (no secret)' }),
        kind: Type.String(),
        state: Type.Enum(['pending', 'delivered', 'temporary', 'permanent']),
        attempts: Type.Integer(),
        reply: Nullable(Type.String({ description: "the destination's words for its last answer: `452 4.2.2 Mailbox full`, an MDA's exit and stderr" })),
        updatedAt: Nullable(Time),
      }),
    ),
  },
  { description: "The message's delivery to each destination of its account" },
);

export const AccountList = Type.Object({ accounts: Type.Array(AccountView) }, { description: 'The accounts (not the deleted ones), by id' });

export const DeleteQuery = Type.Object(
  { keepMessages: Type.Boolean({ description: 'keep the stored messages readable (true) or delete them with the account (false)' }) },
  { additionalProperties: false },
);

const TestError = Type.Object({ code: Type.String(), message: Type.String(), responseCode: Type.Optional(Type.String()) });
const STEPS = ['dns', 'tcp', 'tls', 'greeting', 'capa', 'login', 'stat'] as const;

/** Pop3Client.test's report (packages/client/src/connection-test.ts), dates as ISO 8601. */
export const ConnectionTestReport = Type.Object(
  {
    ok: Type.Boolean(),
    host: Type.String(),
    port: Type.Integer(),
    tls: Type.Enum(TLS_MODES),
    steps: Type.Array(
      Type.Object({
        step: Type.Enum(STEPS),
        ok: Type.Boolean(),
        ms: Type.Number(),
        detail: Type.Optional(Type.String()),
        mechanism: Type.Optional(Type.String()),
        certificate: Type.Optional(
          Type.Object({
            subject: Type.String(),
            issuer: Type.String(),
            validFrom: Type.String({ format: 'date-time' }),
            validTo: Type.String({ format: 'date-time' }),
            daysLeft: Type.Integer(),
            altNames: Type.Optional(Type.String()),
            fingerprint256: Type.String(),
          }),
        ),
        error: Type.Optional(TestError),
      }),
    ),
    failedStep: Type.Optional(Type.Enum(STEPS)),
    error: Type.Optional(TestError),
  },
  { description: 'The connection test report; ok: false with failedStep when a step failed' },
);
