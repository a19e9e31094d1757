import type { Engine, Exchange } from '../engine.js';
import { isRetryableResponseCode, Pop3ConnectionError, Pop3ProtocolError, type Pop3Error } from '../errors.js';
import type { StatusLine } from '../protocol/status.js';

/**
 * RFC 1939 section 4: the server speaks first. A -ERR greeting (seen as "too many connections"
 * or "[SYS/TEMP] try later") is a refusal to serve us; the connection is then closed.
 */
export function readGreeting(engine: Engine): Promise<StatusLine> {
  return new Promise((resolve, reject) => {
    const exchange: Exchange = {
      command: undefined,
      barrier: true,
      onStatus(status) {
        if (status.status === 'ok') resolve(status);
        else if (status.status === 'err') {
          reject(
            new Pop3ConnectionError(`The server refused the connection: ${status.text || '-ERR'}`, {
              code: 'POP3_CONNECTION_CLOSED',
              response: status.text,
              responseCode: status.code,
              retryable: status.code === undefined || isRetryableResponseCode(status.code),
            }),
          );
        } else {
          reject(new Pop3ProtocolError('The server greeted with a SASL continuation', { code: 'POP3_BAD_REPLY' }));
        }
        return 'done';
      },
      onData: () => true,
      onEnd() {},
      onFail: (error: Pop3Error) => reject(error),
    };
    engine.expectGreeting(exchange);
  });
}
