import { report } from '../output.js';
import { sessionCommand } from '../session-command.js';

export const uidl = sessionCommand({
  name: 'uidl',
  description: "Print each message's number and unique id",
  needsLogin: true,
  async run(client) {
    const uids = await client.uidl();
    return report(
      uids.map(({ n, uid }) => `${n} ${uid}`),
      uids.map(({ n, uid }) => ({ n, uid })),
    );
  },
});
