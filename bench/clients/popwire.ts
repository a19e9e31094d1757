/** popwire through its library API: retrieveMany (pipelined), each body read to a null sink. */
import { Pop3Client } from '../../packages/client/src/index.ts';
import { measure, range, readJob } from './common.ts';

const job = readJob();
const client = await Pop3Client.connect({
  host: job.host,
  port: job.port,
  tls: 'none',
  allowPlaintextAuth: true,
  user: job.user,
  password: job.password,
  timeout: 120_000,
});
await measure(async () => {
  let messages = 0;
  let bytes = 0;
  for await (const { body } of client.retrieveMany(range(job.count))) {
    for await (const chunk of body) bytes += (chunk as Buffer).length;
    messages++;
  }
  return { messages, bytes };
});
await client.quit();
