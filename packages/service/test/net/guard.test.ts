/**
 * The outbound address policy at the point of connection: refused categories, the operator's
 * allow list, and DNS rebinding (a name that is public when checked and loopback when dialled).
 */
import assert from 'node:assert/strict';
import { createServer, connect, type AddressInfo, type Server } from 'node:net';
import { createServer as createHttpServer } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { Pop3Client } from 'popwire';
import { AddressGuard, AddressRefusedError, parseAllowEntry, type Resolver } from '../../src/net/guard.ts';
import { addressRefusal, guardedDispatcher } from '../../src/net/http.ts';

const refused = (category: string) => (error: unknown) => {
  assert.ok(error instanceof AddressRefusedError, String(error));
  assert.equal(error.code, 'ADDRESS_REFUSED');
  assert.equal(error.category, category);
  return true;
};

/** A resolver that answers from a table, one answer after another per name (the last repeats). */
function scripted(table: Record<string, string[][]>): Resolver & { asked: string[] } {
  const asked: string[] = [];
  const resolver = async (host: string) => {
    asked.push(host);
    const answers = table[host];
    if (answers === undefined) throw Object.assign(new Error(`${host} not found`), { code: 'ENOTFOUND' });
    const answer = answers.length > 1 ? answers.shift()! : answers[0]!;
    return answer.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };
  return Object.assign(resolver, { asked });
}

describe('AddressGuard', () => {
  it('refuses each kind of address, literal or resolved, naming its category', async () => {
    const guard = new AddressGuard({
      resolve: scripted({ 'meta.example': [['169.254.169.254']], 'ula.example': [['fd00::5']], 'mixed.example': [['93.184.216.34', '10.1.2.3']] }),
    });
    for (const [host, category] of [
      ['127.0.0.1', 'loopback'],
      ['0x7f.1', 'loopback'],
      ['[::ffff:127.0.0.1]', 'loopback'],
      ['10.0.0.8', 'private'],
      ['100.64.1.1', 'cgnat'],
      ['169.254.169.254', 'link-local'],
      ['fe80::1%eth0', 'link-local'],
      ['[fc00::1]', 'unique-local'],
      ['[::ffff:8.8.8.8]', 'ipv4-mapped'],
      ['64:ff9b::a00:1', 'private'],
      ['2002:a00:1::', 'private'],
      ['224.0.0.251', 'multicast'],
      ['0.0.0.0', 'unspecified'],
      ['255.255.255.255', 'broadcast'],
      ['240.1.1.1', 'reserved'],
      ['meta.example', 'link-local'],
      ['ula.example', 'unique-local'],
      ['mixed.example', 'private'],
    ] as const) {
      await assert.rejects(guard.resolve(host), refused(category), host);
    }
  });

  it('lets public addresses through and names what it refused in the message', async () => {
    const guard = new AddressGuard({ resolve: scripted({ 'pop.example': [['93.184.216.34', '2606:2800:220:1::248']] }) });
    assert.deepEqual(await guard.resolve('pop.example'), [
      { address: '93.184.216.34', family: 4 },
      { address: '2606:2800:220:1::248', family: 6 },
    ]);
    await assert.rejects(guard.resolve('0x7f.1'), /^AddressRefusedError: 0x7f\.1 \(127\.0\.0\.1\) is a loopback address; not allowed by the network policy/);
  });

  it('names the kind of address a name resolved to, but not the address: refusals do not read out the internal DNS', async () => {
    const guard = new AddressGuard({ resolve: scripted({ 'intranet.corp': [['10.1.2.3']] }) });
    await assert.rejects(guard.resolve('intranet.corp'), (error: unknown) => {
      assert.ok(error instanceof AddressRefusedError);
      assert.match(error.message, /^intranet\.corp resolves to a private address \(RFC 1918\); not allowed/);
      assert.ok(!error.message.includes('10.1.2.3'));
      assert.equal(error.address, '10.1.2.3');
      return true;
    });
  });

  it('allows what the operator lists: CIDR blocks, single addresses, names and *.suffix', async () => {
    const guard = new AddressGuard({
      allow: ['10.20.0.0/16', '127.0.0.1', 'fd00::/8', 'pop.internal', '*.corp.example'],
      resolve: scripted({ 'pop.internal': [['192.168.9.9']], 'POP.INTERNAL.': [['192.168.9.9']], 'a.corp.example': [['172.16.0.4']], 'corp.example': [['172.16.0.5']] }),
    });
    await guard.resolve('10.20.3.4');
    await guard.resolve('::ffff:127.0.0.1'); // the mapped form of an allowed IPv4 address
    await guard.resolve('fd00::1');
    await guard.resolve('pop.internal');
    await guard.resolve('POP.INTERNAL.');
    await guard.resolve('a.corp.example');
    await assert.rejects(guard.resolve('10.21.0.1'), refused('private'));
    await assert.rejects(guard.resolve('127.0.0.2'), refused('loopback'));
    await assert.rejects(guard.resolve('corp.example'), refused('private'));
  });

  it('onlyAllowed refuses even a public address the operator did not list', async () => {
    const guard = new AddressGuard({ allow: ['tokens.internal'], resolve: scripted({ 'tokens.internal': [['10.0.0.2']], 'idp.example': [['93.184.216.34']] }) });
    await assert.rejects(guard.resolve('idp.example', { onlyAllowed: true }), refused('not-allowed'));
    await guard.resolve('tokens.internal', { onlyAllowed: true });
  });

  it('refuses an allow entry that is neither an address, a block nor a name', () => {
    for (const entry of ['10.0.0.0/33', '::/129', 'not a host', 'a/8', '10.0.0.1/x', 'fe80::1%eth0']) {
      assert.equal(parseAllowEntry(entry), undefined, entry);
      assert.throws(() => new AddressGuard({ allow: [entry] }), /network\.allow\[0\]/);
    }
  });
});

