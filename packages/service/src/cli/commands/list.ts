import { Pop3ServerError, type Pop3Client } from 'popwire';
import { report } from '../output.js';
import { sessionCommand } from '../session-command.js';

export const list = sessionCommand({
  name: 'list',
  description: "Print each message's number and size in octets, and its unique id when the server has UIDL",
  needsLogin: true,
  async run(client) {
    // Both go out in one write when the server pipelines.
    const [sizes, uids] = await Promise.all([client.list(), uidsIfAny(client)]);
    const rows = sizes.map(({ n, size }) => ({ n, size, uid: uids.get(n) }));
    return report(
      rows.map(({ n, size, uid }) => (uid === undefined ? `${n} ${size}` : `${n} ${size} ${uid}`)),
      rows,
    );
  },
});

/**
 * Asks UIDL rather than trusting CAPA: servers from before RFC 2449 have UIDL but no CAPA. Their
 * -ERR means "no UIDL here", and the listing goes on without uids.
 */
async function uidsIfAny(client: Pop3Client): Promise<Map<number, string>> {
  try {
    return new Map((await client.uidl()).map(({ n, uid }) => [n, uid]));
  } catch (error) {
    if (error instanceof Pop3ServerError) return new Map();
    throw error;
  }
}
