import { Pop3AuthenticationError, Pop3Error, type Pop3Client } from 'popwire';
import type { OutboxRows } from '../store/messages.js';
import type { RunStatus } from '../store/schema.js';
import type { NewWebhookEvent } from '../store/webhook-events.js';
import type { Store } from '../store/store.js';
import { publicError } from '../jobs/failure.js';
import { SyncError } from './errors.js';
import type { ListedMessage } from './listing.js';
import { Outbox, type HandoverTarget, type OutboxOptions, type Refusal } from './handover.js';
import { AccountLock } from './lock.js';
import type { SyncPolicy } from './policy.js';
import { runSession, type SessionOutcome, type SyncProgress } from './session.js';
import type { CommittedMessage, WriterOptions } from './writer.js';

export interface SyncRequest {
  readonly store: Store;
  readonly accountId: number;
  /** A logged-in session; called once per session. Its retry policy is the client's (`retry` option). */
  readonly connect: () => Promise<Pop3Client>;
  readonly policy: SyncPolicy;
  /**
   * Start another session after one that stored something, until one finds nothing new. Gmail
   * lists only part of a large mailbox per session (and hides what a session retrieved once it
   * QUITs), so one session is not the whole mailbox. Default: on for Gmail's hosts.
   */
  readonly repeat?: boolean | undefined;
  /** Bound on those sessions in one run. Default 100. */
  readonly maxSessions?: number | undefined;
  /** Stop at the next message boundary, commit, DELE per policy, QUIT: a clean, early end. */
  readonly stop?: AbortSignal | undefined;
  readonly onProgress?: ((progress: SyncProgress) => void) | undefined;
  readonly now?: (() => number) | undefined;
  /** How long the account's lease lasts unrenewed (sync/lock.ts); default 60 s. */
  readonly leaseMs?: number | undefined;
  readonly writer?: WriterOptions | undefined;
  /**
   * Told of the messages each commit stored, as soon as it returns (for `message.new` events).
   * Synchronous and must not throw: a sync does not wait for its listeners.
   */
  readonly onCommit?: ((messages: readonly CommittedMessage[]) => void) | undefined;
  /** Webhook events written in the same transactions as what they tell of. */
  readonly outbox?: SyncOutbox | undefined;
  /**
   * Where each stored message is handed over (MDA, LMTP, SMTP, IMAP, Maildir) before it may be
   * deleted from the server; closed when the run ends. See handover.ts.
   */
  readonly destinations?: { readonly targets: readonly HandoverTarget[]; readonly options?: OutboxOptions } | undefined;
  /** Record the UIDs on the server as seen without retrieving them, at the account's first sync. Default: the account's `skip_existing`. */
  readonly skipExisting?: boolean | undefined;
}

/**
 * The webhook rows of a run: `message.new` rows in each commit's transaction, `sync.failed` in
 * the one that records the run's end. No crash can store a message, or fail a run, without its
 * event; the dispatcher sends what is in the outbox after any restart.
 */
export interface SyncOutbox {
  readonly committed: OutboxRows;
  ended(run: { readonly runId: number; readonly status: Exclude<RunStatus, 'running' | 'interrupted'>; readonly error: unknown }): readonly NewWebhookEvent[];
}

export interface SyncReport {
  readonly runId: number;
  readonly accountId: number;
  readonly status: Exclude<RunStatus, 'running' | 'interrupted'>;
  readonly sessions: number;
  readonly newMessages: number;
  /** Of the new ones, those kept as headers only (over the size limit, `headers` policy). */
  readonly headersOnly: number;
  readonly alreadyHad: number;
  readonly deleted: number;
  /** Over the size limit and not stored, in the last session's listing. */
  readonly skipped: readonly ListedMessage[];
  readonly bytes: number;
  readonly seconds: number;
  readonly identity: 'uidl' | 'digest' | null;
  /** What the account's owner should know: no UIDL, repeated UIDs, messages that vanished mid-run. */
  readonly notes: readonly string[];
  /** For `deferred`: not before this time (ms since the epoch). */
  readonly retryAfter: number | null;
  /** Why it failed, was deferred or stopped early. */
  readonly error: unknown;
  /** skip-existing: UIDs recorded as seen without being retrieved. */
  readonly ignoredExisting: number;
  /** What the destinations answered (summed over sessions); zeros without destinations. */
  readonly delivery: DeliverySummary;
}

export interface DeliverySummary {
  readonly handedOver: number;
  readonly delivered: number;
  readonly temporary: number;
  readonly permanent: number;
  /** Stored messages on the server that some destination has not accepted: not deleted (last session). */
  readonly undelivered: number;
  readonly refusals: readonly Refusal[];
}

