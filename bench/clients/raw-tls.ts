/**
 * The baseline of raw.ts over STLS, for the clients that must pay for TLS (`popwire fetch`,
 * mpop): greeting, STLS, the handshake, USER, PASS, every RETR at once, QUIT (raw-session.ts).
 */
import { rawSession } from './raw-session.ts';

await rawSession({ stls: true });
