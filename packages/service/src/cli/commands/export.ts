import { Readable } from 'node:stream';
import { wholeNumber } from '../arguments.js';
import { messageJson, writeBytes, writeReport } from '../output.js';
import type { CommandRegistration } from '../session-command.js';
import { addStoreOption, openStore, storedMessage, type StoreOptions } from '../store-option.js';

/** `popwire export ID > message.eml`: the bytes as RETR gave them, whatever they are. */
export const exportMessage: CommandRegistration = (program) => {
  const command = program
    .command('export')
    .description("Write a stored message's exact bytes to stdout, as the server sent them (CRLF line endings)")
    .argument('<id>', 'the message, by the id popwire messages lists', wholeNumber(1))
    .option('--json', 'print {"id", "size", "base64"} instead of the bytes');
  addStoreOption(command);
  command.action(async (id: number) => {
    const options = command.opts<StoreOptions & { json?: boolean }>();
    await using opened = await openStore(options, 'existing');
    // Before the first byte: an unknown id is a failure with nothing on stdout.
    await storedMessage(opened, id);
    const raw = Readable.from(opened.store.messages.raw(id));
    if (options.json === true) {
      const chunks: Buffer[] = [];
      for await (const chunk of raw) chunks.push(chunk as Buffer);
      await writeReport(messageJson({ id }, Buffer.concat(chunks)), true);
      return;
    }
    await writeBytes(raw);
  });
};
