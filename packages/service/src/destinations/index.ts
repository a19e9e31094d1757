/**
 * Makes a Destination from a spec (spec.ts). nodemailer and ImapFlow are loaded only when an LMTP,
 * SMTP or IMAP destination is used, so that `popwire fetch --maildir` starts as fast as before.
 */
import type { Destination, DestinationOptions } from './destination.js';
import type { DestinationSpec } from './spec.js';

export async function createDestination(spec: DestinationSpec, options: DestinationOptions = {}): Promise<Destination> {
  switch (spec.kind) {
    case 'mda': {
      const { mdaDestination } = await import('./mda.js');
      return mdaDestination(spec, options);
    }
    case 'lmtp': {
      const { smtpDestination } = await import('./smtp.js');
      return smtpDestination({ protocol: 'lmtp', address: spec.address }, options);
    }
    case 'smtp': {
      const { smtpDestination } = await import('./smtp.js');
      return smtpDestination({ protocol: 'smtp', address: spec.address, implicitTls: spec.implicitTls }, options);
    }
    case 'imap': {
      const { imapDestination } = await import('./imap.js');
      return imapDestination(spec, options);
    }
    case 'maildir':
    case 'mbox': {
      const { localDestination } = await import('./local.js');
      return localDestination(spec);
    }
  }
}

export * from './destination.js';
export { formatDestination, parseDestination, type DestinationSpec } from './spec.js';
export { envelopeSender, messageDate, withUidHeader } from './message.js';
