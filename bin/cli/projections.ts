/** `cairn projections status|reset|parked|replay` and `cairn snapshot get|put`, through the HTTP API. */
import type { Command } from "commander";
import type { ParkedEvent, ProjectionStatus } from "../../lambdas/client/client.ts";
import { action, CliError } from "./errors.ts";
import { integer, jsonArg, withTarget } from "./streams.ts";
import { clientOf, type TargetOptions } from "./target.ts";

interface JsonOption extends TargetOptions {
  readonly json?: boolean;
}

const statusLine = (status: ProjectionStatus): string =>
  `${status.name}  position ${status.position}/${status.headPosition}  lag ${status.lag}  parked ${status.parkedCount}` +
  `  generation ${status.generation}${status.running ? "  running" : ""}` +
  ((status.partitions ?? 1) > 1 ? `  partitions ${status.partitions}` : "") +
  (status.lastError ? `  last error: ${JSON.stringify(status.lastError)}` : "") +
  // One line more per partition, indented under the projection's.
  (status.partitionStatuses ?? [])
    .map(
      (part) =>
        `\n  partition ${part.partition}  position ${part.position}/${status.headPosition}  lag ${part.lag}  parked ${part.parkedCount}` +
        `${part.running ? "  running" : ""}${part.lastError ? `  last error: ${JSON.stringify(part.lastError)}` : ""}`,
    )
    .join("");

async function status(name: string | undefined, options: JsonOption): Promise<void> {
  const client = await clientOf(options);
  const statuses = name ? [await client.projectionStatus(name)] : await client.listProjections();
  if (statuses.length === 0 && !options.json) console.log("no projections");
  for (const one of statuses) console.log(options.json ? JSON.stringify(one) : statusLine(one));
}

async function reset(name: string, options: JsonOption & { readonly yes?: boolean }): Promise<void> {
  if (!options.yes) {
    throw new CliError(
      `reset rebuilds ${name} from position 0 with an empty read model: pass --yes to do it`,
    );
  }
  const client = await clientOf(options);
  const after = await client.resetProjection(name);
  console.log(options.json ? JSON.stringify(after) : `reset ${name}: ${statusLine(after)}`);
}

const parkedLine = (event: ParkedEvent): string =>
  `#${event.position} ${event.streamId}@${event.version} ${event.type}  ${event.attempts} attempts, parked ${event.parkedAt}: ${event.error}`;

async function parked(name: string, options: JsonOption): Promise<void> {
  const client = await clientOf(options);
  const detail = await client.projectionStatus(name);
  if (detail.parked.length === 0 && !options.json) console.log(`${name} has no parked events`);
  for (const event of detail.parked) console.log(options.json ? JSON.stringify(event) : parkedLine(event));
}

/**
 * Runs the projection's handlers again on its parked events (all, or those of `--position`): one
 * request, one line of outcome, then one line per event still parked.
 */
async function replay(name: string, options: JsonOption & { readonly position?: number[] }): Promise<void> {
  const client = await clientOf(options);
  const positions = options.position && options.position.length > 0 ? options.position : undefined;
  const result = await client.replayParked(name, positions);
  if (options.json) {
    console.log(JSON.stringify(result));
    return;
  }
  const unparked = result.replayedPositions.length
    ? ` (${result.replayedPositions.map((position) => `#${position}`).join(", ")})`
    : "";
  console.log(
    `replayed ${name}: ${result.replayed} unparked${unparked}, ${result.stillParked} failed again; ${result.parked.length === 0 ? "none" : result.parked.length} still parked`,
  );
  for (const event of result.parked) console.log(parkedLine(event));
}

/** `--position 3 --position 7`: each an integer ≥ 1, collected in order. */
const positionOption = (value: string, previous: number[] = []): number[] => [...previous, integer(1)(value)];

async function getSnapshot(
  streamId: string,
  options: JsonOption & { readonly maxVersion?: number },
): Promise<void> {
  const client = await clientOf(options);
  const snapshot = await client.getSnapshot(
    streamId,
    options.maxVersion === undefined ? {} : { maxVersion: options.maxVersion },
  );
  if (!snapshot)
    throw new CliError(
      `${streamId} has no snapshot${options.maxVersion === undefined ? "" : ` at or below version ${options.maxVersion}`}`,
    );
  console.log(JSON.stringify(snapshot, null, options.json ? undefined : 2));
}

async function putSnapshot(
  streamId: string,
  version: number,
  state: unknown,
  options: JsonOption & { readonly schemaVersion?: number },
): Promise<void> {
  const client = await clientOf(options);
  const saved = await client.putSnapshot(streamId, {
    version,
    state,
    ...(options.schemaVersion === undefined ? {} : { schemaVersion: options.schemaVersion }),
  });
  console.log(
    options.json ? JSON.stringify(saved) : `saved a snapshot of ${streamId} at version ${saved.version}`,
  );
}

export function addProjectionCommands(program: Command): void {
  const projections = program
    .command("projections")
    .description("projection status, reset, parked events and their replay");
  withTarget(
    projections
      .command("status")
      .description("position, lag and parked events of every projection, or of one")
      .argument("[name]", "one projection")
      .option("--json", "one JSON status per line"),
  ).action(action(status));
  withTarget(
    projections
      .command("reset")
      .description("rebuild a projection from position 0 with an empty read model")
      .argument("<name>", "the projection")
      .option("--yes", "yes, reset it")
      .option("--json", "print the status after the reset as JSON"),
  ).action(action(reset));
  withTarget(
    projections
      .command("parked")
      .description("the events a projection parked (the first 100)")
      .argument("<name>", "the projection")
      .option("--json", "one JSON event per line"),
  ).action(action(parked));
  withTarget(
    projections
      .command("replay")
      .description(
        "run a projection's handlers again on its parked events (all, or those at --position): those that pass are unparked",
      )
      .argument("<name>", "the projection")
      .option("--position <p>", "the $all position of one parked event (repeat for more)", positionOption)
      .option("--json", "print the outcome as JSON"),
  ).action(action(replay));

  const snapshot = program.command("snapshot").description("get or put a stream's snapshot (over HTTP)");
  withTarget(
    snapshot
      .command("get")
      .description("the latest snapshot of a stream")
      .argument("<streamId>", "the stream")
      .option("--max-version <v>", "the latest at or below this version", integer(1))
      .option("--json", "one line of JSON"),
  ).action(action(getSnapshot));
  withTarget(
    snapshot
      .command("put")
      .description("save a snapshot of a stream at a version it has reached")
      .argument("<streamId>", "the stream")
      .argument("<version>", "the version the state is at", integer(1))
      .argument("<state>", "the state as JSON", jsonArg)
      .option("--schema-version <n>", "the state's schema version", integer(1))
      .option("--json", "print the saved snapshot as JSON"),
  ).action(action(putSnapshot));
}
