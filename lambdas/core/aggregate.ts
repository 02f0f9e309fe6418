import { isStreamNotFound, isWrongExpectedVersion } from "./errors.ts";
import type { EventStore } from "./event-store.ts";
import type { DomainEvent } from "./schemas.ts";
import { type Snapshot, SnapshotStore } from "./snapshots.ts";
import type { AppendResult, EventMetadata, NewEvent, RecordedEvent } from "./types.ts";
import { assertNonNegativeInteger } from "./validate.ts";

/** The recorded form of each member of an event union, still discriminated on `type`. */
export type Recorded<Event extends DomainEvent> = Event extends DomainEvent
  ? RecordedEvent<Event["type"], Event["data"]>
  : never;

/** An event `decide` returns: a member of the union, optionally with its id and metadata. */
export type Decided<Event extends DomainEvent> = Event & {
  readonly eventId?: string;
  readonly metadata?: EventMetadata;
};

/** How an aggregate's state is built from its events (Emmett's `evolve` + `initialState`). */
export interface Aggregate<State, Event extends DomainEvent> {
  initialState(): State;
  /** Applies one event; gets the recorded event, which is also a member of the union. */
  evolve(state: State, event: Event): State;
  /**
   * The version of the state's shape. Bump it when the state type changes: snapshots of another
   * version are ignored (the state is rebuilt from the events and snapshotted afresh). @default 1
   */
  readonly snapshotSchemaVersion?: number;
  /** State → snapshot JSON, for state that is not plain JSON (a Map, a Date). @default the state itself */
  toSnapshot?(state: State): unknown;
  /** Snapshot JSON → state. @default the JSON itself */
  fromSnapshot?(snapshot: unknown): State;
}

/** When the repository saves snapshots by itself. Both may be set; either triggers one. */
export interface SnapshotPolicy {
  /** After an append that crosses a multiple of this version (every N events). */
  readonly everyEvents?: number;
  /** After a load (or a handled command) that replayed more than this many events since the last snapshot. */
  readonly whenReplayedMoreThan?: number;
}

export interface AggregateRepositoryOptions {
  /**
   * Where snapshots live; `false` loads from events only. Only a store of source `"repository"`:
   * snapshots saved over HTTP are never loaded (docs/decisions.md). @default a SnapshotStore on the
   * store's table
   */
  readonly snapshots?: SnapshotStore | false;
  /** Automatic snapshots. @default none: snapshots only when `saveSnapshot` is called */
  readonly snapshotPolicy?: SnapshotPolicy;
  /** Conflicts `handle` retries (reload, decide again, append) unless a call says otherwise. @default 0 */
  readonly maxRetries?: number;
  /** Called when a background snapshot write fails; the failure is never thrown. @default console.warn */
  readonly onSnapshotError?: (error: unknown, streamId: string, version: number) => void;
}

export interface LoadedAggregate<State> {
  readonly streamId: string;
  readonly state: State;
  /** The stream version the state includes; 0 when the stream does not exist. */
  readonly version: number;
  /** The version of the snapshot the load started from; absent when it replayed from the start. */
  readonly snapshotVersion?: number;
  /** Events applied on top of the snapshot (or from the start). */
  readonly replayed: number;
}

export interface LoadOptions {
  /** Rebuild the state as it was at this version (a snapshot at or below it is used). @default the latest */
  readonly atVersion?: number;
}

export interface HandleOptions {
  /** Conflicts to retry: each reloads the state and runs `decide` again. @default the repository's */
  readonly maxRetries?: number;
  /** Merged into every new event's metadata (`correlationId`, `causationId`, …). */
  readonly metadata?: EventMetadata;
}

export interface HandleResult<State, Event extends DomainEvent> {
  readonly streamId: string;
  /** The state after the new events. */
  readonly state: State;
  /** The stream's version after the append (the loaded version when `decide` returned nothing). */
  readonly version: number;
  /** What `decide` returned, as appended. */
  readonly events: readonly Decided<Event>[];
  /** The append's result; absent when `decide` returned no events. */
  readonly appended?: AppendResult;
  /** 1 + the conflicts retried. */
  readonly attempts: number;
}

/** The command handler's decision: no event, one, or several. May be async. */
export type Decide<State, Event extends DomainEvent> = (
  state: State,
  context: { readonly streamId: string; readonly version: number },
) => Decided<Event> | readonly Decided<Event>[] | Promise<Decided<Event> | readonly Decided<Event>[]>;

/**
 * The command side of CQRS over an EventStore: `load` rebuilds an aggregate from its latest
 * snapshot plus the events after it; `handle` loads, decides, and appends with the loaded version
 * as `expectedVersion`, so a concurrent writer turns into a WrongExpectedVersionError (retried
 * when allowed). Snapshots are written after the append has returned, never in its path.
 */
