import { MESSAGE_NUMBER } from '../arguments.js';
import { bytes, messageJson } from '../output.js';
import { sessionCommand } from '../session-command.js';

export const retr = sessionCommand({
  name: 'retr',
  description: 'Write message N to stdout, byte for byte as the server sends it (--json: {"n", "size", "base64"})',
  numbers: [MESSAGE_NUMBER],
  needsLogin: true,
  run: async (client, { n }, { json }) => (json ? messageJson({ n }, await client.retrieve(n)) : bytes(await client.retrieveStream(n))),
});
