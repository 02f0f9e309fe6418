/**
 * An EventBridge schedule's stand-in under `npm start`: a timer that runs `run` every `everyMs`, one
 * run at a time (a run asked for while one is in progress starts after it), and logs a failed run
 * instead of stopping. The local reconciler and scavenger use it.
 */
export interface LocalSchedule<Report> {
  /** One run now (after the one in progress, if any). */
  runOnce(): Promise<Report>;
  /** Stops the timer and waits for the run in progress. */
  stop(): Promise<void>;
}

export function startLocalSchedule<Report>(options: {
  readonly name: string;
  readonly everyMs: number;
  readonly run: () => Promise<Report>;
  readonly log: (message: string, detail?: unknown) => void;
}): LocalSchedule<Report> {
  let last: Promise<unknown> = Promise.resolve();
  const runOnce = (): Promise<Report> => {
    const run = last.then(options.run);
    last = run.catch(() => undefined);
    return run;
  };
  const timer = setInterval(() => {
    runOnce().catch((error: unknown) => options.log(`${options.name}: run failed`, error));
  }, options.everyMs);
  return {
    runOnce,
    async stop() {
      clearInterval(timer);
      await last;
    },
  };
}
