/**
 * A database's own error during a sync is a store failure: counted as `store` in
 * popwire_sync_errors_total, and shown to API readers as STORE_FAILED without its text (which may
 * hold a query or a path). pg is loaded only when a PostgreSQL store is opened (so that a sync into
 * SQLite does not pay for it), and its errors must still be recognised then.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sql } from 'kysely';
import { STORE_KINDS, testStores } from '../../../../support/stores.ts';
import { errorKind, publicError } from '../../src/jobs/failure.ts';
import { openDatabase } from '../../src/store/database.ts';

const stores = testStores();

describe("a database driver's own error", () => {
  for (const kind of STORE_KINDS) {
    it(`is a store failure, shown without its text, on ${kind}`, async () => {
      const { db } = await openDatabase(await stores.location(kind));
      try {
        const error = await sql`select * from no_such_table`.execute(db).then(
          () => assert.fail('the query ran'),
          (caught: unknown) => caught,
        );
        assert.match(String(error), /no_such_table/);
        assert.equal(errorKind(error), 'store');
        assert.deepEqual(publicError(error), { code: 'STORE_FAILED', message: 'the store failed during the sync' });
      } finally {
        await db.destroy();
      }
    });
  }
});
