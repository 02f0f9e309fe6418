import { Sha256 } from "@aws-crypto/sha256-js";
import { SignatureV4 } from "@smithy/signature-v4";
import { HTTP } from "../core/constants.ts";
import { NotFoundError } from "../core/errors.ts";
import type {
  DeleteStreamOptions,
  DeleteStreamResult,
  SetMetadataOptions,
  StreamMetadata,
  StreamMetadataResult,
} from "../core/lifecycle.ts";
import type { Snapshot } from "../core/snapshots.ts";
import type { ListStreamsOptions, ListStreamsResult } from "../core/stream-list.ts";
import type { SubjectErasure } from "../core/subjects.ts";
import type {
  AppendIfNoneMatchOptions,
  AppendResult,
  AppendToStreamsResult,
  ExpectedVersion,
  NewEvent,
  ReadByTagsOptions,
  ReadByTagsResult,
  ReadDirection,
  ReadStreamResult,
  RecordedEvent,
  StreamAppend,
  StreamInfo,
  TaggedEvent,
} from "../core/types.ts";
import type { ParkedEvent, ProjectionStatus } from "../projections/state.ts";
import { ApiError, ConnectionError, errorFromResponse } from "./errors.ts";
import {
  type SubscribeToAllOptions,
  type SubscribeToStreamOptions,
  subscribeToAll,
  subscribeToStream,
} from "./subscriptions.ts";

export type { ParkedEvent, ProjectionStatus };

type Credentials = ConstructorParameters<typeof SignatureV4>[0]["credentials"];

export interface CairnClientOptions {
  /** The API's base URL: `https://abc123.execute-api.eu-west-1.amazonaws.com` or `http://127.0.0.1:3000`. */
  readonly url: string;
  /**
   * `"sigv4"` signs every request for IAM authorization (service `execute-api`); `"none"` sends
   * it plain. @default "auto": plain for localhost, 127.0.0.1 and ::1, SigV4 for anything else
   */
  readonly signing?: "auto" | "sigv4" | "none";
  /** @default the region in an `execute-api` host name, else AWS_REGION */
  readonly region?: string;
  /** @default the Node.js default provider chain (env, SSO, profile, container, instance metadata) */
  readonly credentials?: Credentials;
  /** Sent with every request (e.g. `x-correlation-id`). */
  readonly headers?: Readonly<Record<string, string>>;
  /** @default globalThis.fetch */
  readonly fetch?: typeof fetch;
}

export interface ClientReadStreamOptions {
  readonly fromVersion?: number;
  /** @default "forward" */
  readonly direction?: ReadDirection;
  /**
   * Most events to return; pages (up to 1,000 events, and under 5 MB: the server may stop one
   * early) are fetched, following `nextVersion`, until then. @default all of them
   */
  readonly limit?: number;
  /**
   * Long polling (forward only): when the stream has no event at `fromVersion` yet (or does not
   * exist yet), the server waits up to this many milliseconds (0 to 20,000) for one. @default 0
   */
  readonly waitMs?: number;
  /** Aborts the request (a wait included): the call rejects with the signal's reason. */
  readonly signal?: AbortSignal;
}

export interface ClientReadAllOptions {
  /** Position to read after (exclusive). @default 0 */
  readonly after?: number;
  readonly limit?: number;
  readonly types?: readonly string[];
  readonly category?: string;
  /**
   * Long polling: when no event after `after` matches yet, the server waits up to this many
   * milliseconds (0 to 20,000) for one, then answers an empty page. @default 0
   */
  readonly waitMs?: number;
  /** Aborts the request (a wait included): the call rejects with the signal's reason. */
  readonly signal?: AbortSignal;
}

export interface ClientReadAllResult {
  /** Events in global order, each with `globalPosition`. */
  readonly events: RecordedEvent[];
  /** The last position of `$all` when the read began (0 = empty). */
  readonly headPosition: number;
  /** Pass as `after` to read on; absent when the read reached `headPosition`. */
  readonly nextAfter?: number;
}

/** What a replay of parked events did (`replayParked`). */
export interface ReplayParkedResult {
  readonly name: string;
  /** Events whose handler succeeded this time: unparked. */
  readonly replayed: number;
  /** Events whose handler failed again: still parked, with the new error. */
  readonly stillParked: number;
  /** The positions this replay unparked, ascending. */
  readonly replayedPositions: readonly number[];
  /** The first 100 events still parked after the replay. */
  readonly parked: readonly ParkedEvent[];
}

/** A projection's status with its first parked events. */
export interface ProjectionDetail extends ProjectionStatus {
  readonly parked: readonly ParkedEvent[];
}

/** `GET /health` of the local server (`npm start`): it and its DynamoDB table answer. */
export interface HealthStatus {
  readonly status: "ok";
  readonly table: string;
  readonly tableStatus?: string;
}

