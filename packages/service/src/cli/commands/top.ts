import { MESSAGE_NUMBER } from '../arguments.js';
import { bytes, messageJson } from '../output.js';
import { sessionCommand } from '../session-command.js';

export const top = sessionCommand({
  name: 'top',
  description: 'Write the headers of message N and the first LINES lines of its body to stdout (--json: {"n", "lines", "size", "base64"})',
  numbers: [MESSAGE_NUMBER, { name: 'lines', description: 'body lines to include, from 0', min: 0 }],
  needsLogin: true,
  run: async (client, { n, lines }, { json }) => (json ? messageJson({ n, lines }, await client.top(n, lines)) : bytes(await client.topStream(n, lines))),
});
