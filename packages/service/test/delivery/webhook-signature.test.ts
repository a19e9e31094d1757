/**
 * Popwire-Signature against the scheme the README documents, not against popwire's own
 * verifySignature (which shares its digest with the signer, so a change to both, say `<t>:`
 * for `<t>.`, would pass any test that signs with one and checks with the other):
 *
 * - a fixed vector: secret, timestamp and body given here, the header value computed once with
 *   `printf '%s' '<t>.<body>' | openssl dgst -sha256 -hmac <secret>` and written as a literal;
 * - node:crypto's HMAC in the test, over the string the README names, for bodies of every kind;
 * - a receiver written from the README's words alone, sent real events by the dispatcher.
 */
import assert from 'node:assert/strict';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { testStores } from '../../../../support/stores.ts';
import { signatureHeader, verifySignature, WebhookDispatcher } from '../../src/delivery/webhook.ts';
import { accountService, until } from '../jobs/harness.ts';

const README = new URL('../../../../README.md', import.meta.url);
/** The README's words a receiver is written from; the test fails if they change without it. */
const DOCUMENTED = [
  '`Popwire-Signature: t=<unix seconds>,v1=<hex>`',
  'where `v1` is HMAC-SHA256 with the shared secret over `<t>.<raw body>`',
];

const VECTOR = {
  secret: 'whsec-known-vector',
  timestamp: 1767225600,
  body: '{"type":"message.new","message":{"subject":"Grüße"}}',
  header: 't=1767225600,v1=d1c8f5b87ffde19ff6ffee976ffb2339d6496add38c2f34e64e9ac170eb861a6',
};

/**
 * A receiver's check, from the README alone: parse `t=<unix seconds>,v1=<hex>`, HMAC-SHA256 with
 * the shared secret over `<t>.<raw body>`, compare in constant time, refuse an old `t`.
 */
function readmeReceiverAccepts(secret: string, header: string | undefined, rawBody: Buffer, nowSeconds: number): boolean {
  const match = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header ?? '');
  if (match === null) return false;
  const [, t, v1] = match;
  if (Math.abs(nowSeconds - Number(t)) > 300) return false;
  const expected = createHmac('sha256', secret).update(Buffer.concat([Buffer.from(`${t}.`), rawBody])).digest();
  return timingSafeEqual(expected, Buffer.from(v1!, 'hex'));
}

describe('Popwire-Signature, checked against the documented scheme', () => {
  it('the README still documents the scheme this file checks against', async () => {
    const readme = await readFile(README, 'utf8');
    for (const words of DOCUMENTED) assert.ok(readme.includes(words), `README.md says ${words}`);
  });

  it('signs a fixed vector to the header value computed once with openssl', () => {
    assert.equal(signatureHeader(VECTOR.secret, VECTOR.body, VECTOR.timestamp), VECTOR.header);
    assert.equal(signatureHeader(VECTOR.secret, Buffer.from(VECTOR.body), VECTOR.timestamp), VECTOR.header, 'the same from the body as bytes');
    assert.ok(verifySignature(VECTOR.secret, VECTOR.header, VECTOR.body, 300, VECTOR.timestamp));
  });

  it('signs any body and timestamp as node:crypto HMAC-SHA256 over "<t>.<raw body>" computes it', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1 }), fc.string({ unit: 'binary' }), fc.integer({ min: 0, max: 99_999_999_999 }), (secret, body, t) => {
        const v1 = createHmac('sha256', secret).update(`${t}.${body}`).digest('hex');
        assert.equal(signatureHeader(secret, body, t), `t=${t},v1=${v1}`);
        assert.ok(verifySignature(secret, `t=${t},v1=${v1}`, body, 300, t));
        assert.ok(readmeReceiverAccepts(secret, `t=${t},v1=${v1}`, Buffer.from(body), t));
      }),
      { numRuns: 100 },
    );
  });

  it('delivers events that a receiver written from the README alone accepts, and only with its secret', async () => {
    const secret = 'readme-receiver-secret';
    const seen: Array<{ headers: IncomingHttpHeaders; body: Buffer; accepted: boolean; withOtherSecret: boolean }> = [];
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        const header = req.headers['popwire-signature'] as string | undefined;
        const now = Date.now() / 1000;
        const accepted = readmeReceiverAccepts(secret, header, body, now);
        seen.push({ headers: req.headers, body, accepted, withOtherSecret: readmeReceiverAccepts('another-secret', header, body, now) });
        res.statusCode = accepted ? 204 : 401;
        res.end();
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
    await using store = await testStores().open('sqlite');
    const dispatcher = new WebhookDispatcher(store, accountService(store), { defaultTarget: { url, secret }, pollMs: 20 });
    try {
      const bodies = [VECTOR.body, JSON.stringify({ type: 'sync.failed', error: { message: 'ünïcødé, "quotes" and \\ backslashes' } })];
      const ids = await store.webhookEvents.add(bodies.map((body) => ({ accountId: null, url, type: 'message.new', body })), Date.now());
      dispatcher.start();
      await until(() => seen.length >= bodies.length, 'both events reach the receiver');
      assert.deepEqual(seen.map((r) => r.body.toString('utf8')).sort(), [...bodies].sort(), 'the bodies as stored, byte for byte');
      assert.deepEqual(seen.map((r) => r.accepted), [true, true], 'the README receiver accepts each');
      assert.deepEqual(seen.map((r) => r.withOtherSecret), [false, false], 'and would not with another secret');
      await until(async () => (await Promise.all(ids.map((id) => store.webhookEvents.get(id)))).every((e) => e?.delivered_at !== null), 'both events are recorded delivered');
    } finally {
      await dispatcher.stop(500);
      server.closeAllConnections();
      server.close();
    }
  });
});
