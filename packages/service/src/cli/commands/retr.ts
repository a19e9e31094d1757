import { MESSAGE_NUMBER } from '../arguments.js';
import { bytes } from '../output.js';
import { sessionCommand } from '../session-command.js';

export const retr = sessionCommand({
  name: 'retr',
  description: 'Write message N to stdout, byte for byte as the server sends it',
  numbers: [MESSAGE_NUMBER],
  needsLogin: true,
  run: async (client, { n }) => bytes(await client.retrieveStream(n)),
});
