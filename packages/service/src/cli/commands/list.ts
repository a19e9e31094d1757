import { Pop3ServerError, type MessageUids, type Pop3Client } from 'popwire';
import { rows } from '../output.js';
import { sessionCommand } from '../session-command.js';

export const list = sessionCommand({
  name: 'list',
  description: "Print each message's number and size in octets, and its unique id when the server has UIDL",
  needsLogin: true,
  async run(client) {
    // Both go out in one write when the server pipelines. Both are held compactly (typed arrays,
    // not an object per message), and each line is made only as it is written.
    const [sizes, uids] = await Promise.all([client.sizeListing(), uidsIfAny(client)]);
    const uidOf = (n: number): string | undefined => {
      const i = uids?.indexOf(n) ?? -1;
      return i === -1 ? undefined : uids?.uid(i);
    };
    return rows(
      sizes.length,
      (i) => {
        const n = sizes.n(i);
        const uid = uidOf(n);
        return uid === undefined ? `${n} ${sizes.size(i)}` : `${n} ${sizes.size(i)} ${uid}`;
      },
      (i) => ({ n: sizes.n(i), size: sizes.size(i), uid: uidOf(sizes.n(i)) }),
    );
  },
});

/**
 * Asks UIDL rather than trusting CAPA: servers from before RFC 2449 have UIDL but no CAPA. Their
 * -ERR means "no UIDL here", and the listing goes on without uids.
 */
async function uidsIfAny(client: Pop3Client): Promise<MessageUids | undefined> {
  try {
    return await client.uidListing();
  } catch (error) {
    if (error instanceof Pop3ServerError) return undefined;
    throw error;
  }
}
