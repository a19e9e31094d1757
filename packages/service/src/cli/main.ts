import { ExitCode, reportFailure } from './failure.js';
import { forgetJsonWritten, handleStdoutErrors } from './output.js';
import { buildProgram } from './program.js';

/**
 * Runs the popwire command line on `argv` as process.argv has it (node, script, arguments...).
 * Returns the exit code instead of exiting, so that it can run in-process and let stdout drain.
 */
export async function main(argv: string[]): Promise<number> {
  handleStdoutErrors();
  forgetJsonWritten();
  try {
    const program = await buildProgram(argv.slice(2));
    await program.parseAsync(argv);
    return ExitCode.ok;
  } catch (error) {
    return reportFailure(error, asksForJson(argv));
  }
}

/**
 * Whether the command line has --json, read from argv itself: a failure may come before (or
 * from) commander's parsing, and a script that asked for JSON gets its error as JSON too.
 */
function asksForJson(argv: readonly string[]): boolean {
  const args = argv.slice(2);
  const end = args.indexOf('--');
  return (end === -1 ? args : args.slice(0, end)).includes('--json');
}
