import type { Readable } from 'node:stream';

/**
 * Reads `body` to its end, handing each chunk to `onChunk`; resolves at the end, rejects with the
 * body's error (the connection dropped), with what `onChunk` threw or rejected with (a failed
 * write), or if the body closes before its end. On failure the body is destroyed, so that the
 * connection drains what is left of the message.
 *
 * `onChunk` may return a promise (a stream that wants the writer to wait): reading pauses until it
 * settles. The deliveries' own writes are synchronous, and return nothing.
 *
 * Not stream.pipeline(): that costs an AbortController and a DOMException per call, which was
 * a third of fetch's CPU time on a mailbox of small messages; a message is one read loop here.
 */
export function readInto(body: Readable, onChunk: (chunk: Buffer) => void | Promise<void>): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    /** The last onChunk's promise, while it is pending: the end waits for it. */
    let inFlight: Promise<void> | undefined;
    const settle = (error: unknown, failed: boolean) => {
      if (settled) return;
      settled = true;
      body.off('data', onData);
      body.off('end', onEnd);
      body.off('error', onError);
      body.off('close', onClose);
      if (!failed) {
        resolve();
        return;
      }
      body.destroy();
      reject(error);
    };
    const onError = (error: Error) => settle(error, true);
    // The stream can end while the last chunk's write is pending (it was already read).
    const onEnd = () => (inFlight === undefined ? settle(undefined, false) : void inFlight.then(() => settle(undefined, false)));
    const onClose = () => {
      if (!body.readableEnded) settle(new Error('The message stream closed before its end'), true);
    };
    const onData = (chunk: Buffer) => {
      let waiting: void | Promise<void>;
      try {
        waiting = onChunk(chunk);
      } catch (error) {
        settle(error, true);
        return;
      }
      if (waiting === undefined) return;
      body.pause();
      inFlight = waiting.then(
        () => {
          inFlight = undefined;
          if (!settled) body.resume();
        },
        (error: unknown) => settle(error, true),
      );
    };
    // Failed before we got to it (the connection dropped while the file was being created).
    if (body.errored) {
      settle(body.errored, true);
      return;
    }
    if (body.destroyed && !body.readableEnded) {
      settle(new Error('The message stream closed before its end'), true);
      return;
    }
    body.on('error', onError);
    body.on('end', onEnd);
    body.on('close', onClose);
    body.on('data', onData);
  });
}