const GMAIL = /(^|\.)(gmail|googlemail)\.com\.?$/i;
const DEFAULT_MAX_SESSIONS = 100;
/** After [IN-USE] (another client holds the maildrop) and [LOGIN-DELAY] (RFC 2449 section 8.1), when to try again. */
const IN_USE_RETRY_MS = 60_000;
const LOGIN_DELAY_RETRY_MS = 300_000;

/**
 * One sync run of one account: sessions until the mailbox holds nothing new (one, except for
 * Gmail), recorded as a row of sync_runs. Never throws for what the server or the network did:
 * that is the report's status and error. It throws only when the run cannot start (the account
 * is missing, another sync holds it: SyncError SYNC_LOCKED) or the store fails.
 */
export async function syncAccount(request: SyncRequest): Promise<SyncReport> {
  const { store } = request;
  const now = request.now ?? Date.now;
  const account = await store.accounts.get(request.accountId);
  const started = now();
  // The claim and the run's row in one commit (one fsync on SQLite, not two): a run that finds
  // nothing new costs the store two commits, this one and its end's.
  let claimed: AccountLock | undefined;
  const { lock, runId } = await store
    .transaction(async (trx) => {
      claimed = await AccountLock.acquire(store.db, account.id, started, request.leaseMs, trx.db);
      return { lock: claimed, runId: await trx.runs.start(account.id, started) };
    })
    .catch(async (error: unknown) => {
      // Claimed, then the commit failed: nothing is held, but the renewals must stop.
      await claimed?.release().catch(() => {});
      throw error;
    });
  const repeat = request.repeat ?? GMAIL.test(account.host);
  const maxSessions = request.maxSessions ?? DEFAULT_MAX_SESSIONS;
  const outcomes: SessionOutcome[] = [];
  const notes: string[] = [];
  let status: SyncReport['status'] = 'ok';
  let failure: unknown;
  let retryAfter: number | null = null;
  const destinations = request.destinations;
  const outbox =
    destinations === undefined || destinations.targets.length === 0
      ? undefined
      : new Outbox(store, account.id, destinations.targets, now, { stop: request.stop, ...destinations.options });
  try {
    await store.messages.removePending(account.id);
    // Gmail: a run that did not end well may have stored messages in a session that died before
    // the QUIT that would have hidden them (see SessionContext.retrievedAgain). Newest first:
    // this run, then the one before.
    const [, previous] = repeat ? await store.runs.forAccount(account.id, 2) : [];
    const retrievedAgain = previous !== undefined && previous.status !== 'ok' ? new Set<string>() : undefined;
    for (let session = 1; ; session++) {
      request.onProgress?.({ phase: 'connecting', session, total: 0, received: 0, done: 0, bytes: 0 });
      // The first session's seen UIDs are read while it connects and logs in (the lock is held
      // already, and the read sends nothing to the server); a later one's after the session
      // before changed them. The connection is asked for first, so that its handshake is under
      // way while the read's first page runs.
      const connecting = request.connect();
      const seen = session === 1 ? store.seen.forSession(account.id) : undefined;
      seen?.catch(() => {});
      const client = await connecting.catch(async (error: unknown) => {
        await seen?.catch(() => {});
        throw error;
      });
      const outcome = await runSession(client, {
        store,
        accountId: account.id,
        policy: request.policy,
        lock,
        session,
        seen,
        now,
        writer: { ...request.writer, maxBytes: request.writer?.maxBytes ?? retrievalBound(request.policy.maxSize), outbox: request.outbox?.committed },
        stop: request.stop,
        progress: (p) => request.onProgress?.(p),
        onCommit: request.onCommit,
        retrievedAgain,
        outbox,
        skipExisting: request.skipExisting ?? account.skip_existing === 1,
      });
      outcomes.push(outcome);
      if (request.stop?.aborted) {
        status = 'stopped';
        failure = new SyncError('SYNC_ABORTED', 'stopped on request');
        break;
      }
      if (!repeat || (outcome.stored === 0 && outcome.retrievedAgain === 0)) break;
      if (session >= maxSessions) {
        notes.push(`stopped after ${maxSessions} sessions that each found new messages; the next run goes on`);
        break;
      }
    }
  } catch (error) {
    failure = error;
    ({ status, retryAfter } = classify(error, now()));
  } finally {
    await outbox?.close();
  }

  const last = outcomes.at(-1);
  const sum = (pick: (o: SessionOutcome) => number) => outcomes.reduce((n, o) => n + pick(o), 0);
  if (last?.identity === 'digest') notes.push('the server has no UIDL: messages are told apart by a digest of their headers and size');
  if (outcomes.some((o) => o.duplicates > 0)) notes.push(`the server listed ${Math.max(...outcomes.map((o) => o.duplicates))} repeated UID(s); each copy is kept apart`);
  if (outcomes.some((o) => o.reused > 0)) notes.push(`${sum((o) => o.reused)} known UID(s) came back with another size and were retrieved again`);
  if (sum((o) => o.unavailable) > 0) notes.push(`${sum((o) => o.unavailable)} message(s) vanished before they could be retrieved; the next run tries again`);
  // [IN-USE], [LOGIN-DELAY] and [SYS/TEMP] refuse the login too, but say nothing against the credentials.
  const handovers = outcomes.flatMap((o) => (o.handover === undefined ? [] : [o.handover]));
  const delivery: DeliverySummary = {
    handedOver: handovers.reduce((n, h) => n + h.handedOver, 0),
    delivered: handovers.reduce((n, h) => n + h.delivered, 0),
    temporary: handovers.reduce((n, h) => n + h.temporary, 0),
    permanent: handovers.reduce((n, h) => n + h.permanent, 0),
    undelivered: last?.undelivered ?? 0,
    refusals: handovers.flatMap((h) => h.refusals).slice(0, 20),
  };
  if (delivery.temporary > 0) notes.push(`${delivery.temporary} message(s) deferred by a destination (4xx, EX_TEMPFAIL): kept on the server, handed over again next run`);
  if (delivery.permanent > 0) notes.push(`${delivery.permanent} message(s) refused by a destination: kept on the server, never bounced; handed over again next run`);
  if (sum((o) => o.ignoredExisting) > 0) notes.push(`skip-existing: ${sum((o) => o.ignoredExisting)} message(s) on the server recorded as seen, not retrieved`);
  if (failure instanceof Pop3AuthenticationError && !failure.retryable) notes.push('the server rejected the credentials: the account needs attention');

  const report: SyncReport = {
    runId,
    accountId: account.id,
    status,
    sessions: outcomes.length,
    newMessages: sum((o) => o.stored),
    headersOnly: sum((o) => o.headersOnly),
    // The first session's view: later ones (Gmail) list only what the first did not finish.
    alreadyHad: outcomes[0]?.alreadyHad ?? 0,
    deleted: sum((o) => o.deleted),
    skipped: last?.skipped ?? [],
    bytes: sum((o) => o.bytes),
    seconds: (now() - started) / 1000,
    identity: last?.identity ?? account.identity,
    notes,
    retryAfter,
    error: failure,
    ignoredExisting: sum((o) => o.ignoredExisting),
    delivery,
  };
  // The run's end, the account's notes and the release in one commit.
  let released = false;
  try {
    await store.transaction(async (trx) => {
      await trx.runs.finish(
        runId,
        {
          status,
          sessions: report.sessions,
          newMessages: report.newMessages,
          alreadyHad: report.alreadyHad,
          deleted: report.deleted,
          skipped: report.skipped.length,
          bytes: report.bytes,
          errorCode: failure === undefined ? undefined : errorCode(failure),
          errorMessage: failure === undefined ? undefined : errorMessage(failure),
        },
        now(),
        request.outbox?.ended({ runId, status, error: failure }),
      );
      await trx.accounts.update(account.id, { identity: report.identity, status_note: notes.length > 0 ? notes.join('; ') : null, retry_after: retryAfter }, now());
      await lock.release(trx.db);
    });
    released = true;
  } finally {
    if (!released) await lock.release();
  }
  return report;
}

