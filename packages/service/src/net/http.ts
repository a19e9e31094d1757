import type { Socket } from 'node:net';
import { Agent, buildConnector } from 'undici';
import { parseAddress } from './address.js';
import { AddressRefusedError, type AddressGuard, type CheckOptions } from './guard.js';

/**
 * An HTTP dispatcher for `fetch` (its `dispatcher` option) that connects only where the guard
 * allows: names through the guard's `lookup` (the approved address is the one dialled), IP
 * literals checked before the socket is opened, and the peer's address checked again once
 * connected, before a byte of the request is written.
 *
 * Redirects are the caller's business: pass `redirect: 'manual'` and treat a 3xx as a failure,
 * or a receiver could send the request on to an address nobody checked.
 */
export function guardedDispatcher(guard: AddressGuard, options: CheckOptions = {}): Agent {
  const connect = buildConnector({ lookup: guard.lookupFunction(options) } as buildConnector.BuildOptions);
  return new Agent({
    connect: (connectOptions, callback) => {
      const host = connectOptions.hostname;
      const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
      if (parseAddress(bare) !== undefined) {
        try {
          guard.check(host, bare, options);
        } catch (error) {
          return callback(error as Error, null);
        }
      }
      connect(connectOptions, (error, socket) => {
        if (error !== null) return callback(error, null);
        const refused = refusal(guard, host, socket as Socket, options);
        if (refused === undefined) return callback(null, socket);
        (socket as Socket).destroy();
        callback(refused, null);
      });
    },
  });
}

function refusal(guard: AddressGuard, host: string, socket: Socket, options: CheckOptions): AddressRefusedError | undefined {
  const peer = socket.remoteAddress;
  if (peer === undefined) return new AddressRefusedError(host, '(unknown)', 'reserved', 'a connection whose peer address is unknown');
  try {
    guard.check(host, peer, options);
    return undefined;
  } catch (error) {
    if (error instanceof AddressRefusedError) return error;
    throw error;
  }
}

/** The AddressRefusedError behind a failed fetch, if that is why it failed (undici wraps it in `cause`). */
export function addressRefusal(error: unknown): AddressRefusedError | undefined {
  for (let current = error, depth = 0; current instanceof Error && depth < 4; current = current.cause, depth++) {
    if (current instanceof AddressRefusedError) return current;
  }
  return undefined;
}