const LOCAL_HOSTS = new Set(["localhost", "127.0.0.1", "[::1]", "::1"]);
/** The HTTP API's largest page of a stream read. */
const PAGE = 1000;

/**
 * A typed client for Cairn's HTTP API. It throws the library's own errors
 * (WrongExpectedVersionError, StreamNotFoundError, ValidationError, …) rebuilt from the error
 * body's `code`, so code written against the in-process EventStore reads the same over HTTP.
 */
export class CairnClient {
  private readonly base: URL;
  /** The base URL as errors name it: `http://127.0.0.1:3000`. */
  readonly url: string;
  private readonly fetch: typeof fetch;
  private readonly headers: Readonly<Record<string, string>>;
  private signer: Promise<SignatureV4> | undefined;
  private readonly signs: boolean;

  constructor(private readonly options: CairnClientOptions) {
    this.base = new URL(options.url.endsWith("/") ? options.url : `${options.url}/`);
    this.url = this.base.href.replace(/\/$/, "");
    this.fetch = options.fetch ?? globalThis.fetch;
    this.headers = options.headers ?? {};
    const signing = options.signing ?? "auto";
    this.signs = signing === "sigv4" || (signing === "auto" && !LOCAL_HOSTS.has(this.base.hostname));
  }

  /** Appends events; `duplicate` is true when the API answered that this was a retry already written. */
  async append(
    streamId: string,
    events: readonly NewEvent[],
    options: { readonly expectedVersion?: ExpectedVersion } = {},
  ): Promise<AppendResult> {
    const body =
      options.expectedVersion === undefined
        ? { events }
        : { events, expectedVersion: options.expectedVersion };
    const response = await this.request("POST", `streams/${enc(streamId)}/events`, {}, body);
    const result = response.body as Omit<AppendResult, "duplicate">;
    return { ...result, duplicate: response.replayed };
  }

  /**
   * Appends tagged events only if no event matching `query` came after the token `after`
   * (`POST /tags/events`); else a TagConflictError naming the query.
   */
  async appendIfNoneMatch(
    events: readonly TaggedEvent[],
    options: AppendIfNoneMatchOptions,
  ): Promise<AppendResult> {
    const response = await this.request("POST", "tags/events", {}, { events, ...options });
    return { ...(response.body as Omit<AppendResult, "duplicate">), duplicate: response.replayed };
  }

  /** The events carrying any of `tags` (of `types`), and the token to decide on (`GET /tags/events`). */
  async readByTags(options: ReadByTagsOptions): Promise<ReadByTagsResult> {
    const query: Record<string, string> = { tags: options.tags.join(",") };
    if (options.types) query.types = options.types.join(",");
    if (options.after !== undefined) query.after = options.after;
    return (await this.request("GET", "tags/events", query)).body as ReadByTagsResult;
  }

  /**
   * Appends to several streams at once, all or nothing (`POST /streams/_batch`): each stream's
   * result in the order given; `duplicate` is true when the API answered that this was a retry
   * already written. A conflict is a MultiStreamConflictError listing every stream that failed.
   */
  async appendToStreams(appends: readonly StreamAppend[]): Promise<AppendToStreamsResult> {
    const response = await this.request("POST", "streams/_batch", {}, { appends });
    const { streams } = response.body as { streams: Omit<AppendResult, "duplicate">[] };
    return {
      streams: streams.map((result) => ({ ...result, duplicate: response.replayed })),
      duplicate: response.replayed,
    };
  }

  /** Reads a stream, paging until `limit` events or the end. Throws StreamNotFoundError when it does not exist. */
  async readStream(streamId: string, options: ClientReadStreamOptions = {}): Promise<ReadStreamResult> {
    const events: RecordedEvent[] = [];
    const limit = options.limit ?? Number.POSITIVE_INFINITY;
    let fromVersion = options.fromVersion;
    let nextVersion: number | undefined;
    do {
      const page = Math.min(PAGE, limit - events.length);
      const { body } = await this.request(
        "GET",
        `streams/${enc(streamId)}/events`,
        { fromVersion, limit: page, direction: options.direction, waitMs: options.waitMs },
        undefined,
        options.signal,
      );
      const answer = body as { events: RecordedEvent[]; nextVersion?: number };
      events.push(...answer.events);
      nextVersion = answer.nextVersion;
      fromVersion = nextVersion;
    } while (nextVersion !== undefined && events.length < limit);
    return nextVersion === undefined ? { streamId, events } : { streamId, events, nextVersion };
  }

  /** Version, category and times of a stream. */
  async streamInfo(streamId: string): Promise<StreamInfo> {
    return (await this.request("GET", `streams/${enc(streamId)}`)).body as StreamInfo;
  }

