/** Shared by the auth tests that script a server: the server's side of greeting, CAPA and login. */
import assert from 'node:assert/strict';
import { after, afterEach } from 'node:test';
import type { Pop3ClientOptions } from '../../src/index.ts';
import type { Pop3Error } from '../../src/errors.ts';
import { startScriptedServer, type Script, type ScriptedConnection, type ScriptedServer } from '../../../../support/scripted-server.ts';

const unhandled: unknown[] = [];
process.on('unhandledRejection', (reason) => unhandled.push(reason));
after(() => assert.deepEqual(unhandled, [], 'no promise may be left rejected and unhandled'));

let server: ScriptedServer | undefined;

/** Starts a scripted server for this test; it is closed (and its script's failures rethrown) after it. */
export async function serve(script: Script): Promise<ScriptedServer> {
  server = await startScriptedServer(script);
  return server;
}

afterEach(async () => {
  await server?.close();
  server = undefined;
});

export function sendCapa(conn: ScriptedConnection, caps: readonly string[]): void {
  conn.send(`+OK\r\n${caps.map((c) => `${c}\r\n`).join('')}.\r\n`);
}

/** The greeting, then the answer to the first CAPA. */
export async function greet(conn: ScriptedConnection, caps: readonly string[], greeting = '+OK scripted ready'): Promise<void> {
  conn.reply(greeting);
  await conn.expect('CAPA');
  sendCapa(conn, caps);
}

/** +OK to the login, and the CAPA the client asks after it. */
export async function loggedIn(conn: ScriptedConnection, caps: readonly string[] = ['TOP', 'UIDL']): Promise<void> {
  conn.reply('+OK logged in');
  await conn.expect('CAPA');
  sendCapa(conn, caps);
}

/** QUIT, +OK, and the server closes, as RFC 1939 section 6 has it (the client waits for that). */
export async function quit(conn: ScriptedConnection): Promise<void> {
  await conn.expect('QUIT');
  conn.reply('+OK bye');
  conn.socket.end();
}

export const b64 = (text: string | Buffer): string => Buffer.from(text).toString('base64');
export const unb64 = (text: string): string => Buffer.from(text, 'base64').toString('utf8');

export function options(srv: ScriptedServer, extra: Partial<Pop3ClientOptions> = {}): Pop3ClientOptions {
  return { host: srv.host, port: srv.port, tls: 'none', user: 'alice', timeout: 2000, ...extra };
}

/** A trace collector: every line as "client: ..." or "server: ...". */
export function tracer(): { lines: string[]; trace: NonNullable<Pop3ClientOptions['trace']> } {
  const lines: string[] = [];
  return { lines, trace: (event) => lines.push(`${event.direction}: ${event.line}`) };
}

export function isError(type: abstract new (...args: never[]) => Pop3Error, code: string, check?: (error: Pop3Error) => void) {
  return (error: unknown) => {
    assert.ok(error instanceof type, `expected ${type.name}, got ${String(error)}`);
    assert.equal((error as Pop3Error).code, code, (error as Error).message);
    check?.(error as Pop3Error);
    return true;
  };
}
