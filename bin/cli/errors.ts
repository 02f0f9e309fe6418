/** A mistake the user can fix, printed as one line (`cairn: <message>`) with exit code 1. */
export class CliError extends Error {
  override readonly name = "CliError";
}

/** The one line a failed command prints: the message of what went wrong, never a stack (unless CAIRN_DEBUG). */
export function describeError(error: unknown): string {
  if (process.env.CAIRN_DEBUG && error instanceof Error && error.stack) return error.stack;
  const message = error instanceof Error ? error.message : String(error);
  return (message.split("\n")[0] as string).trim();
}

/** Runs a command's action; a failure is one line on stderr and exit code 1. */
export const action =
  <A extends unknown[]>(run: (...args: A) => Promise<void>) =>
  async (...args: A): Promise<void> => {
    try {
      await run(...args);
    } catch (error) {
      console.error(`cairn: ${describeError(error)}`);
      process.exitCode = 1;
    }
  };
