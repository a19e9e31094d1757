/**
 * The baseline in clear text: greeting, USER, PASS, every RETR at once, terminators counted into
 * one reused read buffer, QUIT. raw-session.ts says what it does and why it is a true ceiling.
 */
import { rawSession } from './raw-session.ts';

await rawSession({ stls: false });
