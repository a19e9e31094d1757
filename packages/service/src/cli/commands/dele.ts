import { MESSAGE_NUMBER } from '../arguments.js';
import { report } from '../output.js';
import { sessionCommand } from '../session-command.js';

export const dele = sessionCommand({
  name: 'dele',
  description: 'Delete message N (the server removes it when the session ends with QUIT)',
  numbers: [MESSAGE_NUMBER],
  needsLogin: true,
  async run(client, { n }) {
    await client.delete(n);
    return report([], { deleted: n });
  },
});