export class AggregateRepository<State, Event extends DomainEvent> {
  readonly snapshots: SnapshotStore | undefined;
  private readonly pending = new Set<Promise<void>>();
  private readonly schemaVersion: number;

  constructor(
    readonly store: EventStore,
    readonly aggregate: Aggregate<State, Event>,
    private readonly options: AggregateRepositoryOptions = {},
  ) {
    this.snapshots =
      options.snapshots === false
        ? undefined
        : (options.snapshots ??
          new SnapshotStore({
            client: store.client,
            tableName: store.tableName,
            ...(store.keys ? { keys: store.keys } : {}),
          }));
    // Only the repository's own snapshots are trusted: those saved over HTTP are a client's word.
    if (this.snapshots && this.snapshots.source !== "repository") {
      throw new Error('an AggregateRepository loads only snapshots of source "repository", never "http"');
    }
    this.schemaVersion = aggregate.snapshotSchemaVersion ?? 1;
  }

  /**
   * Rebuilds the state: the latest usable snapshot, then every event after it (up to `atVersion`
   * when given: the state as it was then). A missing stream is version 0.
   */
  async load(streamId: string, options: LoadOptions = {}): Promise<LoadedAggregate<State>> {
    const { loaded, subjectIds } = await this.rebuild(streamId, options.atVersion);
    if (this.replayedTooMany(loaded.replayed)) {
      this.snapshotLater(streamId, loaded.version, loaded.state, subjectIds);
    }
    return loaded;
  }

  /**
   * Runs a command: load, `decide` new events from the state, append them expecting the loaded
   * version. On a conflict it reloads and decides again, up to `maxRetries` times, then throws
   * the WrongExpectedVersionError. Errors `decide` throws pass through untouched.
   */
  async handle(
    streamId: string,
    decide: Decide<State, Event>,
    options: HandleOptions = {},
  ): Promise<HandleResult<State, Event>> {
    const maxRetries = options.maxRetries ?? this.options.maxRetries ?? 0;
    for (let attempt = 1; ; attempt++) {
      const { loaded, subjectIds } = await this.rebuild(streamId);
      const decided = await decide(loaded.state, { streamId, version: loaded.version });
      const events: readonly Decided<Event>[] = isEventList(decided) ? decided : [decided];
      if (events.length === 0) {
        if (this.replayedTooMany(loaded.replayed)) {
          this.snapshotLater(streamId, loaded.version, loaded.state, subjectIds);
        }
        return { streamId, state: loaded.state, version: loaded.version, events, attempts: attempt };
      }
      const newEvents = events.map(toNewEvent(options.metadata));
      let appended: AppendResult;
      try {
        appended = await this.store.appendToStream(streamId, newEvents, {
          expectedVersion: loaded.version,
        });
      } catch (error) {
        if (!isWrongExpectedVersion(error) || attempt > maxRetries) throw error;
        await jitter(attempt);
        continue;
      }
      const state = events.reduce((current, event) => this.aggregate.evolve(current, event), loaded.state);
      const crossed = this.crossedCadence(loaded.version, appended.toVersion);
      if (crossed || this.replayedTooMany(loaded.replayed + events.length)) {
        for (const event of newEvents) addSubject(subjectIds, event.metadata, false);
        this.snapshotLater(streamId, appended.toVersion, state, subjectIds);
      }
      return { streamId, state, version: appended.toVersion, events, appended, attempts: attempt };
    }
  }

  /**
   * Saves a snapshot of `state` at `version` now (awaited), at the aggregate's snapshot schema
   * version, sealed under the subjects of the events up to `version` (`metadata.subjectId`, erased
   * ones left out: their data is gone from the state too). Without `subjectIds` it reads the stream
   * up to `version` to learn them; the snapshots the repository takes by itself know them already.
   */
  async saveSnapshot(
    streamId: string,
    version: number,
    state: State,
    subjectIds?: readonly string[],
  ): Promise<Snapshot> {
    if (!this.snapshots) throw new Error("this repository has no snapshot store");
    const snapshotState = this.aggregate.toSnapshot ? this.aggregate.toSnapshot(state) : state;
    const subjects = subjectIds ?? [...(await this.subjectsUpTo(streamId, version))];
    return this.snapshots.save(streamId, {
      version,
      state: snapshotState,
      schemaVersion: this.schemaVersion,
      ...(subjects.length === 0 ? {} : { subjectIds: subjects }),
    });
  }

  /**
   * Waits for the background snapshot writes started so far. A Lambda calls it before returning
   * (after its response is ready) so a frozen sandbox does not hold a write; tests call it to look.
   */
  async flush(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }

  /** The subjects of a stream's events up to `version`, erased ones left out (a read of the stream). */
  private async subjectsUpTo(streamId: string, version: number): Promise<Set<string>> {
    const subjects = new Set<string>();
    let fromVersion: number | undefined = 1;
    while (fromVersion !== undefined && fromVersion <= version) {
      const page = await this.store.readStream(streamId, { fromVersion, limit: version - fromVersion + 1 });
      for (const event of page.events) addSubject(subjects, event.metadata, event.erased === true);
      fromVersion = page.nextVersion;
    }
    return subjects;
  }

