/**
 * The stream commands: `append`, `read`, `tail`, `streams`. They go through the HTTP API (the
 * running `cairn dev`, or `--stack` / `--url`), as any client does.
 */
import { createWriteStream } from "node:fs";
import { type Command, InvalidArgumentError, Option } from "commander";
import type { CairnClient } from "../../lambdas/client/client.ts";
import type { EventMetadata, ExpectedVersion, RecordedEvent } from "../../lambdas/core/types.ts";
import { action, CliError } from "./errors.ts";
import { progressOf } from "./progress.ts";
import { clientOf, type TargetOptions } from "./target.ts";

export const integer =
  (min: number) =>
  (value: string): number => {
    const parsed = Number(value);
    if (!Number.isInteger(parsed) || parsed < min)
      throw new InvalidArgumentError(`must be an integer ≥ ${min}`);
    return parsed;
  };

export const jsonArg = (value: string): unknown => {
  try {
    return JSON.parse(value);
  } catch {
    throw new InvalidArgumentError("must be JSON, quoted for the shell: '{\"a\":1}'");
  }
};

const expectedVersionArg = (value: string): ExpectedVersion => {
  if (value === "any" || value === "no_stream" || value === "stream_exists") return value;
  return integer(0)(value);
};

/** The options every command that reaches the API takes. */
export function withTarget(command: Command): Command {
  return command
    .option("--stack <name>", "a deployed Cairn stack (its outputs; AWS credentials from the default chain)")
    .option("--region <region>", "the stack's region (default: AWS_REGION or your profile's)")
    .option("--url <url>", "the API's base URL (default: the running npm start's)");
}

/** One event as a line: version or position, type, time, data (`[erased]` for an erased subject's), metadata. */
export function eventLine(event: RecordedEvent & { globalPosition?: number }): string {
  const where =
    event.globalPosition === undefined
      ? `${event.streamId}@${event.version}`
      : `#${event.globalPosition} ${event.streamId}@${event.version}`;
  const metadata = Object.keys(event.metadata ?? {}).length > 0 ? ` ${JSON.stringify(event.metadata)}` : "";
  // An erased subject's event (crypto-shredding) has data null: say why.
  const data = event.erased ? "[erased]" : JSON.stringify(event.data);
  return `${where} ${event.type} ${event.createdAt} ${data}${metadata}`;
}

interface AppendOptions extends TargetOptions {
  readonly metadata?: unknown;
  readonly expectedVersion?: ExpectedVersion;
  readonly eventId?: string;
  readonly json?: boolean;
}

interface ReadOptions extends TargetOptions {
  readonly from?: number;
  readonly limit?: number;
  readonly backward?: boolean;
  readonly json?: boolean;
  readonly out?: string;
}

interface TailOptions extends TargetOptions {
  readonly from?: number;
  readonly after?: number;
  readonly type?: string[];
  readonly category?: string;
  readonly json?: boolean;
  readonly max?: number;
  readonly everyMs: number;
}

interface StreamsOptions extends TargetOptions {
  readonly category: string;
  readonly after?: string;
  readonly limit?: number;
  readonly all?: boolean;
  readonly json?: boolean;
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, ...value.split(",")];

async function append(streamId: string, type: string, data: unknown, options: AppendOptions): Promise<void> {
  const client = await clientOf(options);
  const event = {
    type,
    data: data ?? {},
    ...(options.metadata === undefined ? {} : { metadata: options.metadata as EventMetadata }),
    ...(options.eventId ? { eventId: options.eventId } : {}),
  };
  const result = await client.append(streamId, [event], {
    ...(options.expectedVersion === undefined ? {} : { expectedVersion: options.expectedVersion }),
  });
  if (options.json) console.log(JSON.stringify(result));
  else {
    console.log(
      `${result.duplicate ? "already appended" : "appended"} ${streamId}@${result.fromVersion}` +
        `${result.toVersion === result.fromVersion ? "" : `..${result.toVersion}`} (event ${result.eventIds.join(", ")})`,
    );
  }
}

async function read(streamId: string, options: ReadOptions): Promise<void> {
  const client = await clientOf(options);
  const direction = options.backward ? "backward" : "forward";
  const write = options.out ? createWriteStream(options.out) : undefined;
  const total = options.out
    ? Math.min((await client.streamInfo(streamId)).version, options.limit ?? Number.POSITIVE_INFINITY)
    : 0;
  const progress = options.out ? progressOf(`reading ${streamId}`, total, "events") : undefined;
  let fromVersion = options.from;
  let count = 0;
  const limit = options.limit ?? Number.POSITIVE_INFINITY;
  try {
    for (;;) {
      const page = await client.readStream(streamId, {
        direction,
        limit: Math.min(1000, limit - count),
        ...(fromVersion === undefined ? {} : { fromVersion }),
      });
      for (const event of page.events) {
        const line = options.json || write ? JSON.stringify(event) : eventLine(event);
        if (write) write.write(`${line}\n`);
        else console.log(line);
      }
      count += page.events.length;
      progress?.update(count);
      if (page.nextVersion === undefined || count >= limit || page.events.length === 0) break;
      fromVersion = page.nextVersion;
    }
  } finally {
    progress?.stop();
    if (write) await new Promise<void>((resolve) => write.end(resolve));
  }
  if (options.out) console.log(`wrote ${count} events of ${streamId} to ${options.out}`);
}

/**
 * Follows a stream or `$all` (`$all` with `--type` / `--category` filters), printing each new event;
 * stops after `--max` events, or on Ctrl-C.
 */
