/**
 * Progress of long work (a large read to a file, a catch-up): a bar (cli-progress) when stderr is a
 * terminal, else a plain line now and then (`read 2000/10000 events`), so logs and CI stay readable.
 */
import { SingleBar } from "cli-progress";

export interface Progress {
  /** Sets how far the work is. */
  update(done: number): void;
  /** Ends the bar (or prints the last line). */
  stop(): void;
}

/** A progress report on `stream` (default stderr) for `total` units named `unit`, e.g. "events". */
export function progressOf(
  what: string,
  total: number,
  unit: string,
  stream: NodeJS.WriteStream = process.stderr,
): Progress {
  if (stream.isTTY) {
    const bar = new SingleBar({
      stream,
      format: `${what} [{bar}] {percentage}% | {value}/{total} ${unit} | {eta_formatted} left`,
      hideCursor: true,
      noTTYOutput: false,
    });
    bar.start(total, 0);
    return {
      update: (done) => bar.update(done),
      stop: () => bar.stop(),
    };
  }
  let last = -1;
  const line = (done: number) => {
    if (done === last) return;
    last = done;
    stream.write(`${what} ${done}/${total} ${unit}\n`);
  };
  return { update: line, stop: () => line(Math.max(last, 0)) };
}
