/**
 * The classic DCB example of a global uniqueness rule: a username is never taken twice. The
 * consistency boundary is the tag `username:<name>`, not any stream: registering reads the events
 * with that tag and appends the claim only if none appeared since (`appendIfNoneMatch`).
 */
import { type EventStore, isTagConflict } from "cairn-event-store";

export const usernameTag = (username: string) => `username:${username}`;

export type RegisterOutcome = "registered" | "taken";

/** Claims `username` for `userId`; "taken" when any claim of it exists, also one made concurrently. */
export async function register(
  store: EventStore,
  userId: string,
  username: string,
): Promise<RegisterOutcome> {
  const query = { tags: [usernameTag(username)], types: ["UsernameClaimed"] };
  const { events, token } = await store.readByTags(query);
  if (events.length > 0) return "taken";
  try {
    await store.appendIfNoneMatch(
      [
        {
          type: "UsernameClaimed",
          data: { userId, username },
          tags: [usernameTag(username), `user:${userId}`],
        },
      ],
      { query, after: token },
    );
    return "registered";
  } catch (error) {
    // A claim landed after our read: the name is taken (reading again would say so).
    if (isTagConflict(error)) return "taken";
    throw error;
  }
}