  /** One page of a category's streams, by id, with versions and times; `next` is the next page's `after`. */
  async listStreams(options: ListStreamsOptions): Promise<ListStreamsResult> {
    const { body } = await this.request("GET", "streams", {
      category: options.category,
      after: options.after,
      limit: options.limit,
    });
    const { streams, nextAfter } = body as { streams: StreamInfo[]; nextAfter?: string };
    return nextAfter === undefined ? { streams } : { streams, next: nextAfter };
  }

  /** One page of `$all` after a position. */
  async readAll(options: ClientReadAllOptions = {}): Promise<ClientReadAllResult> {
    const { body } = await this.request(
      "GET",
      "all",
      {
        after: options.after,
        limit: options.limit,
        types: options.types?.join(","),
        category: options.category,
        waitMs: options.waitMs,
      },
      undefined,
      options.signal,
    );
    const { events, headPosition, nextAfter } = body as ClientReadAllResult;
    return nextAfter === undefined ? { events, headPosition } : { events, headPosition, nextAfter };
  }

  /**
   * Every event of `$all` after `after`, in global order, then each new one as it gets its position:
   * an async iterator over long-polling reads that resumes from the last event it yielded after any
   * failure (nothing skipped, nothing repeated), backs off while the API cannot be reached (logging
   * once per outage), ends on `signal`, and with `checkpoint` stores its position through your
   * callback. See lambdas/client/subscriptions.ts.
   */
  subscribeToAll(options: SubscribeToAllOptions = {}): AsyncGenerator<RecordedEvent, void, undefined> {
    return subscribeToAll(this, options);
  }

  /** Every event of a stream from `fromVersion`, then each new one as it is appended; as `subscribeToAll`. */
  subscribeToStream(
    streamId: string,
    options: SubscribeToStreamOptions = {},
  ): AsyncGenerator<RecordedEvent, void, undefined> {
    return subscribeToStream(this, streamId, options);
  }

  /** The latest snapshot (at or below `maxVersion`), or undefined when the stream has none. */
  async getSnapshot<State = unknown>(
    streamId: string,
    options: { readonly maxVersion?: number } = {},
  ): Promise<Snapshot<State> | undefined> {
    try {
      const { body } = await this.request("GET", `streams/${enc(streamId)}/snapshot`, {
        maxVersion: options.maxVersion,
      });
      return body as Snapshot<State>;
    } catch (error) {
      if (error instanceof NotFoundError) return undefined;
      throw error;
    }
  }

  /** Saves a snapshot at a version the stream has reached (else a ValidationError on `version`). */
  async putSnapshot<State>(
    streamId: string,
    snapshot: { readonly version: number; readonly state: State; readonly schemaVersion?: number },
  ): Promise<Snapshot<State>> {
    return (await this.request("PUT", `streams/${enc(streamId)}/snapshot`, {}, snapshot))
      .body as Snapshot<State>;
  }

  /** A stream's metadata and its version (0 when none was written). */
  async getStreamMetadata(streamId: string): Promise<StreamMetadataResult> {
    return (await this.request("GET", `streams/${enc(streamId)}/metadata`)).body as StreamMetadataResult;
  }

  /**
   * Replaces a stream's metadata (retention rules and `custom`); WrongExpectedMetadataVersionError
   * when `expectedMetadataVersion` is not the current one. Needs access `writeMetadata`.
   */
  async setStreamMetadata(
    streamId: string,
    metadata: StreamMetadata,
    options: SetMetadataOptions = {},
  ): Promise<StreamMetadataResult> {
    const body =
      options.expectedMetadataVersion === undefined
        ? metadata
        : { ...metadata, expectedMetadataVersion: options.expectedMetadataVersion };
    return (await this.request("PUT", `streams/${enc(streamId)}/metadata`, {}, body))
      .body as StreamMetadataResult;
  }

  /** Soft deletes a stream, or hard deletes it with `hard: true`. Needs access `delete`. */
  async deleteStream(streamId: string, options: DeleteStreamOptions = {}): Promise<DeleteStreamResult> {
    const { body } = await this.request("DELETE", `streams/${enc(streamId)}`, {
      expectedVersion: options.expectedVersion,
      hard: options.hard === undefined ? undefined : String(options.hard),
    });
    return body as DeleteStreamResult;
  }

  /**
   * Erases a subject's personal data (crypto-shredding): every event appended with this
   * `metadata.subjectId` reads back with `data: null, erased: true` from then on, and its appends
   * are refused (SubjectErasedError). Idempotent: erasing again answers the first erasure's record.
   * Needs access `erase`.
   */
  async eraseSubject(subjectId: string): Promise<SubjectErasure> {
    return (await this.request("POST", `subjects/${enc(subjectId)}/erase`)).body as SubjectErasure;
  }

  /** The status of every projection. */
  async listProjections(): Promise<ProjectionStatus[]> {
    const { body } = await this.request("GET", "projections");
    return (body as { projections: ProjectionStatus[] }).projections;
  }

