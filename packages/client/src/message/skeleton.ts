import type { MimeNode } from '@zone-eu/mailsplit';
import type { SpoolFile, SpoolFolder } from './spool.js';

/**
 * A message above the in-memory cap, rebuilt small enough for postal-mime: the same MIME tree,
 * every header, the text parts and the small parts as they were, and each large part replaced
 * by a token (its decoded bytes go to a file). postal-mime then parses the skeleton exactly as
 * it would the whole message, so text, html and the attachments' names, types and ids mean the
 * same on both sides of the cap; the tokens tell which attachment is which file.
 *
 * The tree is written from mailsplit's nodes (their parents and boundaries), not copied from the
 * input, so a preamble or epilogue (RFC 2046 section 5.1.1 says to ignore both) cannot make the
 * skeleton large.
 */

/** Parts up to this size stay in the skeleton whatever they are: a temp file per small icon is waste. */
const SMALL_PART = 64 * 1024;

export interface SpooledPart {
  readonly token: string;
  readonly node: MimeNode;
  readonly path: string;
  /** Decoded octets. */
  readonly size: number;
}

/**
 * Headers of parts are always kept (postal-mime needs them), so they are bounded apart: past the
 * budget and this much more (a thousand parts with 1 MiB of headers each, mailsplit's limits),
 * the parse stops.
 */
const HEADER_HEADROOM = 4 * 1024 * 1024;

export class SkeletonTooLarge extends Error {}

interface Leaf {
  readonly node: MimeNode;
  readonly headers: Buffer;
  chunks: Buffer[];
  size: number;
  file: SpoolFile | undefined;
}

export class Skeleton {
  readonly spooled: SpooledPart[] = [];
  /** The message's own header block, as received. */
  rootHeaders: Buffer | undefined;
  private readonly out: Buffer[] = [];
  private size = 0;
  /** Multipart nodes whose closing delimiter is not written yet, innermost last. */
  private readonly open: MimeNode[] = [];
  private leaf: Leaf | undefined;

  constructor(
    private readonly budget: number,
    private readonly spool: SpoolFolder,
    /** Unique to this parse, so no message can contain a token by chance or on purpose. */
    private readonly tokenPrefix: string,
  ) {}

  /** A node starts (mailsplit emits them depth first, in document order). */
  async node(node: MimeNode): Promise<void> {
    await this.endLeaf();
    if (this.size > this.budget + HEADER_HEADROOM) throw new SkeletonTooLarge('the part headers alone are larger than the in-memory budget');
    this.rootHeaders ??= node.getHeaders();
    const parent = node.parentNode === false ? undefined : node.parentNode;
    while (this.open.length > 0 && this.open[this.open.length - 1] !== parent) this.close(this.open.pop() as MimeNode);
    const parentBoundary = parent === undefined ? undefined : boundaryOf(parent);
    if (parentBoundary !== undefined) this.write(Buffer.from(`\r\n--${parentBoundary}\r\n`, 'latin1'));
    if (boundaryOf(node) === undefined) {
      this.leaf = { node, headers: node.getHeaders(), chunks: [], size: 0, file: undefined };
    } else {
      this.write(node.getHeaders());
      this.open.push(node);
    }
  }

  /** Body octets of the current leaf, still transfer-encoded. */
  async body(chunk: Buffer): Promise<void> {
    const leaf = this.leaf;
    if (leaf === undefined) return;
    leaf.size += chunk.length;
    if (leaf.file !== undefined) return leaf.file.write(chunk);
    leaf.chunks.push(chunk);
    if (leaf.size <= this.inlineLimit(leaf)) return;
    leaf.file = await this.spool.file(leaf.node.getDecoder());
    for (const pending of leaf.chunks.splice(0)) await leaf.file.write(pending);
  }

  /** Ends the tree (also after an input that stopped mid-part) and returns the skeleton. */
  async finish(): Promise<Buffer> {
    await this.endLeaf();
    while (this.open.length > 0) this.close(this.open.pop() as MimeNode);
    return Buffer.concat(this.out, this.size);
  }

  /**
   * Text parts stay in as long as the budget lasts: they are what the caller wants as `text`.
   * Anything else stays only when small. Past the budget every part goes to a file.
   */
  private inlineLimit(leaf: Leaf): number {
    const left = this.budget - this.size - leaf.headers.length;
    return isInlineText(leaf.node) ? left : Math.min(SMALL_PART, left);
  }

  private async endLeaf(): Promise<void> {
    const leaf = this.leaf;
    if (leaf === undefined) return;
    this.leaf = undefined;
    this.write(leaf.headers);
    if (leaf.file === undefined) {
      for (const chunk of leaf.chunks) this.write(chunk);
      return;
    }
    const size = await leaf.file.end();
    const token = `${this.tokenPrefix}${this.spooled.length}-end`;
    this.spooled.push({ token, node: leaf.node, path: leaf.file.path, size });
    // Encoded as the part's headers say, so that postal-mime decodes it back to the token.
    this.write(Buffer.from(leaf.node.encoding === 'base64' ? Buffer.from(token).toString('base64') : token, 'latin1'));
  }

  private close(node: MimeNode): void {
    this.write(Buffer.from(`\r\n--${boundaryOf(node)}--\r\n`, 'latin1'));
  }

  private write(bytes: Buffer): void {
    this.size += bytes.length;
    this.out.push(bytes);
  }
}

/** A multipart node's boundary; undefined for a leaf, or a multipart without one (then it is a leaf). */
function boundaryOf(node: MimeNode): string | undefined {
  return node.multipart !== false && node._boundary !== false ? node._boundary.toString('latin1') : undefined;
}

/** What postal-mime would make text: text/plain or text/html (the default type) not marked attachment. */
export function isInlineText(node: MimeNode): boolean {
  const type = node.contentType === false ? 'text/plain' : node.contentType;
  return (type === 'text/plain' || type === 'text/html') && node.disposition !== 'attachment';
}
