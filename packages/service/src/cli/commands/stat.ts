import { report } from '../output.js';
import { sessionCommand } from '../session-command.js';

export const stat = sessionCommand({
  name: 'stat',
  description: 'Print the number of messages and their total size in octets',
  needsLogin: true,
  async run(client) {
    const { count, size } = await client.stat();
    return report([`${count} ${size}`], { count, size });
  },
});
