import { randomUUID } from 'node:crypto';
import { pipeline, Readable } from 'node:stream';
import type { MimeNode, SplitterChunk } from '@zone-eu/mailsplit';
import { bareContentId, spooledAttachment, type AttachmentInfo, type ParsedAttachment } from './attachment.js';
import { readBodies, type Bodies } from './body.js';
import { readHeaderBlock } from './headers.js';
import { Skeleton, SkeletonTooLarge, type SpooledPart } from './skeleton.js';
import type { SpoolFolder } from './spool.js';

/**
 * The parse of a message above the in-memory cap: mailsplit walks the MIME tree as the bytes
 * arrive, the skeleton keeps what postal-mime needs, large parts go to files (see skeleton.ts).
 *
 * The input is consumed; if the structure is past saving (mailsplit's limits: 1 MiB of headers
 * in one part, 1,000 parts) the parse stops there, the input is destroyed (a RETR body is then
 * drained by the engine), and what was read so far is returned with a warning.
 */
export interface Streamed extends Bodies {
  /** The message's header block (from mailsplit's root node); empty if even that could not be read. */
  readonly head: Buffer;
  readonly size: number;
}

export async function readStreamed(source: AsyncIterable<Buffer>, budget: number, spool: SpoolFolder): Promise<Streamed> {
  // Loaded here, not at the top: it costs about 90 ms and only large messages need it.
  const { Splitter } = await import('@zone-eu/mailsplit');
  const warnings: string[] = [];
  let size = 0;
  let sourceError: { error: unknown } | undefined;
  async function* counted(): AsyncGenerator<Buffer> {
    try {
      for await (const chunk of source) {
        size += chunk.length;
        yield chunk;
      }
    } catch (error) {
      sourceError = { error };
      throw error;
    }
  }
  // ignoreEmbedded: a message/rfc822 part is one leaf, kept whole as the nested message's bytes.
  const splitter = new Splitter({ ignoreEmbedded: true });
  pipeline(Readable.from(counted()), splitter, () => {}); // failures surface through the iterator below
  const iterator: AsyncIterator<SplitterChunk> = splitter[Symbol.asyncIterator]();
  const skeleton = new Skeleton(budget, spool, `popwire-spooled-${randomUUID()}-`);
  try {
    for (;;) {
      let next: IteratorResult<SplitterChunk>;
      try {
        next = await iterator.next();
      } catch (error) {
        if (sourceError !== undefined) throw sourceError.error;
        warnings.push(`The MIME structure was not parsed past octet ${size}: ${(error as Error).message}`);
        break;
      }
      if (next.done === true) break;
      const item = next.value;
      if (item.type === 'node') await skeleton.node(item);
      else if (item.type === 'body') await skeleton.body(item.value);
    }
  } catch (error) {
    if (!(error instanceof SkeletonTooLarge)) throw error;
    warnings.push(`The MIME structure was not parsed past octet ${size}: ${error.message}`);
  } finally {
    splitter.destroy();
  }
  const bytes = await skeleton.finish();
  const bodies = await readBodies(bytes, readHeaderBlock(bytes).bodyStart);
  const placed = placeSpooled(bodies, skeleton.spooled);
  const head = skeleton.rootHeaders ?? Buffer.alloc(0);
  return { ...placed, warnings: [...warnings, ...bodies.warnings, ...placed.warnings], head, size };
}

/**
 * Puts each spooled part where postal-mime reported its token: an attachment whose content is
 * the token becomes the file. A spooled text part (a text body larger than the budget) shows up
 * in the text instead; its token is taken out and the file is given as an attachment, with a
 * warning, since a string of that size is what the cap is there to prevent.
 */
function placeSpooled(bodies: Bodies, spooled: readonly SpooledPart[]): Bodies {
  const byToken = new Map(spooled.map((part) => [part.token, part]));
  const placed = new Set<SpooledPart>();
  const attachments: ParsedAttachment[] = bodies.attachments.map((attachment) => {
    const part = tokenIn(attachment.content, byToken);
    if (part === undefined) return attachment;
    placed.add(part);
    return spooledAttachment(attachment, part.path, part.size);
  });
  const warnings: string[] = [];
  let { text, html } = bodies;
  for (const part of spooled) {
    text = withoutToken(text, part.token);
    html = withoutToken(html, part.token);
    if (placed.has(part)) continue;
    attachments.push(spooledAttachment(nodeInfo(part.node), part.path, part.size));
    warnings.push(`A ${nodeInfo(part.node).contentType} part of ${part.size} octets is too large for memory; it is given as an attachment, in a file`);
  }
  return { text, html, attachments, warnings };
}

function tokenIn(content: Buffer | undefined, byToken: ReadonlyMap<string, SpooledPart>): SpooledPart | undefined {
  // text/calendar content comes back re-encoded with a final newline, hence the trim.
  if (content === undefined || content.length > 200) return undefined;
  return byToken.get(content.toString('latin1').trim());
}

function withoutToken(text: string | null, token: string): string | null {
  if (text === null || !text.includes(token)) return text;
  const rest = text.split(token).join('');
  return rest.trim() === '' ? null : rest;
}

/** What postal-mime would have said about a part it never saw as an attachment. */
function nodeInfo(node: MimeNode): AttachmentInfo {
  const header = (name: string) => (node.headers === false ? '' : node.headers.getFirst(name));
  return {
    filename: node.filename === false ? null : node.filename,
    contentType: node.contentType === false ? 'text/plain' : node.contentType,
    disposition: node.disposition === false ? null : node.disposition,
    contentId: bareContentId(header('content-id')),
    related: false,
    description: header('content-description') || null,
  };
}
