/**
 * support/postgres.ts: a private PostgreSQL that hands out fresh databases and leaves nothing
 * listening once stopped.
 */
import assert from 'node:assert/strict';
import { access } from 'node:fs/promises';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { startPostgres, type Postgres } from '../../../../support/postgres.ts';

let postgres: Postgres;
before(async () => {
  postgres = await startPostgres();
});
after(() => postgres?.stop());

async function query<Row extends pg.QueryResultRow>(url: string, sql: string): Promise<Row[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<Row>(sql)).rows;
  } finally {
    await client.end();
  }
}

function portAcceptsConnections(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.on('connect', () => { socket.destroy(); resolve(true); });
    socket.on('error', () => resolve(false));
  });
}

describe('startPostgres', () => {
  it('listens on loopback and gives a superuser URL for the default database', async () => {
    assert.equal(postgres.host, '127.0.0.1');
    assert.equal(postgres.url, `postgres://postgres@127.0.0.1:${postgres.port}/postgres`);
    const [row] = await query<{ db: string; user: string; version: string; fsync: string }>(postgres.url,
      "SELECT current_database() AS db, current_user AS user, current_setting('server_version_num') AS version, current_setting('fsync') AS fsync");
    assert.deepEqual({ db: row?.db, user: row?.user, fsync: row?.fsync }, { db: 'postgres', user: 'postgres', fsync: 'on' });
    assert.match(row?.version ?? '', /^15\d{4}$/);
  });

  it('creates separate databases whose tables do not see each other', async () => {
    const [first, second] = await Promise.all([postgres.createDatabase(), postgres.createDatabase('named_db')]);
    assert.notEqual(first, second);
    assert.equal(second, `postgres://postgres@127.0.0.1:${postgres.port}/named_db`);
    await query(first, "CREATE TABLE t (v text); INSERT INTO t VALUES ('in first')");
    await query(second, "CREATE TABLE t (v text); INSERT INTO t VALUES ('in second'), ('also in second')");
    assert.deepEqual(await query(first, 'SELECT v FROM t ORDER BY v'), [{ v: 'in first' }]);
    assert.deepEqual(await query(second, 'SELECT v FROM t ORDER BY v'), [{ v: 'also in second' }, { v: 'in second' }]);
    assert.deepEqual(await query(second, 'SELECT current_database() AS db'), [{ db: 'named_db' }]);
  });

  it('refuses a database name that would need quoting', async () => {
    await assert.rejects(postgres.createDatabase('Bad-Name'), /Unsupported database name/);
  });

  it('closes its port and removes its folder when stopped', async () => {
    const own = await startPostgres();
    assert.equal(await portAcceptsConnections(own.port), true);
    await own.stop();
    assert.equal(await portAcceptsConnections(own.port), false);
    await assert.rejects(access(own.dir));
    await own.stop(); // a second stop() is harmless
  });
});
