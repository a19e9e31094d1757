/**
 * `npm run soak`: scale-out under fire. Three `popwire serve` processes (jobs.engine pg-boss) on one
 * private PostgreSQL sync 50 accounts of a private Dovecot while mail keeps arriving; one process,
 * picked at random among those running a sync, is SIGKILLed at random moments and started again,
 * several times; PostgreSQL itself is killed and restarted once, halfway.
 *
 * At the end, after a graceful stop: every account synced and holding exactly the mail delivered
 * to it, each message once; no job or run left `running`, no pg-boss job active; every account's
 * lease released. It prints how long each killed sync took to be closed `interrupted` and to run
 * again in another process, and exits 1 if a check failed.
 *
 * Settings (environment): SOAK_ACCOUNTS (50), SOAK_KILLS (6), SOAK_LEASE_SECONDS (60, the
 * shipped default of jobs.leaseSeconds). Builds first (the processes run the built bin).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import { SecretBox } from '../packages/service/src/accounts/secrets.ts';
import { AccountService } from '../packages/service/src/accounts/service.ts';
import { Store } from '../packages/service/src/store/store.ts';
import { startDovecot } from '../support/dovecot.ts';
import { bulkMessages } from '../support/fixtures.ts';
import { startPostgres } from '../support/postgres.ts';

const ACCOUNTS = Number(process.env.SOAK_ACCOUNTS ?? 50);
const KILLS = Number(process.env.SOAK_KILLS ?? 6);
const LEASE_SECONDS = Number(process.env.SOAK_LEASE_SECONDS ?? 60);
const PROCESSES = 3;
const BIN = fileURLToPath(new URL('../packages/service/bin/popwire.js', import.meta.url));
const started = Date.now();
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1)} s`;
const say = (line: string) => console.log(`[${elapsed()}] ${line}`);
const random = (min: number, max: number) => min + Math.random() * (max - min);

const messageId = (m: Buffer) => /^Message-ID: (\S+)/im.exec(m.toString('latin1'))![1]!;

/** A killed sync: its account, its run, and when what followed happened. */
interface Victim {
  readonly accountId: number;
  readonly runId: number;
  readonly killedAt: number;
  closedAt?: number;
  resumedAt?: number;
}

