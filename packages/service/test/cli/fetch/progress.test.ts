/** The progress bar: drawn on a terminal only, with messages, octets, rate and ETA. */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { createProgress, formatBytes, formatDuration } from '../../../src/cli/fetch/progress.ts';

/** A stream that says it is a terminal, and keeps what is drawn on it. */
function fakeStream(isTTY: boolean): { stream: NodeJS.WriteStream; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk.toString('utf8'));
      done();
    },
  }) as unknown as NodeJS.WriteStream;
  Object.assign(stream, { isTTY, columns: 120 });
  // Drawn lines without the terminal's control sequences.
  return { stream, text: () => chunks.join('').replace(/\x1b(\[[0-9;?]*[A-Za-z]|[78])/g, '') };
}

describe('createProgress', () => {
  it('on a terminal, shows messages, octets against the LIST total, the rate and the ETA', async () => {
    const { stream, text } = fakeStream(true);
    const progress = createProgress(stream, { enabled: true });
    try {
      progress.start(3, 3 * 1024 * 1024);
      assert.match(text(), /0% \| 0\/3 messages \| 0 B\/3\.0 MiB \| - \| ETA -/);
      progress.addBytes(1024 * 1024);
      progress.addMessage();
      await delay(300);
      progress.addBytes(1024 * 1024);
      progress.addMessage();
      // Redrawn at most ten times a second.
      await delay(150);
      assert.match(text(), /66% \| 2\/3 messages \| 2\.0 MiB\/3\.0 MiB \| [0-9.]+ [KMG]iB\/s \| ETA \d+s/);
    } finally {
      progress.stop();
    }
    progress.stop();
    assert.match(text(), /\n$/, 'stop gives the line back');
  });

  it('draws nothing when the stream is not a terminal, or when disabled (--trace)', () => {
    for (const [isTTY, enabled] of [
      [false, true],
      [true, false],
    ] as const) {
      const { stream, text } = fakeStream(isTTY);
      const progress = createProgress(stream, { enabled });
      progress.start(1, 10);
      progress.addBytes(10);
      progress.addMessage();
      progress.stop();
      assert.equal(text(), '');
    }
  });
});

describe('formatting', () => {
  it('octets in binary units, durations in s, m and h', () => {
    assert.deepEqual([0, 1023, 1024, 1536, 10 * 1024 * 1024, 5 * 1024 ** 3].map(formatBytes), ['0 B', '1023 B', '1.0 KiB', '1.5 KiB', '10 MiB', '5.0 GiB']);
    assert.deepEqual([0.2, 59, 61, 3599, 3600 * 2 + 60 * 5].map(formatDuration), ['1s', '59s', '1m01s', '59m59s', '2h05m']);
  });
});
