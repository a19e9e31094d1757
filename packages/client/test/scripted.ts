/** What the scripted-server tests share: one server per test, closed (and checked) after it. */
import assert from 'node:assert/strict';
import { afterEach } from 'node:test';
import type { Pop3ClientOptions } from '../src/index.ts';
import type { Pop3Error } from '../src/errors.ts';
import { startScriptedServer, type Script, type ScriptedServer } from '../../../support/scripted-server.ts';

/** Returns `serve(script)`; the server it starts is closed after each test, rethrowing script failures. */
export function useScriptedServer(): (script: Script) => Promise<ScriptedServer> {
  let server: ScriptedServer | undefined;
  afterEach(async () => {
    const current = server;
    server = undefined;
    await current?.close();
  });
  return async (script) => {
    server = await startScriptedServer(script);
    return server;
  };
}

/** Plain-text login as alice/secret (opted in), with a short timeout. */
export function plainOptions(srv: ScriptedServer, extra: Partial<Pop3ClientOptions> = {}): Pop3ClientOptions {
  return {
    host: srv.host,
    port: srv.port,
    tls: 'none',
    user: 'alice',
    password: 'secret',
    allowPlaintextAuth: true,
    timeout: 1000,
    ...extra,
  };
}

/** An assert.rejects predicate: an instance of `type`, with `code` if given. */
export function isError(type: abstract new (...args: never[]) => Pop3Error, code?: string) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof type, `expected ${type.name}, got ${String(error)}`);
    if (code !== undefined) assert.equal((error as Pop3Error).code, code);
    return true;
  };
}