const logs = await mkdtemp(join(tmpdir(), 'popwire-soak-'));
const users = Array.from({ length: ACCOUNTS }, (_, i) => ({ user: `soak${i}`, password: `soak-password-${i}` }));
say(`starting PostgreSQL and Dovecot (${ACCOUNTS} users); logs in ${logs}`);
const [postgres, dovecot] = await Promise.all([startPostgres(), startDovecot({ users })]);
const failures: string[] = [];
const children: Array<ChildProcess | undefined> = [];
try {
  const url = await postgres.createDatabase('soak');
  const key = randomBytes(32);
  const store = await Store.open({ kind: 'postgres', url });
  const accounts = new AccountService(store, new SecretBox([key]), { minInterval: 1 });

  // One mailbox of 10,000 messages, four of 2,000, the rest 40; half delete what they stored, half leave it.
  const expected = new Map<number, Set<string>>();
  const userOf = new Map<number, string>();
  for (const [i, { user, password }] of users.entries()) {
    const messages = i === 0 ? bulkMessages(10_000, 1_000) : i <= 4 ? bulkMessages(2_000, 4_000) : bulkMessages(40, 2_000);
    await dovecot.setMailbox(user, messages);
    const { id } = await accounts.create({
      name: user,
      host: dovecot.host,
      port: dovecot.port,
      tls: 'none',
      allowPlaintextAuth: true,
      username: user,
      credentials: { type: 'password', password },
      syncInterval: 5,
      policy: { retention: i % 2 === 0 ? 'delete' : 'leave' },
    });
    expected.set(id, new Set(messages.map(messageId)));
    userOf.set(id, user);
  }
  const ids = [...expected.keys()];

  const env = {
    ...process.env,
    POPWIRE_STORE: url,
    POPWIRE_JOBS_ENGINE: 'pg-boss',
    POPWIRE_JOBS_LEASE_SECONDS: String(LEASE_SECONDS),
    POPWIRE_SECRET_KEY: key.toString('hex'),
    POPWIRE_HTTP_PORT: '0',
    POPWIRE_NETWORK_ALLOW: '127.0.0.1',
    POPWIRE_LOG_LEVEL: 'warn',
    POPWIRE_SYNC_MIN_INTERVAL: '1',
  };
  let launches = 0;
  // As a supervisor would (systemd's Restart=always): a process that exits unasked is started
  // again a second later. Only a refusal to start while PostgreSQL restarts is expected; any
  // other exit is a crash, and the soak fails.
  const killed = new Set<ChildProcess>();
  const launch = (slot: number) => {
    const name = `serve-${slot}-${++launches}.log`;
    const child = spawn(process.execPath, [BIN, 'serve'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
    child.stderr!.pipe(createWriteStream(join(logs, name)));
    child.on('exit', (code, signal) => {
      if (killed.has(child) || stopping) return;
      if (/cannot reach the store/.test(stderr)) say(`process ${slot} could not reach the store at start (PostgreSQL restarting); starting it again`);
      else failures.push(`process ${slot} (${name}) exited unasked (${signal ?? code}): ${stderr.trim().split('\n').slice(0, 3).join(' | ')}`);
      setTimeout(() => stopping || launch(slot), 1_000);
    });
    children[slot] = child;
    return child;
  };
  let stopping = false;
  for (let slot = 0; slot < PROCESSES; slot++) launch(slot);
  say(`${PROCESSES} popwire serve processes started (lease ${LEASE_SECONDS} s)`);

  // Mail keeps arriving: one message every 100 ms, to a random account.
  let delivering = true;
  const deliveries = (async () => {
    for (let n = 1; delivering; n++) {
      const id = ids[Math.floor(Math.random() * ids.length)]!;
      const mid = `<soak-${n}@popwire.test>`;
      await dovecot.deliver(userOf.get(id)!, Buffer.from(`Message-ID: ${mid}\r\nSubject: soak ${n}\r\n\r\n${'x'.repeat(500)}\r\n`));
      expected.get(id)!.add(mid);
      await delay(100);
    }
  })();

  /** The account leases held by each of our processes, by pid. */
  const leases = async (): Promise<Map<number, number[]>> => {
    const rows = await store.db.selectFrom('accounts').select(['id', 'lock_owner']).where('lock_owner', 'is not', null).where('lock_expires', '>', Date.now()).execute();
    const byPid = new Map<number, number[]>();
    for (const row of rows) {
      const [host, pid] = row.lock_owner!.split(':');
      if (host === hostname()) byPid.set(Number(pid), [...(byPid.get(Number(pid)) ?? []), row.id]);
    }
    return byPid;
  };

  const victims: Victim[] = [];
  let pgRestart: { at: number; took: number } | undefined;
  await delay(3_000);
  for (let k = 1; k <= KILLS; k++) {
    await delay(random(2_000, 12_000));
    // Random moments, but a process that runs a sync: a kill of an idle one proves nothing.
    let slot = Math.floor(Math.random() * PROCESSES);
    let held: number[] = [];
    for (let look = 0; look < 50; look++) {
      const byPid = await leases().catch(() => new Map<number, number[]>());
      const busy = children.map((c, s) => [s, byPid.get(c?.pid ?? -1) ?? []] as const).filter(([, a]) => a.length > 0);
      if (busy.length > 0) {
        [slot, held] = busy[Math.floor(Math.random() * busy.length)]! as [number, number[]];
        break;
      }
      await delay(100);
    }
    const child = children[slot]!;
    if (child.exitCode !== null || child.signalCode !== null) continue;
    killed.add(child);
    const running = held.length === 0 ? [] : await store.db.selectFrom('sync_runs').select(['id', 'account_id']).where('status', '=', 'running').where('account_id', 'in', held).execute();
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
    const killedAt = Date.now();
    for (const run of running) victims.push({ accountId: run.account_id, runId: run.id, killedAt });
    say(`kill ${k}: SIGKILLed process ${slot} (pid ${child.pid}) in the middle of ${running.length} sync(s): accounts ${running.map((r) => r.account_id).join(', ') || '-'}`);
    await delay(random(500, 5_000));
    launch(slot);
    if (k === Math.ceil(KILLS / 2)) {
      const at = Date.now();
      await postgres.restart();
      pgRestart = { at, took: Date.now() - at };
      say(`PostgreSQL killed (SIGQUIT) and started again in ${pgRestart.took} ms`);
    }
  }

  // Each killed sync: when its run was closed, and when its account's next run started.
  const watch = async () => {
    for (const v of victims) {
      if (v.resumedAt !== undefined) continue;
      const runs = await store.db.selectFrom('sync_runs').select(['id', 'status', 'started_at', 'finished_at']).where('account_id', '=', v.accountId).where('id', '>=', v.runId).orderBy('id').execute();
      const own = runs.find((r) => r.id === v.runId);
      if (own?.status !== 'running' && own?.finished_at != null) v.closedAt = own.finished_at;
      const next = runs.find((r) => r.id > v.runId);
      if (next !== undefined) v.resumedAt = next.started_at;
    }
  };
  delivering = false;
  await deliveries;
  say('deliveries stopped; waiting until every account holds its mail and every killed sync ran again');
  const deadline = Date.now() + (3 * LEASE_SECONDS + 180) * 1000;
  let behind = '';
  const holds = async () => {
    const { rows } = await sql<{ account_id: number; n: number }>`select account_id, count(distinct message_id_header)::int as n from messages group by account_id`.execute(store.db);
    const counts = new Map(rows.map((r) => [Number(r.account_id), Number(r.n)]));
    const short = ids.filter((id) => counts.get(id) !== expected.get(id)!.size);
    behind = short.map((id) => `account ${id}: ${counts.get(id) ?? 0} of ${expected.get(id)!.size}`).join(', ');
    return short.length === 0;
  };
  for (let look = 1; ; look++) {
    const done = await Promise.all([holds(), watch().then(() => victims.every((v) => v.resumedAt !== undefined && v.closedAt !== undefined))]).catch((error: unknown) => (say(`look failed: ${String(error)}`), [false, false]));
    if (done.every(Boolean)) break;
    if (look % 40 === 0) say(`still waiting: ${behind || 'killed syncs not run again yet'}`);
    if (Date.now() > deadline) {
      failures.push('timed out waiting for every account to hold its mail and every killed sync to run again');
      break;
    }
    await delay(500);
  }

  say('stopping the processes (SIGTERM)');
  stopping = true;
  await Promise.all(children.map(async (c) => {
    if (c === undefined || c.exitCode !== null) return;
    const exited = once(c, 'exit');
    c.kill('SIGTERM');
    const [code] = await exited;
    if (code !== 0) failures.push(`a serve process exited ${code} on SIGTERM`);
  }));

  // The checks.
  const { rows: twice } = await sql<{ account_id: number; message_id_header: string; n: number }>`
    select account_id, message_id_header, count(*)::int as n from messages group by 1, 2 having count(*) > 1`.execute(store.db);
  if (twice.length > 0) failures.push(`stored more than once: ${JSON.stringify(twice.slice(0, 5))}`);
  const stored = await store.db.selectFrom('messages').select(['account_id', 'message_id_header']).execute();
  for (const id of ids) {
    const mine = new Set(stored.filter((m) => m.account_id === id).map((m) => m.message_id_header));
    const missing = [...expected.get(id)!].filter((mid) => !mine.has(mid));
    const extra = [...mine].filter((mid) => !expected.get(id)!.has(mid ?? ''));
    if (missing.length > 0 || extra.length > 0) failures.push(`account ${id}: ${missing.length} missing, ${extra.length} unexpected`);
  }
  const unsynced = await store.db.selectFrom('accounts').select('id').where((eb) => eb.not(eb.exists(eb.selectFrom('sync_runs').select('sync_runs.id').whereRef('sync_runs.account_id', '=', 'accounts.id').where('sync_runs.status', '=', 'ok')))).execute();
  if (unsynced.length > 0) failures.push(`accounts never synced ok: ${unsynced.map((a) => a.id).join(', ')}`);
  const runningJobs = await store.db.selectFrom('sync_jobs').select('id').where('status', '=', 'running').execute();
  if (runningJobs.length > 0) failures.push(`jobs left running: ${runningJobs.map((j) => j.id).join(', ')}`);
  const runningRuns = await store.db.selectFrom('sync_runs').select('id').where('status', '=', 'running').execute();
  if (runningRuns.length > 0) failures.push(`runs left running: ${runningRuns.map((r) => r.id).join(', ')}`);
  const { rows: active } = await sql<{ n: number }>`select count(*)::int as n from pgboss.job where name = 'popwire-sync' and state = 'active'`.execute(store.db);
  if (active[0]!.n > 0) failures.push(`${active[0]!.n} pg-boss jobs left active`);
  const { rows: orphanQueued } = await sql<{ id: number }>`
    select s.id from sync_jobs s where s.status = 'queued'
      and not exists (select 1 from pgboss.job j where j.name = 'popwire-sync' and j.state = 'created' and (j.data->>'jobId')::int = s.id)`.execute(store.db);
  if (orphanQueued.length > 0) failures.push(`queued jobs with nothing in the queue: ${orphanQueued.map((j) => j.id).join(', ')}`);
  const leased = await store.db.selectFrom('accounts').select('id').where('lock_owner', 'is not', null).execute();
  if (leased.length > 0) failures.push(`leases not released: accounts ${leased.map((a) => a.id).join(', ')}`);
  const interrupted = await store.db.selectFrom('sync_runs').select((eb) => eb.fn.countAll<number>().as('n')).where('status', '=', 'interrupted').executeTakeFirstOrThrow();
  const totals = await sql<{ runs: number; messages: number }>`select (select count(*)::int from sync_runs) as runs, (select count(*)::int from messages) as messages`.execute(store.db);
  await store.close();

  const seconds = (ms: number | undefined) => (ms === undefined ? 'never' : `${(ms / 1000).toFixed(1)} s`);
  console.log('\nkilled syncs (account, run): closed interrupted after / ran again after the kill');
  for (const v of victims) console.log(`  account ${v.accountId}, run ${v.runId}: ${seconds(v.closedAt && v.closedAt - v.killedAt)} / ${seconds(v.resumedAt && v.resumedAt - v.killedAt)}`);
  const resumed = victims.map((v) => (v.resumedAt ?? Infinity) - v.killedAt);
  if (resumed.some((ms) => ms > 120_000)) failures.push('a killed sync took more than two minutes to run again');
  console.log(`\n${KILLS} kills, ${victims.length} syncs killed, PostgreSQL restarted ${pgRestart === undefined ? 'never' : `at ${((pgRestart.at - started) / 1000).toFixed(0)} s`}; ` +
    `${totals.rows[0]!.runs} runs (${Number(interrupted.n)} interrupted), ${totals.rows[0]!.messages} messages; ` +
    `recovery: longest ${seconds(Math.max(0, ...resumed))}, lease ${LEASE_SECONDS} s; total ${elapsed()}`);
} catch (error) {
  failures.push(`the soak itself failed: ${error instanceof Error ? error.stack : String(error)}`);
} finally {
  for (const c of children) if (c !== undefined && c.exitCode === null) c.kill('SIGKILL');
  await Promise.allSettled([dovecot.stop(), postgres.stop()]);
}
if (failures.length > 0) {
  console.log(`\nFAILED (logs in ${logs}):\n- ${failures.join('\n- ')}`);
  process.exitCode = 1;
} else {
  console.log('\nOK: every account synced, every message stored once, no job or run left running, every lease released');
}
