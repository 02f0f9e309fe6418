export * from "./all.ts";
export * from "./constants.ts";
export * from "./errors.ts";
export * from "./event-store.ts";
export * from "./table.ts";
export type * from "./types.ts";
export * from "./upcasting.ts";
export { assertStreamId, parseExpectedVersion } from "./validate.ts";
