import { isAbsolute, normalize, sep } from 'node:path';
import type { AddressGuard } from '../net/guard.js';
import {
  DestinationSpecError,
  DestinationUnavailable,
  type Destination,
  type DestinationOptions,
} from '../destinations/destination.js';
import { formatDestination, parseDestination, type DestinationSpec } from '../destinations/spec.js';
import type { Account, AccountDestination } from '../store/schema.js';
import type { Store } from '../store/store.js';
import type { HandoverTarget } from '../sync/handover.js';
import type { SecretBox } from './secrets.js';

/** A destination as an API caller gives it. Its credentials go in, never out. */
export interface DestinationInput {
  /** `lmtp:HOST[:PORT]`, `smtp:…`, `smtps:…`, `imaps://USER@HOST/FOLDER`, `mda:/ABSOLUTE/PATH ARGS`, `maildir:/DIR` (destinations/spec.ts). */
  readonly spec: string;
  /** The envelope recipient; default: the account's user name. */
  readonly to?: string | undefined;
  /** SMTP AUTH or the IMAP login: a password, or an OAuth access token (XOAUTH2). Sealed at rest. */
  readonly credentials?: { readonly type: 'password'; readonly user?: string | undefined; readonly password: string } | { readonly type: 'oauth2'; readonly user?: string | undefined; readonly accessToken: string } | undefined;
  /** Prepend X-Popwire-UID (default true). */
  readonly uidHeader?: boolean | undefined;
  /** IMAP: store with \Seen. */
  readonly seen?: boolean | undefined;
  /** Accept a certificate that does not verify. */
  readonly tlsInsecure?: boolean | undefined;
  /** Hand messages (and an IMAP password) to a non-loopback server without TLS. */
  readonly allowPlaintext?: boolean | undefined;
}

/** A destination as the API shows it. */
export interface DestinationView {
  readonly id: number;
  readonly kind: 'mda' | 'lmtp' | 'smtp' | 'imap' | 'maildir';
  readonly spec: string;
  readonly to: string | null;
  readonly credentialType: 'password' | 'oauth2' | null;
  readonly uidHeader: boolean;
  readonly seen: boolean;
  readonly tlsInsecure: boolean;
  readonly allowPlaintext: boolean;
}

/**
 * What the operator lets API callers use (config `destinations`): running a command, writing
 * under a folder or into a Unix socket of this machine are the operator's decisions, so each is
 * off until listed. Network destinations go through the outbound address guard, like POP3 hosts.
 */
export interface DestinationPolicy {
  /** Absolute paths of the commands an MDA destination may run (its argv[0], exactly). */
  readonly mdaAllow: readonly string[];
  /** Folders under which an API Maildir may be. */
  readonly maildirAllow: readonly string[];
  /** Unix sockets an LMTP destination may use (`lmtp:unix:/PATH`). */
  readonly socketAllow: readonly string[];
  readonly network?: AddressGuard | undefined;
  /** Extra CAs for TLS (config `tls.caFile`), and the per-step timeout. */
  readonly ca?: Buffer | undefined;
  readonly timeoutMs?: number | undefined;
}

/** Stored in `account_destinations.spec`: everything but the secret. */
interface StoredSpec {
  readonly spec: string;
  readonly to: string | null;
  readonly user: string | null;
  readonly uidHeader: boolean;
  readonly seen: boolean;
  readonly tlsInsecure: boolean;
  readonly allowPlaintext: boolean;
  /** The sealed secret's kind, in clear (not a secret): a view opens nothing. */
  readonly credentialType: 'password' | 'oauth2' | null;
}

type Secret = { readonly type: 'password'; readonly password: string } | { readonly type: 'oauth2'; readonly accessToken: string };

export const MAX_DESTINATIONS = 8;

/** Why an API destination is refused: the message names the field (`destinations[1].spec`). */
export class DestinationInputError extends Error {
  override readonly name = 'DestinationInputError';
  constructor(
    message: string,
    readonly field: string,
  ) {
    super(message);
  }
}

/**
 * An account's API destinations: checked against the operator's policy when given, stored with
 * their secrets sealed (bound to the account and the destination), shown without them, and made
 * into open-able destinations for the account's syncs (checked again then: the policy may have
 * changed since).
 */
export class AccountDestinations {
  constructor(
    private readonly store: Store,
    private readonly box: SecretBox,
    private readonly policy: DestinationPolicy,
  ) {}

