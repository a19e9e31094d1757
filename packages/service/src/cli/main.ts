import { ExitCode, reportFailure } from './failure.js';
import { handleStdoutErrors } from './output.js';
import { buildProgram } from './program.js';

/**
 * Runs the popwire command line on `argv` as process.argv has it (node, script, arguments...).
 * Returns the exit code instead of exiting, so that it can run in-process and let stdout drain.
 */
export async function main(argv: string[]): Promise<number> {
  handleStdoutErrors();
  try {
    await buildProgram().parseAsync(argv);
    return ExitCode.ok;
  } catch (error) {
    return reportFailure(error);
  }
}
