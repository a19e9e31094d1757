/**
 * A Maildir or an mbox as a Destination, for a list of destinations that mixes them with external
 * ones (an API account's `destinations`). Each message is written and made durable before deliver
 * resolves: simple, and slower than fetch's group commit, which uses the Delivery directly.
 */
import { Readable } from 'node:stream';
import type { Delivery } from '../delivery/delivery.js';
import { DestinationUnavailable, type Destination, type MessageMeta } from './destination.js';

const DEFAULT_LOCK_TIMEOUT_MS = 30_000;

export function localDestination(spec: { kind: 'maildir'; dir: string } | { kind: 'mbox'; file: string }): Destination {
  const describe = () => (spec.kind === 'maildir' ? `the Maildir ${spec.dir}` : `the mbox ${spec.file}`);
  let delivery: Delivery | undefined;
  return {
    kind: spec.kind,
    describe,
    async open(signal?: AbortSignal) {
      try {
        if (spec.kind === 'maildir') {
          const { openMaildir } = await import('../delivery/maildir.js');
          delivery = await openMaildir(spec.dir);
        } else {
          const { openMbox } = await import('../delivery/mbox.js');
          delivery = await openMbox(spec.file, { lockTimeoutMs: DEFAULT_LOCK_TIMEOUT_MS, signal });
        }
      } catch (error) {
        throw new DestinationUnavailable(describe(), error instanceof Error ? error.message : String(error), { cause: error });
      }
    },
    async deliver(message: Buffer, meta: MessageMeta) {
      if (delivery === undefined) throw new DestinationUnavailable(describe(), 'not opened');
      // A disk that fails fails every message: the destination is unavailable, not this message refused.
      try {
        await delivery.deliver(meta.n, Readable.from([message]));
        await delivery.commit();
      } catch (error) {
        throw new DestinationUnavailable(describe(), error instanceof Error ? error.message : String(error), { cause: error });
      }
    },
    async close() {
      await delivery?.close().catch(() => undefined);
      delivery = undefined;
    },
  };
}
