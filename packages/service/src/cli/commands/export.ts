import { Readable } from 'node:stream';
import { wholeNumber } from '../arguments.js';
import { writeBytes } from '../output.js';
import type { CommandRegistration } from '../session-command.js';
import { addStoreOption, openStore, storedMessage, type StoreOptions } from '../store-option.js';

/** `popwire export ID > message.eml`: the bytes as RETR gave them, whatever they are. */
export const exportMessage: CommandRegistration = (program) => {
  const command = program
    .command('export')
    .description("Write a stored message's exact bytes to stdout, as the server sent them (CRLF line endings)")
    .argument('<id>', 'the message, by the id popwire messages lists', wholeNumber(1));
  addStoreOption(command);
  command.action(async (id: number) => {
    await using opened = await openStore(command.opts<StoreOptions>(), 'existing');
    // Before the first byte: an unknown id is a failure with nothing on stdout.
    await storedMessage(opened, id);
    await writeBytes(Readable.from(opened.store.messages.raw(id)));
  });
};
