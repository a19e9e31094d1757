/** The MIME fixtures of test/fixtures/mime, and messages built for the streaming tests. */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';

const DIR = new URL('../fixtures/mime/', import.meta.url);

export function mimeFixture(name: string): Buffer {
  return readFileSync(new URL(name, DIR));
}

export const MIME_FIXTURES = [
  'alternative.eml',
  'attachments.eml',
  'nested-rfc822.eml',
  'encoded-words.eml',
  'no-date.eml',
  'obsolete-date.eml',
  'broken-mime.eml',
] as const;

/** A text part, an HTML part and a base64 attachment of `attachmentBytes` random octets. */
export function withLargeAttachment(attachmentBytes: number): { message: Buffer; attachment: Buffer } {
  const attachment = randomBytes(attachmentBytes);
  const base64 = attachment.toString('base64').replace(/.{76}/g, '$&\r\n');
  const message = Buffer.from(
    [
      'From: Big Sender <big@example.test>',
      'To: bob@example.test',
      'Subject: =?utf-8?Q?Gro=C3=9Fe_Datei?=',
      'Date: Mon, 1 Dec 2025 10:00:00 +0000',
      'Message-ID: <big-1@example.test>',
      'MIME-Version: 1.0',
      'Content-Type: multipart/mixed; boundary="big"',
      '',
      '--big',
      'Content-Type: multipart/alternative; boundary="alt"',
      '',
      '--alt',
      'Content-Type: text/plain; charset=utf-8',
      'Content-Transfer-Encoding: 8bit',
      '',
      'Die Datei ist angehängt.',
      '--alt',
      'Content-Type: text/html; charset=utf-8',
      '',
      '<p>Die Datei ist angeh&auml;ngt.</p>',
      '--alt--',
      '--big',
      'Content-Type: application/octet-stream; name="data.bin"',
      'Content-Transfer-Encoding: base64',
      'Content-Disposition: attachment; filename="data.bin"',
      '',
      base64,
      '--big',
      'Content-Type: image/png',
      'Content-Transfer-Encoding: base64',
      'Content-ID: <small@example.test>',
      '',
      'iVBORw0KGgo=',
      '--big--',
      '',
    ].join('\r\n'),
  );
  return { message, attachment };
}