  /** Parses and checks each; throws DestinationInputError naming the first bad one. */
  check(inputs: readonly DestinationInput[]): DestinationSpec[] {
    if (inputs.length > MAX_DESTINATIONS) throw new DestinationInputError(`at most ${MAX_DESTINATIONS} destinations`, 'destinations');
    const keys = new Set<string>();
    return inputs.map((input, index) => {
      const field = `destinations[${index}]`;
      let spec: DestinationSpec;
      try {
        spec = parseDestination(input.spec);
      } catch (error) {
        if (error instanceof DestinationSpecError) throw new DestinationInputError(error.message, `${field}.spec`);
        throw error;
      }
      this.allowed(spec, `${field}.spec`);
      const key = formatDestination(spec);
      if (keys.has(key)) throw new DestinationInputError(`${key} is listed twice`, `${field}.spec`);
      keys.add(key);
      if (input.credentials !== undefined && spec.kind !== 'smtp' && spec.kind !== 'imap') {
        throw new DestinationInputError(`${spec.kind} takes no credentials (only smtp AUTH and imap)`, `${field}.credentials`);
      }
      if (input.credentials?.type === 'oauth2' && spec.kind !== 'imap') throw new DestinationInputError('an OAuth token is for imap only', `${field}.credentials`);
      return spec;
    });
  }

  /** Replaces the account's list; a destination given again without credentials keeps its sealed ones. */
  async save(account: Pick<Account, 'id' | 'key' | 'username'>, inputs: readonly DestinationInput[], now: number): Promise<void> {
    const specs = this.check(inputs);
    const previous = new Map((await this.store.deliveries.forAccount(account.id, 'api')).map((row) => [row.key, JSON.parse(row.spec) as StoredSpec]));
    await this.store.deliveries.replace(
      account.id,
      inputs.map((input, i) => {
        const spec = specs[i]!;
        const key = formatDestination(spec);
        const stored: StoredSpec = {
          spec: key,
          to: input.to ?? null,
          user: input.credentials?.user ?? null,
          uidHeader: input.uidHeader ?? true,
          seen: input.seen ?? false,
          tlsInsecure: input.tlsInsecure ?? false,
          allowPlaintext: input.allowPlaintext ?? false,
          credentialType: input.credentials?.type ?? previous.get(key)?.credentialType ?? null,
        };
        const secret: Secret | undefined =
          input.credentials === undefined ? undefined : input.credentials.type === 'password' ? { type: 'password', password: input.credentials.password } : { type: 'oauth2', accessToken: input.credentials.accessToken };
        return {
          key,
          kind: spec.kind,
          spec: JSON.stringify(stored),
          credentials: secret === undefined ? undefined : this.box.seal(JSON.stringify(secret), destinationAad(account.key, key)),
        };
      }),
      now,
    );
  }

  async views(accountId: number): Promise<DestinationView[]> {
    return (await this.store.deliveries.forAccount(accountId, 'api')).map(destinationView);
  }

  /** Every account's views, by account id, in one query. */
  async viewsByAccount(): Promise<Map<number, DestinationView[]>> {
    const rows = await this.store.deliveries.byAccount('api');
    return new Map([...rows].map(([accountId, list]) => [accountId, list.map(destinationView)]));
  }

  /**
   * The account's destinations, ready for a sync. Each is checked against the policy again, and
   * a network one resolves its host through the address guard when it opens: a refused address
   * fails the run (DestinationUnavailable), and nothing undelivered is deleted. Between that
   * check and the destination's own connect a DNS answer could change (nodemailer and ImapFlow
   * resolve for themselves); IP literals and names the operator allowed are not affected.
   */
  async targets(account: Account, openDestination: (spec: DestinationSpec, options: DestinationOptions) => Promise<Destination>): Promise<{ targets: HandoverTarget[]; uidHeader: boolean }> {
    const rows = await this.store.deliveries.forAccount(account.id, 'api');
    const targets: HandoverTarget[] = [];
    let uidHeader = true;
    for (const row of rows) {
      const stored = JSON.parse(row.spec) as StoredSpec;
      const spec = parseDestination(stored.spec);
      const secret = row.credentials === null ? undefined : (JSON.parse(this.box.open(row.credentials, destinationAad(account.key, row.key))) as Secret);
      const options: DestinationOptions = {
        tls: { ca: this.policy.ca, insecure: stored.tlsInsecure, allowPlaintext: stored.allowPlaintext },
        timeoutMs: this.policy.timeoutMs,
        seen: stored.seen,
        ...(secret === undefined ? {} : { auth: { ...(stored.user === null ? {} : { user: stored.user }), ...(secret.type === 'password' ? { password: secret.password } : { accessToken: secret.accessToken }) } }),
      };
      let destination = await openDestination(spec, options);
      destination = this.guarded(spec, destination);
      // One header setting for the run: a destination that wants none makes none carry it.
      if (!stored.uidHeader) uidHeader = false;
      targets.push({ row, destination, recipient: stored.to ?? account.username });
    }
    return { targets, uidHeader };
  }

