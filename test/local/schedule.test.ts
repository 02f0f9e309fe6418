import { describe, expect, it } from "vitest";
import { startLocalSchedule } from "../../bin/local/schedule.ts";

/** A run that finishes only when told to, recording when it started and ended. */
function controlledRuns() {
  const events: string[] = [];
  const finish: (() => void)[] = [];
  let n = 0;
  const run = () => {
    const id = ++n;
    events.push(`start ${id}`);
    return new Promise<number>((resolve) => {
      finish.push(() => {
        events.push(`end ${id}`);
        resolve(id);
      });
    });
  };
  return { events, finish, run };
}

describe("the local schedule (the reconciler's and scavenger's timer under npm start)", () => {
  it("runs one at a time: a run asked for during another starts after it, and stop waits for it", async () => {
    const { events, finish, run } = controlledRuns();
    const schedule = startLocalSchedule({ name: "test", everyMs: 3_600_000, run, log: () => {} });

    const first = schedule.runOnce();
    const second = schedule.runOnce();
    await new Promise((resolve) => setImmediate(resolve));
    const beforeFirstEnds = [...events];
    finish.shift()?.();
    await first;
    await new Promise((resolve) => setImmediate(resolve));
    let stopped = false;
    const stopping = schedule.stop().then(() => {
      stopped = true;
    });
    await new Promise((resolve) => setImmediate(resolve));
    const stoppedBeforeSecondEnds = stopped;
    finish.shift()?.();
    await stopping;

    expect(beforeFirstEnds).toEqual(["start 1"]);
    expect(await second).toBe(2);
    expect(events).toEqual(["start 1", "end 1", "start 2", "end 2"]);
    expect(stoppedBeforeSecondEnds).toBe(false);
  });

  it("logs a failed timed run once, by name, and runs again on the next tick", async () => {
    const logged: string[] = [];
    let runs = 0;
    const schedule = startLocalSchedule({
      name: "local test",
      everyMs: 5,
      run: async () => {
        runs++;
        if (runs === 1) throw new Error("boom");
        return runs;
      },
      log: (message) => logged.push(message),
    });

    while (runs < 2) await new Promise((resolve) => setTimeout(resolve, 5));
    await schedule.stop();

    expect(logged[0]).toBe("local test: run failed");
    expect(logged).toHaveLength(1);
    expect(runs).toBeGreaterThanOrEqual(2);
  });
});