describe('DNS rebinding', () => {
  let server: Server;
  let port: number;
  let accepted = 0;
  before(async () => {
    server = createServer((socket) => {
      accepted++;
      socket.on('error', () => {});
      socket.end('+OK internal\r\n');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  after(() => new Promise((resolve) => server.close(resolve)));

  it('a name that was public when checked and is loopback when dialled is refused at connect', async () => {
    const resolve = scripted({ 'rebind.example': [['93.184.216.34'], ['127.0.0.1']] });
    const guard = new AddressGuard({ resolve });
    // A check ahead of time sees the public address...
    assert.deepEqual(await guard.resolve('rebind.example'), [{ address: '93.184.216.34', family: 4 }]);
    // ...but the connection asks again, and what it would dial is what is checked.
    await assert.rejects(
      Pop3Client.connect({ host: 'rebind.example', port, tls: 'none', lookup: guard.lookupFunction(), timeout: 2000 }),
      (error: unknown) => {
        assert.equal((error as { code?: string }).code, 'POP3_ADDRESS_REFUSED');
        assert.ok((error as Error).cause instanceof AddressRefusedError);
        return true;
      },
    );
    assert.deepEqual(resolve.asked, ['rebind.example', 'rebind.example']);
    assert.equal(accepted, 0);
  });

  it('the socket dials the address the guard approved, not a fresh answer', async () => {
    // Node's own sockets given this lookup connect where it says: prove it on a plain net.connect.
    const guard = new AddressGuard({ allow: ['127.0.0.1'], resolve: scripted({ 'ok.example': [['127.0.0.1']] }) });
    const socket = connect({ host: 'ok.example', port, lookup: guard.lookupFunction() });
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    assert.equal(socket.remoteAddress, '127.0.0.1');
    socket.destroy();
  });

  it('HTTP: a rebinding name is refused at connect, before the request is sent', async () => {
    let requests = 0;
    const http = createHttpServer((_request, response) => {
      requests++;
      response.end('secret admin page');
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    const httpPort = (http.address() as AddressInfo).port;
    try {
      const resolve = scripted({ 'hook.example': [['93.184.216.34'], ['127.0.0.1']] });
      const guard = new AddressGuard({ resolve });
      await guard.resolve('hook.example');
      const error = await fetch(`http://hook.example:${httpPort}/internal-admin`, { dispatcher: guardedDispatcher(guard) } as RequestInit).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.equal(addressRefusal(error)?.category, 'loopback');
      assert.equal(requests, 0);
    } finally {
      http.close();
    }
  });

  it('HTTP: IP literals in any URL spelling are refused before a socket is opened', async () => {
    const guard = new AddressGuard({ resolve: scripted({}) });
    for (const url of ['http://127.0.0.1:8025/', 'http://0x7f.1:8025/', 'http://2130706433:8025/', 'http://[::ffff:127.0.0.1]:8025/', 'http://127.1:8025/', 'https://[::1]:8025/']) {
      const error = await fetch(url, { dispatcher: guardedDispatcher(guard) } as RequestInit).then(() => undefined, (e: unknown) => e);
      assert.equal(addressRefusal(error)?.category, 'loopback', url);
    }
  });
});
