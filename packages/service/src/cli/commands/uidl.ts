import { rows } from '../output.js';
import { sessionCommand } from '../session-command.js';

export const uidl = sessionCommand({
  name: 'uidl',
  description: "Print each message's number and unique id",
  needsLogin: true,
  async run(client) {
    // Held compactly, each line made only as it is written: see list.ts.
    const uids = await client.uidListing();
    return rows(
      uids.length,
      (i) => `${uids.n(i)} ${uids.uid(i)}`,
      (i) => ({ n: uids.n(i), uid: uids.uid(i) }),
    );
  },
});