  /** The policy, at run time: refusals make the destination unavailable (the run fails, nothing undelivered is deleted). */
  private guarded(spec: DestinationSpec, destination: Destination): Destination {
    const guard = this.policy.network;
    const host = spec.kind === 'smtp' ? spec.address.host : spec.kind === 'imap' ? spec.host : spec.kind === 'lmtp' && 'host' in spec.address ? spec.address.host : undefined;
    return {
      kind: destination.kind,
      describe: () => destination.describe(),
      open: async (signal) => {
        try {
          this.allowed(spec, 'spec');
          if (host !== undefined && guard !== undefined) await guard.resolve(host);
        } catch (error) {
          throw new DestinationUnavailable(destination.describe(), error instanceof Error ? error.message : String(error), { cause: error });
        }
        await destination.open(signal);
      },
      deliver: (message, meta) => destination.deliver(message, meta),
      close: () => destination.close(),
    };
  }

  /** The operator's allowlists; network addresses are the guard's (at create for literals, at each run for names). */
  private allowed(spec: DestinationSpec, field: string): void {
    switch (spec.kind) {
      case 'mda':
        if (spec.shell) throw new DestinationInputError('a shell command (mda-shell) is never available through the API: use mda: with a command the operator allows', field);
        if (!this.policy.mdaAllow.includes(spec.argv[0]!)) {
          throw new DestinationInputError(
            `running ${spec.argv[0]} is not allowed: MDA commands are off for API callers unless the operator lists the command's absolute path in destinations.mda.allow`,
            field,
          );
        }
        return;
      case 'maildir':
        if (!underAny(spec.dir, this.policy.maildirAllow)) {
          throw new DestinationInputError(`the Maildir ${spec.dir} is not under a folder the operator allows (destinations.maildir.allow); give an absolute path under one`, field);
        }
        return;
      case 'mbox':
        throw new DestinationInputError('an mbox is not available through the API: use maildir:, lmtp:, smtp:, imaps:// or an allowed mda:', field);
      case 'lmtp':
        if ('path' in spec.address) {
          if (!this.policy.socketAllow.includes(spec.address.path)) throw new DestinationInputError(`the socket ${spec.address.path} is not in destinations.lmtp.sockets`, field);
          return;
        }
        this.literalAllowed(spec.address.host, field);
        return;
      case 'smtp':
        this.literalAllowed(spec.address.host, field);
        return;
      case 'imap':
        this.literalAllowed(spec.host, field);
        return;
    }
  }

  /** An IP literal is checked at once (a 400 now, not a failed run later); names at each run. */
  private literalAllowed(host: string, field: string): void {
    const guard = this.policy.network;
    if (guard === undefined) return;
    if (!/^[\d.]+$|:/.test(host)) return;
    try {
      guard.check(host, host);
    } catch (error) {
      throw new DestinationInputError(error instanceof Error ? error.message : String(error), field);
    }
  }
}

/** Binds a destination's sealed secret to its account and destination. */
export function destinationAad(accountKey: string, destinationKey: string): string {
  return `popwire:account:${accountKey}:destination:${destinationKey}`;
}

/** `dir` is absolute, has no `.` or `..` step, and lies under one of `roots`. */
function underAny(dir: string, roots: readonly string[]): boolean {
  if (!isAbsolute(dir) || dir.split('/').some((step) => step === '..' || step === '.')) return false;
  return roots.some((root) => {
    const base = normalize(root).replace(/\/+$/, '');
    return dir === base || dir.startsWith(base + sep);
  });
}

/** What the API shows of a destination: never its credentials, only their type. */
function destinationView(row: AccountDestination): DestinationView {
  const stored = JSON.parse(row.spec) as StoredSpec;
  return {
    id: row.id,
    kind: row.kind as DestinationView['kind'],
    spec: stored.spec,
    to: stored.to,
    credentialType: row.credentials === null ? null : stored.credentialType,
    uidHeader: stored.uidHeader,
    seen: stored.seen,
    tlsInsecure: stored.tlsInsecure,
    allowPlaintext: stored.allowPlaintext,
  };
}
