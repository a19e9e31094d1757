/**
 * OAuth 2.0 access tokens for accounts: a fixed token as given, or one refreshed at a real
 * (local) token endpoint with the refresh grant (RFC 6749 section 6), kept until shortly before
 * it expires, and a refusal that says what the endpoint said without its body's secrets.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { OAuthRefreshError, tokenSource } from '../../src/accounts/oauth.ts';
import { AddressGuard, AddressRefusedError } from '../../src/net/guard.ts';

let server: Server;
let url: string;
const requests: URLSearchParams[] = [];
let answer: (n: number) => { status: number; body: unknown } = (n) => ({ status: 200, body: { access_token: `token-${n}`, expires_in: 3600 } });

before(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      requests.push(new URLSearchParams(body));
      const { status, body: reply } = answer(requests.length);
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(reply));
    });
  }).listen(0, '127.0.0.1');
  await once(server, 'listening');
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`;
});
after(() => server.close());

describe('tokenSource', () => {
  it('gives a fixed access token as it is, asking no one', async () => {
    const before = requests.length;
    assert.equal(await tokenSource({ accessToken: 'fixed' })(), 'fixed');
    assert.equal(requests.length, before);
  });

  it('refreshes with the refresh grant and keeps the token until shortly before it expires', async () => {
    requests.length = 0;
    answer = (n) => ({ status: 200, body: { access_token: `token-${n}`, expires_in: 3600 } });
    const source = tokenSource({ refreshToken: 'r-1', tokenUrl: url, clientId: 'client', clientSecret: 'shh' });
    assert.equal(await source(), 'token-1');
    assert.equal(await source(), 'token-1', 'kept, not refreshed again');
    assert.equal(requests.length, 1);
    assert.deepEqual(Object.fromEntries(requests[0]!), { grant_type: 'refresh_token', refresh_token: 'r-1', client_id: 'client', client_secret: 'shh' });
  });

  it('refreshes again once the token is about to expire', async () => {
    requests.length = 0;
    answer = (n) => ({ status: 200, body: { access_token: `short-${n}`, expires_in: 30 } });
    const source = tokenSource({ refreshToken: 'r', tokenUrl: url });
    assert.equal(await source(), 'short-1');
    assert.equal(await source(), 'short-2', 'a 30 s token is inside the 60 s margin: refreshed at each login');
  });

  it('says the endpoint refused, with its error code, and nothing else of its body', async () => {
    answer = () => ({ status: 400, body: { error: 'invalid_grant', error_description: 'refresh token r-secret revoked' } });
    await assert.rejects(tokenSource({ refreshToken: 'r-secret', tokenUrl: url })(), (e: unknown) => {
      assert.ok(e instanceof OAuthRefreshError);
      assert.match(e.message, /HTTP 400, invalid_grant/);
      assert.equal(e.message.includes('r-secret'), false);
      return true;
    });
  });

  it('fails clearly with neither a token nor refresh settings', async () => {
    await assert.rejects(tokenSource({})(), OAuthRefreshError);
  });
});

describe('tokenSource under the outbound address policy', () => {
  it('does not call an http token endpoint on loopback: nothing is sent, and the error names the refusal', async () => {
    requests.length = 0;
    const source = tokenSource({ refreshToken: 'r-1', tokenUrl: url, clientSecret: 'shh' }, { network: new AddressGuard() });
    await assert.rejects(source(), (e: unknown) => {
      assert.ok(e instanceof OAuthRefreshError);
      assert.match(e.message, /127\.0\.0\.1 is a loopback address.*ADDRESS_REFUSED/);
      assert.ok(e.cause instanceof AddressRefusedError);
      return true;
    });
    assert.equal(requests.length, 0);
  });

  it('refuses plain http even to an address the policy would allow over https, unless the host is listed', async () => {
    requests.length = 0;
    const guard = new AddressGuard({ resolve: async () => [{ address: '93.184.216.34', family: 4 }] });
    await assert.rejects(tokenSource({ refreshToken: 'r', tokenUrl: 'http://idp.example/token' }, { network: guard })(), /plain http.*ADDRESS_REFUSED/);
    await assert.rejects(tokenSource({ refreshToken: 'r', tokenUrl: 'file:///etc/passwd' }, { network: guard })(), /must be an https URL/);
  });

  it('calls an http endpoint the operator allows', async () => {
    requests.length = 0;
    answer = (n) => ({ status: 200, body: { access_token: `allowed-${n}`, expires_in: 3600 } });
    const source = tokenSource({ refreshToken: 'r', tokenUrl: url }, { network: new AddressGuard({ allow: ['127.0.0.1'] }) });
    assert.equal(await source(), 'allowed-1');
  });

  it('does not follow a redirect, which would carry the client secret elsewhere', async () => {
    const redirecting = createServer((_req, res) => res.writeHead(307, { location: url }).end()).listen(0, '127.0.0.1');
    await once(redirecting, 'listening');
    try {
      requests.length = 0;
      const from = `http://127.0.0.1:${(redirecting.address() as AddressInfo).port}/token`;
      const source = tokenSource({ refreshToken: 'r', tokenUrl: from, clientSecret: 'shh' }, { network: new AddressGuard({ allow: ['127.0.0.1'] }) });
      await assert.rejects(source(), /redirect \(HTTP 307\), which is not followed/);
      assert.equal(requests.length, 0);
    } finally {
      redirecting.close();
    }
  });
});
