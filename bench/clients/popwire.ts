/**
 * popwire through its library API, as built (dist): retrieveMany (pipelined), each body read to a null sink.
 * `seconds` is the retrieval; `sessionSeconds` is connect to close, QUIT answered (scenario h).
 * The body's `for await` is what most callers write; CPU time covers the session as for the ceiling.
 */
import { Pop3Client } from 'popwire';
import { peakRssKiB, plainSession, range, readJob, type Result } from './common.ts';

const job = readJob();
const since = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e9;
const startRssMiB = process.memoryUsage.rss() / 2 ** 20;
const cpu = process.cpuUsage();
const started = process.hrtime.bigint();
// USER/PASS, as the raw ceiling logs in: scenario (h) times connect to QUIT, so both must do the
// same work. Left to choose, the library logs in with SCRAM-SHA-256 (its PBKDF2 on both sides, two
// more round trips): about 3 ms of this process's CPU and Dovecot's own, which is not retrieval.
const client = await Pop3Client.connect({ ...plainSession(job), auth: 'USER' });
const retrieving = process.hrtime.bigint();
let messages = 0;
let bytes = 0;
for await (const { body } of client.retrieveMany(range(job.count))) {
  for await (const chunk of body) bytes += (chunk as Buffer).length;
  messages++;
}
const seconds = since(retrieving);
await client.quit();
const sessionSeconds = since(started);
const { user, system } = process.cpuUsage(cpu);
const result: Result = { messages, bytes, seconds, sessionSeconds, cpuSeconds: (user + system) / 1e6, peakRssMiB: peakRssKiB() / 1024, startRssMiB };
process.stdout.write(`${JSON.stringify(result)}\n`);