/**
 * What one message may send at most: the size limit plus some slack, since LIST's octet count is
 * the server's estimate (Dovecot's is 2 short for a message without a final newline).
 */
function retrievalBound(maxSize: number | undefined): number | undefined {
  return maxSize === undefined ? undefined : maxSize + Math.max(64 * 1024, Math.ceil(maxSize / 16));
}

/** [IN-USE] and [LOGIN-DELAY] mean "later", not "broken": a deferred run, and a time before which not to try. */
function classify(error: unknown, now: number): { status: SyncReport['status']; retryAfter: number | null } {
  if (error instanceof SyncError && error.code === 'SYNC_ABORTED') return { status: 'stopped', retryAfter: null };
  if (error instanceof Pop3Error) {
    const code = error.responseCode?.toUpperCase();
    if (code === 'IN-USE') return { status: 'deferred', retryAfter: now + IN_USE_RETRY_MS };
    if (code === 'LOGIN-DELAY') return { status: 'deferred', retryAfter: now + LOGIN_DELAY_RETRY_MS };
  }
  return { status: 'failed', retryAfter: null };
}

/**
 * What the run's row keeps of its error goes through the public-error filter: the row is read
 * by the API (/runs), and a database error or a key error may carry a query, a path or a key id.
 */
function errorCode(error: unknown): string {
  return publicError(error).code;
}

function errorMessage(error: unknown): string {
  return publicError(error).message;
}
