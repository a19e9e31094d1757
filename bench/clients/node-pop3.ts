/** The npm package node-pop3, one RETR after another as its API offers (it returns strings). */
import Pop3Command from 'node-pop3';
import { measure, readJob } from './common.ts';

const job = readJob();
const pop3 = new Pop3Command({ host: job.host, port: job.port, user: job.user, password: job.password, tls: false });
await pop3.UIDL(1); // logs in, outside the timed part like the others
await measure(async () => {
  let bytes = 0;
  for (let n = 1; n <= job.count; n++) bytes += Buffer.byteLength(await pop3.RETR(n), 'latin1');
  return { messages: job.count, bytes };
});
await pop3.QUIT();
