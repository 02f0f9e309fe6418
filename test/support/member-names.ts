/** Names of members every plain object inherits: valid event types, and keys a lookup must not find. */
export const MEMBER_NAMES = [
  "constructor",
  "toString",
  "valueOf",
  "hasOwnProperty",
  "isPrototypeOf",
  "propertyIsEnumerable",
  "toLocaleString",
] as const;

/** Data whose keys are such names, `__proto__` included as an own key (as JSON.parse makes it). */
export const memberNamedData = (type: string): unknown =>
  JSON.parse(`{"${type}":1,"__proto__":{"nested":true},"list":["${type}"]}`);
