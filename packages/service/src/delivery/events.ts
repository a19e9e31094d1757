import { isoTime, isoTimeOrNull } from '../iso-time.js';
import type { Account } from '../store/schema.js';
import type { CommittedMessage } from '../sync/writer.js';

/**
 * The bodies of webhook events, as receivers see them. Times are ISO 8601 strings in UTC with
 * milliseconds, and a person is `{name, address}` (name '' when none): the same as the API's.
 * Nothing secret goes in: no credentials, no webhook secret, no server reply beyond the
 * error's own message (which the client already strips of secrets).
 */
export interface AccountRef {
  readonly id: number;
  readonly name?: string;
}

export interface MessageNewEvent {
  readonly type: 'message.new';
  readonly account: AccountRef;
  readonly message: {
    /** The stored message's id: GET /v1/messages/{id}. */
    readonly id: number;
    readonly uid: string;
    readonly size: number;
    readonly date: string | null;
    readonly from: Mailbox | null;
    readonly to: readonly Mailbox[];
    readonly subject: string | null;
    readonly messageId: string | null;
    readonly hasAttachments: boolean;
    /** Only the header block was kept: the message was over the account's size limit. */
    readonly headersOnly: boolean;
  };
  readonly createdAt: string;
}

export interface Mailbox {
  readonly name: string;
  readonly address: string;
}

export interface SyncFailedEvent {
  readonly type: 'sync.failed';
  readonly account: AccountRef;
  readonly run: {
    /** GET /v1/accounts/{id}/runs; null when the run could not even be recorded (the store failed). */
    readonly id: number | null;
    readonly status: 'failed';
    readonly error: { readonly code: string; readonly message: string };
  };
  readonly createdAt: string;
}

/**
 * A stored message's state changed (PATCH /v1/messages/{id}): `message` says what it is now,
 * `changes` only what this change set. Sent only when something did change.
 */
export interface MessageUpdatedEvent {
  readonly type: 'message.updated';
  readonly account: AccountRef;
  readonly message: { readonly id: number; readonly uid: string; readonly seen: boolean; readonly flagged: boolean };
  readonly changes: { readonly seen?: boolean; readonly flagged?: boolean };
  readonly createdAt: string;
}

export type WebhookPayload = MessageNewEvent | SyncFailedEvent | MessageUpdatedEvent;

export function accountRef(account: Pick<Account, 'id' | 'name'>): AccountRef {
  return account.name === null ? { id: account.id } : { id: account.id, name: account.name };
}

export function messageNewEvent(account: Pick<Account, 'id' | 'name'>, message: CommittedMessage, now: number): MessageNewEvent {
  const s = message.summary;
  return {
    type: 'message.new',
    account: accountRef(account),
    message: {
      id: message.id,
      uid: message.uid,
      size: message.size,
      date: isoTimeOrNull(s.date),
      from: s.fromAddress === null ? null : { name: s.fromName ?? '', address: s.fromAddress },
      to: s.to.map(({ name, address }) => ({ name, address })),
      subject: s.subject,
      messageId: s.messageId,
      hasAttachments: s.hasAttachments,
      headersOnly: message.headersOnly,
    },
    createdAt: isoTime(now),
  };
}

export function syncFailedEvent(account: Pick<Account, 'id' | 'name'>, runId: number | null, error: { code: string; message: string }, now: number): SyncFailedEvent {
  return {
    type: 'sync.failed',
    account: accountRef(account),
    run: { id: runId, status: 'failed', error },
    createdAt: isoTime(now),
  };
}

type MessageState = { readonly id: number; readonly uid: string; readonly seen: number; readonly flagged: number };

export function messageUpdatedEvent(account: Pick<Account, 'id' | 'name'>, before: MessageState, after: MessageState, now: number): MessageUpdatedEvent {
  const changes: { seen?: boolean; flagged?: boolean } = {};
  if (before.seen !== after.seen) changes.seen = after.seen === 1;
  if (before.flagged !== after.flagged) changes.flagged = after.flagged === 1;
  return {
    type: 'message.updated',
    account: accountRef(account),
    message: { id: after.id, uid: after.uid, seen: after.seen === 1, flagged: after.flagged === 1 },
    changes,
    createdAt: isoTime(now),
  };
}
