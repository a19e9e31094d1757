/**
 * The one way popwire writes a time for a reader (the API, webhooks, `--json`): ISO 8601 in
 * UTC with milliseconds, `2026-12-07T14:07:01.000Z`. The store keeps milliseconds since the
 * epoch (store/schema.ts); they become text only here, at the edge.
 */
export function isoTime(ms: number): string {
  return new Date(ms).toISOString();
}

export function isoTimeOrNull(ms: number | null): string | null {
  return ms === null ? null : isoTime(ms);
}
