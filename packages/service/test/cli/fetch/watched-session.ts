/**
 * A POP3 session with alice on the test Dovecot, in clear text, for the transfer() tests, and the
 * same client with its DELEs reported as they are sent: the tests check what was deleted when.
 */
import { Pop3Client } from 'popwire';
import type { Dovecot } from '../../../../../support/dovecot.ts';
import type { TransferClient } from '../../../src/cli/fetch/transfer.ts';

export function connectAsAlice(dovecot: Dovecot): Promise<Pop3Client> {
  return Pop3Client.connect({
    host: dovecot.host,
    port: dovecot.port,
    tls: 'none',
    allowPlaintextAuth: true,
    user: 'alice',
    password: dovecot.users.alice!.password,
  });
}

/** The client as it is, `onDele` called before each DELE is sent (a Proxy: whatever else transfer() uses of it works as is). */
export function watchDeletes(client: Pop3Client, onDele: (n: number) => void): TransferClient {
  return new Proxy(client, {
    get(target, key) {
      if (key === 'delete') {
        return (n: number) => {
          onDele(n);
          return target.delete(n);
        };
      }
      const value: unknown = Reflect.get(target, key, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  }) as TransferClient;
}
