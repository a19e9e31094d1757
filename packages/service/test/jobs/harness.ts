/**
 * What the scheduler and webhook tests share: polling with a deadline (never a guessed sleep),
 * reading a metric, an AccountService over a fresh key, and a syncAccount wrapper that counts
 * the runs in flight, per account and in all.
 */
import { randomBytes } from 'node:crypto';
import type { Counter, Gauge, Histogram } from 'prom-client';
import { SecretBox } from '../../src/accounts/secrets.ts';
import { AccountService, type AccountInput } from '../../src/accounts/service.ts';
import type { Dovecot } from '../../../../support/dovecot.ts';
import type { Store } from '../../src/store/store.ts';
import { syncAccount, type SyncReport, type SyncRequest } from '../../src/sync/index.ts';

/** Polls `condition` until it holds; fails with `what` at the deadline. */
export async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A counter's or gauge's value for these labels (0 when never set). */
export async function metric(m: Counter<string> | Gauge<string>, labels: Record<string, string> = {}): Promise<number> {
  const { values } = await m.get();
  const match = values.find((v) => Object.entries(labels).every(([k, want]) => v.labels[k] === want) && Object.keys(v.labels).length === Object.keys(labels).length);
  return match?.value ?? 0;
}

/** How many observations a histogram holds. */
export async function observations(h: Histogram<string>): Promise<number> {
  const { values } = await h.get();
  return values.find((v) => v.metricName?.endsWith('_count'))?.value ?? 0;
}

/** With the interval floor lowered to 1 s (config sync.minInterval), so that a test sees several scheduled runs. */
export function accountService(store: Store, options: ConstructorParameters<typeof AccountService>[2] = {}): AccountService {
  return new AccountService(store, new SecretBox([randomBytes(32)]), { minInterval: 1, ...options });
}

/** An account for a Dovecot user, in plain text (the test server's loopback port). */
export function dovecotAccount(dovecot: Dovecot, user: string, extra: Partial<AccountInput> = {}): AccountInput {
  return {
    name: `${user}'s mailbox`,
    host: dovecot.host,
    port: dovecot.port,
    tls: 'none',
    allowPlaintextAuth: true,
    username: user,
    credentials: { type: 'password', password: dovecot.users[user]!.password },
    syncInterval: null,
    ...extra,
  };
}

/** syncAccount, counting runs in flight; `most` and `mostPerAccount` are the highest seen. */
export function countingSync(extra: Partial<SyncRequest> = {}) {
  const perAccount = new Map<number, number>();
  const runs = new Map<number, number>();
  const state = { inFlight: 0, most: 0, mostPerAccount: 0, runs };
  const sync = async (request: SyncRequest): Promise<SyncReport> => {
    const id = request.accountId;
    const mine = (perAccount.get(id) ?? 0) + 1;
    perAccount.set(id, mine);
    state.inFlight++;
    state.most = Math.max(state.most, state.inFlight);
    state.mostPerAccount = Math.max(state.mostPerAccount, mine);
    try {
      return await syncAccount({ ...request, ...extra });
    } finally {
      perAccount.set(id, perAccount.get(id)! - 1);
      state.inFlight--;
      runs.set(id, (runs.get(id) ?? 0) + 1);
    }
  };
  return { sync, state };
}
