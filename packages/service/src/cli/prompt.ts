import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';

/**
 * Asks for a secret on the terminal without echoing it. The prompt goes to stderr, so that stdout
 * carries only the command's output (`popwire retr 1 URL > message.eml` still prompts).
 * Resolves to undefined when the user gives up (Ctrl-C, or Ctrl-D on an empty line).
 */
export function promptHidden(prompt: string): Promise<string | undefined> {
  // readline does the line editing (backspace, Ctrl-U) in raw mode and echoes into this sink.
  const noEcho = new Writable({ write: (_chunk, _encoding, done) => done() });
  const terminal = createInterface({ input: process.stdin, output: noEcho, terminal: true });
  process.stderr.write(prompt);
  return new Promise<string | undefined>((resolve) => {
    // Without a SIGINT listener, readline closes on Ctrl-C; a close before an answer is giving up.
    terminal.once('close', () => resolve(undefined));
    terminal.question('', (answer) => {
      resolve(answer);
      terminal.close();
    });
  }).finally(() => process.stderr.write('\n'));
}
