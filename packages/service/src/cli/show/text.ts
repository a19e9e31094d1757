/**
 * Text from a message, made fit for a terminal. A subject, a name or a body is whatever the
 * sender wrote, escape sequences included: ESC [ 2 J clears the screen, OSC sequences set the
 * window title or, on some terminals, write to the clipboard, and a forged line can pass for
 * popwire's own output. Every control character goes, except tab and newline (in bodies); the
 * C1 controls (U+0080 to U+009F) too, which some terminals obey like their ESC forms.
 */
const CONTROLS = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;
const LINE_CONTROLS = /[\u0000-\u001f\u007f-\u009f]/g;

/** A body: lines kept (CRLF as LF), every other control shown as U+FFFD. */
export function printableText(text: string): string {
  return text.replace(/\r\n?/g, '\n').replace(CONTROLS, '\uFFFD');
}

/** A header value or a table cell: one line, every control (line breaks included) shown as U+FFFD. */
export function printableLine(text: string): string {
  return text.replace(LINE_CONTROLS, '\uFFFD');
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ' };

/**
 * HTML as plain text, crudely: enough to read a message that has no text part. Scripts, styles
 * and comments go; block ends become line breaks; every other tag goes; the common entities and
 * numeric references are decoded. Not a renderer: tables and lists come out as lines.
 */
export function htmlToText(html: string): string {
  return html
    .replace(/<!--[\s\S]*?-->/g, '')
    .replace(/<(script|style|head)\b[\s\S]*?<\/\1\s*>/gi, '')
    .replace(/<br\s*\/?>/gi, '\n')
    .replace(/<\/(p|div|li|tr|h[1-6]|blockquote|pre|table)\s*>/gi, '\n')
    .replace(/<li\b[^>]*>/gi, '- ')
    .replace(/<[^>]*>/g, '')
    .replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (entity: string, name: string) => decodeEntity(name) ?? entity)
    .replace(/[ \t]+\n/g, '\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

function decodeEntity(name: string): string | undefined {
  if (name.startsWith('#')) {
    const code = name[1] === 'x' || name[1] === 'X' ? Number.parseInt(name.slice(2), 16) : Number(name.slice(1));
    return Number.isInteger(code) && code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : undefined;
  }
  return ENTITIES[name.toLowerCase()];
}
