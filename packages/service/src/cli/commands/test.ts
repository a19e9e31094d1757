import { isRetryableResponseCode, Pop3Client, type ConnectionTestReport, type ConnectionTestStep } from 'popwire';
import { CommandFailure, ExitCode } from '../failure.js';
import { report, writeReport, type Json } from '../output.js';
import { prepareSession, URL_DESCRIPTION, type CommandRegistration } from '../session-command.js';
import { addSessionOptions, type SessionOptions } from '../session-options.js';

/** The exit code of a failed test, by the step that failed: the same classes as the other commands. */
const EXIT_BY_STEP: Record<string, number> = {
  dns: ExitCode.connection,
  tcp: ExitCode.connection,
  tls: ExitCode.connection,
  greeting: ExitCode.connection,
  capa: ExitCode.server,
  login: ExitCode.authentication,
  stat: ExitCode.server,
};

/**
 * `popwire test <url>`: every step of a connection with its duration, a verdict, and the failing
 * step. The report is printed in full (on stdout) whatever the verdict; the exit code says it too.
 */
export const test: CommandRegistration = (program) => {
  const command = program
    .command('test')
    .description('check a mailbox step by step: DNS, TCP, TLS (certificate), greeting, CAPA, login, STAT')
    .argument('<url>', URL_DESCRIPTION);
  addSessionOptions(command);
  command.action(async (url: string) => {
    const options = command.opts<SessionOptions>();
    const result = await Pop3Client.test(url, await prepareSession({ name: 'test', needsLogin: false }, url, options));
    // Dates become ISO strings, as JSON.stringify would write them anyway.
    await writeReport(report(describe(result), JSON.parse(JSON.stringify(result)) as Json), options.json === true);
    if (!result.ok) {
      throw new CommandFailure(
        `test failed at ${result.failedStep ?? 'an unknown step'}: ${result.error?.message ?? 'no detail'}`,
        // A temporary refusal ([IN-USE], [LOGIN-DELAY], [SYS/TEMP]) is not a rejected password.
        isRetryableResponseCode(result.error?.responseCode) ? ExitCode.deferred : (EXIT_BY_STEP[result.failedStep ?? ''] ?? ExitCode.connection),
      );
    }
  });
};

function describe(result: ConnectionTestReport): string[] {
  const lines = result.steps.map(describeStep);
  lines.push(result.ok ? `ok: ${result.host}:${result.port} works` : `FAILED at ${result.failedStep}`);
  return lines;
}

function describeStep(step: ConnectionTestStep): string {
  const parts = [`${step.ok ? 'ok  ' : 'FAIL'} ${step.step.padEnd(8)} ${step.ms.toFixed(1).padStart(8)} ms`];
  // The library's detail already names the certificate and the mechanism; --json has them as fields.
  if (step.detail) parts.push(step.detail);
  if (step.error) parts.push(step.error.message);
  return parts.join('  ');
}