  /** One projection's status and its first parked events; NotFoundError for an unknown name. */
  async projectionStatus(name: string): Promise<ProjectionDetail> {
    return (await this.request("GET", `projections/${enc(name)}`)).body as ProjectionDetail;
  }

  /** Rebuilds a projection from position 0 with an empty read model; returns the status after the reset. */
  async resetProjection(name: string): Promise<ProjectionStatus> {
    return (await this.request("POST", `projections/${enc(name)}/reset`)).body as ProjectionStatus;
  }

  /**
   * Runs a projection's handlers again on its parked events (all, or those at `positions`): those
   * whose handler now succeeds are unparked. ProjectionRunningError while a runner holds its lease.
   */
  async replayParked(name: string, positions?: readonly number[]): Promise<ReplayParkedResult> {
    const body = positions === undefined ? undefined : { positions };
    return (await this.request("POST", `projections/${enc(name)}/replay`, {}, body))
      .body as ReplayParkedResult;
  }

  /**
   * One read-model document of a projection's current generation, as its handlers last wrote it,
   * or undefined when there is none (the API answers 404 `NotFound` alike for an unknown
   * projection: see `listProjections` for the names).
   */
  async projectionDocument<Document = unknown>(name: string, id: string): Promise<Document | undefined> {
    try {
      const { body } = await this.request("GET", `projections/${enc(name)}/documents/${enc(id)}`);
      return body as Document;
    } catch (error) {
      if (error instanceof NotFoundError) return undefined;
      throw error;
    }
  }

  /**
   * The local server's health (`npm start` only; API Gateway has no such route). Throws an
   * ApiError with status 503 when DynamoDB Local or the table does not answer.
   */
  async health(): Promise<HealthStatus> {
    return (await this.request("GET", "health")).body as HealthStatus;
  }

  private async request(
    method: string,
    path: string,
    query: Readonly<Record<string, string | number | undefined>> = {},
    body?: unknown,
    signal?: AbortSignal,
  ): Promise<{ status: number; body: unknown; replayed: boolean }> {
    const url = new URL(path, this.base);
    for (const [key, value] of Object.entries(query)) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    const payload = body === undefined ? undefined : JSON.stringify(body);
    let headers: Record<string, string> = {
      accept: "application/json",
      ...this.headers,
      ...(payload === undefined ? {} : { "content-type": "application/json" }),
    };
    if (this.signs) headers = await this.sign(method, url, headers, payload);
    let response: Response;
    let text: string;
    try {
      response = await this.fetch(url, {
        method,
        headers,
        ...(payload === undefined ? {} : { body: payload }),
        ...(signal ? { signal } : {}),
      });
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      throw new ConnectionError(this.url, networkCause(error));
    }
    try {
      text = await response.text();
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      throw new ConnectionError(this.url, networkCause(error), "answer");
    }
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch (cause) {
      throw new ApiError(response.status, "InternalError", `HTTP ${response.status}: not JSON`, text, {
        cause,
      });
    }
    if (!response.ok) throw errorFromResponse(response.status, parsed);
    const replayed = response.headers.get(HTTP.replayedHeader) === "true";
    return { status: response.status, body: parsed, replayed };
  }

  /** SigV4 headers for the request exactly as it is sent (path, query, body and host). */
  private async sign(
    method: string,
    url: URL,
    headers: Record<string, string>,
    body: string | undefined,
  ): Promise<Record<string, string>> {
    this.signer ??= this.createSigner();
    const query: Record<string, string> = {};
    for (const [key, value] of url.searchParams) query[key] = value;
    const signed = await (await this.signer).sign({
      method,
      protocol: url.protocol,
      hostname: url.hostname,
      ...(url.port ? { port: Number(url.port) } : {}),
      path: url.pathname,
      query,
      headers: { ...headers, host: url.host },
      ...(body === undefined ? {} : { body }),
    });
    return signed.headers;
  }

  private async createSigner(): Promise<SignatureV4> {
    const region =
      this.options.region ??
      /\.execute-api\.([a-z0-9-]+)\.amazonaws\.com$/.exec(this.base.hostname)?.[1] ??
      globalThis.process?.env?.AWS_REGION;
    if (!region) throw new Error("CairnClient: no region for SigV4; pass `region` or set AWS_REGION");
    const credentials =
      this.options.credentials ?? (await import("@aws-sdk/credential-provider-node")).defaultProvider();
    return new SignatureV4({ service: "execute-api", region, credentials, sha256: Sha256 });
  }
}

const enc = encodeURIComponent;

/** What the network said: fetch wraps it (`TypeError: fetch failed`, cause `ECONNREFUSED`). */
const networkCause = (error: unknown): unknown =>
  error instanceof TypeError && error.cause !== undefined ? error.cause : error;