async function tail(streamId: string, options: TailOptions): Promise<void> {
  const client = await clientOf(options);
  const max = options.max ?? Number.POSITIVE_INFINITY;
  let seen = 0;
  let stopped = false;
  process.once("SIGINT", () => {
    stopped = true;
  });
  const print = (event: RecordedEvent) => {
    console.log(options.json ? JSON.stringify(event) : eventLine(event));
    seen++;
  };
  const pause = () => new Promise((resolve) => setTimeout(resolve, options.everyMs));
  if (streamId === "$all") {
    let after = options.after ?? (await client.readAll({ limit: 1 })).headPosition;
    console.error(`following $all after position ${after} (Ctrl-C stops)`);
    while (!stopped && seen < max) {
      const page = await client.readAll({
        after,
        limit: 1000,
        ...(options.type ? { types: options.type } : {}),
        ...(options.category ? { category: options.category } : {}),
      });
      for (const event of page.events) if (seen < max) print(event);
      const last = page.events[page.events.length - 1] as { globalPosition?: number } | undefined;
      after = page.nextAfter ?? last?.globalPosition ?? Math.max(after, page.headPosition);
      if (page.nextAfter === undefined && seen < max) await pause();
    }
    return;
  }
  if (options.type || options.category)
    throw new CliError("--type and --category filter $all only: cairn tail '$all' --type …");
  let fromVersion = options.from ?? (await versionOrZero(client, streamId)) + 1;
  console.error(`following ${streamId} from version ${fromVersion} (Ctrl-C stops)`);
  while (!stopped && seen < max) {
    const page = await versionPage(client, streamId, fromVersion);
    for (const event of page) if (seen < max) print(event);
    const last = page[page.length - 1];
    if (last) fromVersion = last.version + 1;
    else await pause();
  }
}

async function versionOrZero(client: CairnClient, streamId: string): Promise<number> {
  try {
    return (await client.streamInfo(streamId)).version;
  } catch (error) {
    if ((error as { code?: string }).code === "StreamNotFound") return 0;
    throw error;
  }
}

async function versionPage(
  client: CairnClient,
  streamId: string,
  fromVersion: number,
): Promise<RecordedEvent[]> {
  try {
    return (await client.readStream(streamId, { fromVersion, limit: 1000 })).events;
  } catch (error) {
    if ((error as { code?: string }).code === "StreamNotFound") return [];
    throw error;
  }
}

async function streams(options: StreamsOptions): Promise<void> {
  const client = await clientOf(options);
  let after = options.after;
  do {
    const page = await client.listStreams({
      category: options.category,
      ...(after ? { after } : {}),
      ...(options.limit ? { limit: options.limit } : {}),
    });
    for (const stream of page.streams) {
      console.log(
        options.json
          ? JSON.stringify(stream)
          : `${stream.streamId}  version ${stream.version}  updated ${stream.updatedAt}`,
      );
    }
    after = page.next;
    if (after && !options.all)
      console.log(`more: cairn streams --category ${options.category} --after '${after}' (or --all)`);
  } while (after && options.all);
}

export function addStreamCommands(program: Command): void {
  withTarget(
    program
      .command("append")
      .description("append one event to a stream")
      .argument("<streamId>", "the stream, e.g. Order-42")
      .argument("<type>", "the event's type, e.g. OrderPlaced")
      .argument("[data]", "the event's data as JSON (default {})", jsonArg)
      .option("--metadata <json>", "the event's metadata as JSON", jsonArg)
      .addOption(
        new Option("--expected-version <v>", "any | no_stream | stream_exists | a version").argParser(
          expectedVersionArg,
        ),
      )
      .option("--event-id <id>", "the event's id (a retry with the same id appends nothing)")
      .option("--json", "print the API's answer as JSON"),
  ).action(action(append));

  withTarget(
    program
      .command("read")
      .description("read a stream's events, forward or backward")
      .argument("<streamId>", "the stream, e.g. Order-42")
      .option("--from <version>", "the first version to read", integer(0))
      .option("--limit <n>", "read at most n events (default: all)", integer(1))
      .option("--backward", "newest first")
      .option("--json", "one JSON event per line")
      .option("--out <file>", "write the events to a file (one JSON event per line), with progress"),
  ).action(action(read));

  withTarget(
    program
      .command("tail")
      .description("follow a stream or $all and print new events (Ctrl-C stops)")
      .argument("<stream>", "a stream id, or '$all' (quote it in a shell)")
      .option(
        "--from <version>",
        "a stream: start at this version (default: after its last event)",
        integer(1),
      )
      .option("--after <position>", "$all: start after this position (default: its head)", integer(0))
      .option("--type <types>", "$all: only these event types (comma-separated, repeatable)", collect)
      .option("--category <category>", "$all: only streams of this category")
      .option("--json", "one JSON event per line")
      .option("--max <n>", "stop after n events", integer(1))
      .addOption(
        new Option("--every-ms <ms>", "how often to look for new events").default(500).argParser(integer(50)),
      ),
  ).action(action(tail));

  withTarget(
    program
      .command("streams")
      .description("list the streams of a category, by id")
      .requiredOption("--category <category>", "the part of a stream id before its first -, e.g. Order")
      .option("--after <streamId>", "list after this stream id")
      .option("--limit <n>", "streams per page (1-100)", integer(1))
      .option("--all", "every page, not only the first")
      .option("--json", "one JSON stream per line"),
  ).action(action(streams));
}
