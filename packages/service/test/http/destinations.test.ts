/**
 * An account's `destinations` through the API: given on create and update, shown on get without
 * any secret, checked with clear 400s; MDA commands, Maildir folders and Unix sockets only where
 * the operator's config allows them; network destinations through the outbound address guard,
 * like POP3 hosts; and, against a real Dovecot (POP3 source, LMTP destination), a sync that
 * delivers and shows each message's delivery state in the message API.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startDeliveryDovecot, dropDeliveryHeaders, type DeliveryDovecot } from '../../../../support/dovecot-delivery.ts';
import { expectedRetrBytes } from '../../../../support/dovecot.ts';
import { bulkMessages } from '../../../../support/fixtures.ts';
import { testStores } from '../../../../support/stores.ts';
import { AddressGuard } from '../../src/net/guard.ts';
import { accountBody, startApp, LOOPBACK, type TestApp } from './helpers.ts';

const stores = testStores();
let dovecot: DeliveryDovecot;
before(async () => {
  dovecot = await startDeliveryDovecot();
});
after(() => dovecot?.stop());

const POLICY = { mdaAllow: ['/usr/bin/procmail'], maildirAllow: ['/srv/mail'], socketAllow: ['/run/dovecot/lmtp'] };
const SMTP_PASSWORD = 'smtp-password-never-shown-4711';

async function app(options: { network?: AddressGuard } = {}): Promise<TestApp> {
  return startApp(await stores.open('sqlite'), { destinations: POLICY, ...options });
}

function body(destinations: unknown[], extra: Record<string, unknown> = {}) {
  return { ...accountBody({ host: dovecot.host, port: dovecot.dovecot.port }, dovecot.users.alice!), tls: 'none', allowPlaintextAuth: true, webhook: null, destinations, ...extra };
}

describe('account destinations through the API', () => {
  it('takes a list on create, shows it on get without the secrets, and keeps sealed credentials when a PATCH repeats a destination without them', async () => {
    await using api = await app();
    const created = await api.request('POST', '/v1/accounts', {
      body: body([
        { spec: `lmtp:127.0.0.1:${dovecot.lmtpPort}`, to: 'bob' },
        { spec: 'smtp:127.0.0.1:2525', credentials: { type: 'password', user: 'relay', password: SMTP_PASSWORD }, uidHeader: false },
      ]),
    });
    assert.equal(created.status, 201, created.text);
    assert.ok(!created.text.includes(SMTP_PASSWORD));
    assert.deepEqual(
      created.json.destinations.map((d: Record<string, unknown>) => [d.kind, d.spec, d.to, d.credentialType, d.uidHeader]),
      [
        ['lmtp', `lmtp:127.0.0.1:${dovecot.lmtpPort}`, 'bob', null, true],
        ['smtp', 'smtp:127.0.0.1:2525', null, 'password', false],
      ],
    );
    const id = created.json.id;
    const sealed = await api.store.db.selectFrom('account_destinations').select('credentials').where('kind', '=', 'smtp').executeTakeFirstOrThrow();
    assert.match(sealed.credentials!, /^v1\./);
    assert.ok(!sealed.credentials!.includes(SMTP_PASSWORD));

    const patched = await api.request('PATCH', `/v1/accounts/${id}`, { body: { destinations: [{ spec: 'smtp:127.0.0.1:2525' }] } });
    assert.equal(patched.status, 200, patched.text);
    assert.deepEqual(
      patched.json.destinations.map((d: Record<string, unknown>) => [d.spec, d.credentialType]),
      [['smtp:127.0.0.1:2525', 'password']],
    );
    const got = await api.request('GET', `/v1/accounts/${id}`);
    assert.equal(got.json.destinations.length, 1);
    assert.ok(!got.text.includes(SMTP_PASSWORD));
    // The list reads every account's destinations at once: each must still get its own.
    const other = await api.request('POST', '/v1/accounts', { body: body([], { name: 'Bob', username: 'bob' }) });
    assert.equal(other.status, 201, other.text);
    const listed = await api.request('GET', '/v1/accounts');
    const counts = new Map(listed.json.accounts.map((a: { id: number; destinations: unknown[] }) => [a.id, a.destinations.length]));
    assert.deepEqual([counts.get(id), counts.get(other.json.id)], [1, 0]);
  });

  it("keeps a destination's secret under the key ring: rotation re-seals it, a start without its key is refused, forgetting the key drops it", async () => {
    const { randomBytes } = await import('node:crypto');
    const { SecretBox } = await import('../../src/accounts/secrets.ts');
    const { AccountService } = await import('../../src/accounts/service.ts');
    const { checkKeyRing, forgetLostKeys } = await import('../../src/accounts/key-check.ts');
    const { sealedKeyId } = await import('../../src/accounts/secrets.ts');
    const store = await stores.open('sqlite');
    const [oldKey, newKey] = [randomBytes(32), randomBytes(32)];
    const before = new AccountService(store, new SecretBox([oldKey]));
    const account = await before.create({ ...body([{ spec: 'smtp:127.0.0.1:2525', credentials: { type: 'password', password: SMTP_PASSWORD } }]), webhook: undefined } as never);
    const sealed = async () => (await store.db.selectFrom('account_destinations').select('credentials').executeTakeFirstOrThrow()).credentials;
    const first = await sealed();
    assert.equal(await new AccountService(store, new SecretBox([newKey, oldKey])).rotateKeys(), 2, "the account's password and the destination's");
    const rotated = await sealed();
    assert.notEqual(rotated, first);
    await checkKeyRing(store, new SecretBox([newKey]));
    // Only the destination's secret under the old key again: a ring without it is refused, naming the account.
    await store.db.updateTable('account_destinations').set({ credentials: first }).execute();
    await assert.rejects(checkKeyRing(store, new SecretBox([newKey])), new RegExp(`${sealedKeyId(first!)} \\(account ${account.id}\\)`));
    await forgetLostKeys(store, new SecretBox([newKey]), [sealedKeyId(first!)!]);
    assert.equal(await sealed(), null);
    await checkKeyRing(store, new SecretBox([newKey]));
    await store.close();
  });

  it('refuses an MDA command unless the config allows its absolute path, and a shell command always', async () => {
    await using api = await app();
    const cases: Array<[string, RegExp]> = [
      ['mda:/usr/bin/maildrop', /running \/usr\/bin\/maildrop is not allowed: MDA commands are off for API callers unless the operator lists/],
      ['mda:procmail -d %T', /running procmail is not allowed/],
      ['mda-shell:procmail | tee /tmp/x', /never available through the API/],
      ['mbox:/srv/mail/box', /an mbox is not available through the API/],
      ['maildir:/home/alice/Maildir', /not under a folder the operator allows/],
      ['maildir:/srv/mail/../../etc', /not under a folder the operator allows/],
      ['lmtp:unix:/tmp/other.sock', /not in destinations.lmtp.sockets/],
      ['lmtp:127.0.0.1:99999', /Not a port number/],
      ['carrier-pigeon:home', /Unknown destination kind/],
    ];
    for (const [spec, message] of cases) {
      const reply = await api.request('POST', '/v1/accounts', { body: body([{ spec }]) });
      assert.equal(reply.status, 400, `${spec}: ${reply.text}`);
      assert.equal(reply.json.error.field, 'body.destinations[0].spec', spec);
      assert.match(reply.json.error.message, message, spec);
    }
    assert.equal((await api.request('GET', '/v1/accounts')).json.accounts.length, 0, 'nothing made by a refused request');
    const credentialsOnLmtp = await api.request('POST', '/v1/accounts', { body: body([{ spec: 'lmtp:127.0.0.1:24', credentials: { type: 'password', password: 'x' } }]) });
    assert.equal(credentialsOnLmtp.status, 400);
    assert.equal(credentialsOnLmtp.json.error.field, 'body.destinations[0].credentials');

    const allowed = await api.request('POST', '/v1/accounts', {
      body: body([{ spec: "mda:/usr/bin/procmail -d '%T'" }, { spec: 'maildir:/srv/mail/alice' }, { spec: 'lmtp:unix:/run/dovecot/lmtp' }]),
    });
    assert.equal(allowed.status, 201, allowed.text);
    assert.deepEqual(
      allowed.json.destinations.map((d: Record<string, unknown>) => d.spec),
      ['mda:/usr/bin/procmail -d %T', 'maildir:/srv/mail/alice', 'lmtp:unix:/run/dovecot/lmtp'],
    );
  });

  it('refuses a network destination at an internal address: a literal with a 400, a name when the sync opens it, and then nothing is deleted', async () => {
    // This deployment allows its POP3 server's loopback address by name only: 127.0.0.1 as a
    // destination is internal. The name `lmtp.internal` resolves to 10.0.0.7.
    const network = new AddressGuard({ allow: ['127.0.0.1/32'], resolve: async () => [{ address: '10.0.0.7', family: 4 }] });
    await using api = await app({ network });
    const literal = await api.request('POST', '/v1/accounts', { body: body([{ spec: 'smtp:169.254.169.254:25' }]) });
    assert.equal(literal.status, 400, literal.text);
    assert.equal(literal.json.error.field, 'body.destinations[0].spec');
    assert.match(literal.json.error.message, /ADDRESS_REFUSED/);

    await dovecot.dovecot.setMailbox('alice', bulkMessages(2, 800));
    const created = await api.request('POST', '/v1/accounts', { body: body([{ spec: 'lmtp:lmtp.internal:24' }], { policy: { retention: 'delete' } }) });
    assert.equal(created.status, 201, created.text);
    const report = await api.sync(created.json.id);
    assert.equal(report.status, 'failed');
    assert.match(String(report.error), /lmtp\.internal resolves to a private address.*ADDRESS_REFUSED/);
    assert.equal(report.deleted, 0);
    assert.equal(await api.store.messages.count(created.json.id), 2, 'stored first, as always');
  });

  it('syncs into a real Dovecot LMTP and shows each message delivered in the message API; skipExisting leaves what was there', async () => {
    await using api = await startApp(await stores.open('sqlite'), { destinations: POLICY, network: new AddressGuard({ allow: LOOPBACK }) });
    const before = bulkMessages(5, 1200);
    await dovecot.dovecot.setMailbox('alice', before.slice(0, 2));
    const delivered = (await dovecot.readMaildir('bob')).length;
    const created = await api.request('POST', '/v1/accounts', {
      body: body([{ spec: `lmtp:127.0.0.1:${dovecot.lmtpPort}`, to: 'bob' }], { skipExisting: true, policy: { retention: 'delete' } }),
    });
    assert.equal(created.status, 201, created.text);
    assert.equal(created.json.skipExisting, true);
    const first = await api.sync(created.json.id);
    assert.equal(first.status, 'ok', String(first.error));
    assert.equal(first.ignoredExisting, 2);
    for (const m of before.slice(2)) await dovecot.dovecot.deliver('alice', m);
    const second = await api.sync(created.json.id);
    assert.equal(second.status, 'ok', String(second.error));
    assert.equal(second.newMessages, 3);
    assert.equal(second.delivery.delivered, 3);
    assert.equal(second.deleted, 3);

    const files = (await dovecot.readMaildir('bob')).slice(delivered);
    assert.equal(files.length, 3);
    // Byte for byte, after LMTP's own three fields and our X-Popwire-UID (Dovecot stores LF endings).
    const lf = (b: Buffer) => b.toString('latin1').replaceAll('\r\n', '\n');
    assert.deepEqual(
      files.map((f) => lf(dropDeliveryHeaders(f)).replace(/^X-Popwire-UID: \S+\n/, '')).sort(),
      before.slice(2).map((m) => lf(expectedRetrBytes(m))).sort(),
    );

    const page = await api.request('GET', `/v1/accounts/${created.json.id}/messages`);
    const messageId = page.json.messages[0].id;
    const deliveries = await api.request('GET', `/v1/messages/${messageId}/deliveries`);
    assert.equal(deliveries.status, 200, deliveries.text);
    assert.deepEqual(
      deliveries.json.deliveries.map((d: Record<string, unknown>) => [d.key, d.state, d.attempts]),
      [[`lmtp:127.0.0.1:${dovecot.lmtpPort}`, 'delivered', 1]],
    );
  });
});
