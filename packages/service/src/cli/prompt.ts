import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';

/** What the user did at the prompt: typed an answer, ended it (Ctrl-D), or interrupted (Ctrl-C). */
export type PromptAnswer = { readonly kind: 'answer'; readonly text: string } | { readonly kind: 'closed' } | { readonly kind: 'interrupted' };

/**
 * Asks for a secret on the terminal without echoing it. The prompt goes to stderr, so that stdout
 * carries only the command's output (`popwire retr 1 URL > message.eml` still prompts).
 * In raw mode Ctrl-C reaches readline as a key, not as a signal: it is told apart from Ctrl-D.
 */
export function promptHidden(prompt: string): Promise<PromptAnswer> {
  // readline does the line editing (backspace, Ctrl-U) in raw mode and echoes into this sink.
  const noEcho = new Writable({ write: (_chunk, _encoding, done) => done() });
  const terminal = createInterface({ input: process.stdin, output: noEcho, terminal: true });
  process.stderr.write(prompt);
  return new Promise<PromptAnswer>((resolve) => {
    // The first to settle wins: a close after an answer or a Ctrl-C changes nothing.
    terminal.once('SIGINT', () => {
      resolve({ kind: 'interrupted' });
      terminal.close();
    });
    terminal.once('close', () => resolve({ kind: 'closed' }));
    terminal.question('', (text) => {
      resolve({ kind: 'answer', text });
      terminal.close();
    });
  }).finally(() => process.stderr.write('\n'));
}
