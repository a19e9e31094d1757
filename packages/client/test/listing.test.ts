/**
 * Large listings (issue 16, "Huge listing"): `popwire list` against a server listing two million
 * messages peaked at 985 MB of RSS, because the reply was held as a Buffer, a string, an array of
 * strings and an array of objects at once. LIST and UIDL are now parsed line by line into typed
 * arrays, and a listing longer than `maxListingEntries` is refused with a typed error.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Pop3Client } from '../src/client.ts';
import { Pop3ProtocolError } from '../src/errors.ts';
import { acceptLogin, type ScriptedConnection } from '../../../support/scripted-server.ts';
import { isError, plainOptions, useScriptedServer } from './scripted.ts';

const serve = useScriptedServer();

function listing(lines: readonly string[]): string {
  return `+OK\r\n${lines.map((line) => `${line}\r\n`).join('')}.\r\n`;
}

describe('listings held compactly', () => {
  it('sizeListing() reads LIST by index and by iteration, in the server order', async () => {
    const srv = await serve(async (conn: ScriptedConnection) => {
      await acceptLogin(conn);
      await conn.expect('LIST');
      conn.send(listing(['1 120', '2  4500', '5\t99999999999 extra']));
      await conn.expect('QUIT');
      conn.reply('+OK');
    });
    await using client = await Pop3Client.connect(plainOptions(srv));
    const sizes = await client.sizeListing();
    assert.equal(sizes.length, 3);
    assert.deepEqual([sizes.n(2), sizes.size(2)], [5, 99999999999]);
    assert.deepEqual([...sizes], [{ n: 1, size: 120 }, { n: 2, size: 4500 }, { n: 5, size: 99999999999 }]);
  });

  it('list() and uidl() still return arrays of records, across replies split at any point', async () => {
    const uids = Array.from({ length: 3000 }, (_, i) => `${i + 1} uid-${i}-${'x'.repeat(i % 70)}`);
    const srv = await serve(async (conn) => {
      await acceptLogin(conn);
      await conn.expect('UIDL');
      // Dribbled in pieces of 7 octets: lines and the terminator split across chunks.
      const reply = Buffer.from(listing(uids));
      for (let at = 0; at < reply.length; at += 7) conn.send(reply.subarray(at, at + 7));
      await conn.expect('LIST');
      conn.send(listing(['1 10', '2 20']));
      await conn.expect('QUIT');
      conn.reply('+OK');
    });
    await using client = await Pop3Client.connect(plainOptions(srv));
    const got = await client.uidl();
    assert.equal(got.length, 3000);
    assert.deepEqual(got[2999], { n: 3000, uid: `uid-2999-${'x'.repeat(2999 % 70)}` });
    assert.deepEqual(got.slice(0, 2), [{ n: 1, uid: 'uid-0-' }, { n: 2, uid: 'uid-1-x' }]);
    assert.deepEqual(await client.list(), [{ n: 1, size: 10 }, { n: 2, size: 20 }]);
  });

  it('uidListing().indexOf(n) finds a message in a listing out of order, and -1 for one not listed', async () => {
    const srv = await serve(async (conn) => {
      await acceptLogin(conn);
      await conn.expect('UIDL');
      conn.send(listing(['3 c', '1 a', '7 g']));
      await conn.expect('QUIT');
      conn.reply('+OK');
    });
    await using client = await Pop3Client.connect(plainOptions(srv));
    const uids = await client.uidListing();
    assert.deepEqual([1, 3, 7, 2].map((n) => uids.indexOf(n)), [1, 0, 2, -1]);
    assert.equal(uids.uid(uids.indexOf(7)), 'g');
  });

  for (const verb of ['LIST', 'UIDL'] as const) {
    it(`a ${verb} listing one entry past maxListingEntries fails with POP3_REPLY_TOO_LARGE naming the limit, and closes the connection`, async () => {
      const srv = await serve(async (conn) => {
        await acceptLogin(conn);
        await conn.expect(verb);
        conn.send(listing(Array.from({ length: 11 }, (_, i) => (verb === 'LIST' ? `${i + 1} 100` : `${i + 1} u${i}`))));
        await conn.closed();
      });
      const client = await Pop3Client.connect(plainOptions(srv, { maxListingEntries: 10 }));
      const call = verb === 'LIST' ? client.list() : client.uidl();
      await assert.rejects(call, (error: unknown) => {
        isError(Pop3ProtocolError, 'POP3_REPLY_TOO_LARGE')(error);
        assert.match((error as Error).message, new RegExp(`reply to ${verb} lists more than 10 messages \\(maxListingEntries\\)`));
        return true;
      });
      assert.equal(client.state, 'closed');
    });
  }

  it('a listing of exactly maxListingEntries is accepted', async () => {
    const srv = await serve(async (conn) => {
      await acceptLogin(conn);
      await conn.expect('LIST');
      conn.send(listing(Array.from({ length: 10 }, (_, i) => `${i + 1} 100`)));
      await conn.expect('QUIT');
      conn.reply('+OK');
    });
    await using client = await Pop3Client.connect(plainOptions(srv, { maxListingEntries: 10 }));
    assert.equal((await client.sizeListing()).length, 10);
  });

  it('a malformed line in a listing is still a POP3_BAD_REPLY that quotes it', async () => {
    const srv = await serve(async (conn) => {
      await acceptLogin(conn);
      await conn.expect('LIST');
      conn.send(listing(['1 100', '2 lots']));
      await conn.closed();
    });
    const client = await Pop3Client.connect(plainOptions(srv));
    await assert.rejects(client.list(), (error: unknown) => {
      isError(Pop3ProtocolError, 'POP3_BAD_REPLY')(error);
      assert.match((error as Error).message, /"2 lots"/);
      return true;
    });
  });
});