  /**
   * The state at the latest version (or `atVersion`), and the subjects whose data it holds: the
   * snapshot's, then those of the events applied after it, erased ones left out.
   */
  private async rebuild(
    streamId: string,
    atVersion?: number,
  ): Promise<{ loaded: LoadedAggregate<State>; subjectIds: Set<string> }> {
    const last = atVersion === undefined ? undefined : assertNonNegativeInteger(atVersion, "atVersion");
    const snapshot = this.snapshots
      ? await this.snapshots.load(streamId, last === undefined ? {} : { maxVersion: last })
      : undefined;
    let usable = snapshot && snapshot.schemaVersion === this.schemaVersion ? snapshot : undefined;
    let state = usable
      ? this.aggregate.fromSnapshot
        ? this.aggregate.fromSnapshot(usable.state)
        : (usable.state as State)
      : this.aggregate.initialState();
    let version = usable?.version ?? 0;
    const subjectIds = new Set(usable?.subjectIds ?? []);
    let replayed = 0;
    let fromVersion: number | undefined = version + 1;
    try {
      while (fromVersion !== undefined && (last === undefined || fromVersion <= last)) {
        const limit = last === undefined ? {} : { limit: last - fromVersion + 1 };
        const page = await this.store.readStream(streamId, { fromVersion, ...limit });
        if (usable && page.deletedAt !== undefined && usable.version <= page.deletedAt) {
          // A snapshot of the stream's life before a soft delete: the stream starts afresh after it.
          usable = undefined;
          subjectIds.clear();
          state = this.aggregate.initialState();
          version = page.deletedAt;
          fromVersion = page.deletedAt + 1;
          continue;
        }
        for (const event of page.events) {
          state = this.aggregate.evolve(state, event as unknown as Event);
          version = event.version;
          addSubject(subjectIds, event.metadata, event.erased === true);
          replayed++;
        }
        fromVersion = page.nextVersion;
      }
    } catch (error) {
      if (!isStreamNotFound(error)) throw error;
      if (error.deletedAt !== undefined) {
        // Soft deleted and not appended to since: a fresh state, at the version the next append follows.
        usable = undefined;
        subjectIds.clear();
        state = this.aggregate.initialState();
        version = error.deletedAt;
      }
    }
    const loaded = usable
      ? { streamId, state, version, snapshotVersion: usable.version, replayed }
      : { streamId, state, version, replayed };
    return { loaded, subjectIds };
  }

  private crossedCadence(from: number, to: number): boolean {
    const every = this.options.snapshotPolicy?.everyEvents;
    return every !== undefined && every > 0 && Math.floor(to / every) > Math.floor(from / every);
  }

  private replayedTooMany(replayed: number): boolean {
    const most = this.options.snapshotPolicy?.whenReplayedMoreThan;
    return this.snapshots !== undefined && most !== undefined && replayed > most;
  }

  /** Starts a snapshot write and returns at once; a failure is reported, never thrown. */
  private snapshotLater(streamId: string, version: number, state: State, subjectIds: Set<string>): void {
    if (!this.snapshots || version === 0) return;
    const write = this.saveSnapshot(streamId, version, state, [...subjectIds])
      .then(() => undefined)
      .catch((error: unknown) => {
        const report =
          this.options.onSnapshotError ??
          ((failure: unknown) =>
            console.warn("cairn: background snapshot failed", { streamId, version, error: String(failure) }));
        report(error, streamId, version);
      })
      .finally(() => this.pending.delete(write));
    this.pending.add(write);
  }
}

/** Adds an event's subject (`metadata.subjectId`) to those a state holds data of, unless it is erased. */
function addSubject(subjects: Set<string>, metadata: EventMetadata | undefined, erased: boolean): void {
  const subjectId = metadata?.subjectId;
  if (!erased && typeof subjectId === "string") subjects.add(subjectId);
}

/** A short random pause before a retry, so writers that collided do not collide again in step. */
function jitter(attempt: number): Promise<void> {
  const ms = Math.random() * Math.min(50, 5 * 2 ** attempt);
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function isEventList<Event extends DomainEvent>(
  decided: Decided<Event> | readonly Decided<Event>[],
): decided is readonly Decided<Event>[] {
  return Array.isArray(decided);
}

function toNewEvent(metadata: EventMetadata | undefined) {
  return (event: Decided<DomainEvent>): NewEvent => {
    const merged = metadata || event.metadata ? { ...metadata, ...event.metadata } : undefined;
    return {
      type: event.type,
      data: event.data,
      ...(event.eventId === undefined ? {} : { eventId: event.eventId }),
      ...(merged === undefined ? {} : { metadata: merged }),
    };
  };
}
