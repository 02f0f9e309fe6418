/**
 * The classic DCB example: courses with a capacity and students who subscribe to them. No
 * aggregate owns the rule: a subscription touches a course (its capacity, its subscriptions) and a
 * student (not twice to one course, at most `MAX_COURSES_PER_STUDENT` courses). The decision reads
 * the events tagged with the course or the student, and appends only if none of them changed since
 * (`appendIfNoneMatch` with the read's token); a conflict means "decide again".
 */
import { type EventStore, isTagConflict, type RecordedEvent } from "cairn-event-store";

export const MAX_COURSES_PER_STUDENT = 5;
export const TYPES = ["CourseDefined", "StudentSubscribed"] as const;

export const courseTag = (courseId: string) => `course:${courseId}`;
export const studentTag = (studentId: string) => `student:${studentId}`;

export async function defineCourse(store: EventStore, courseId: string, capacity: number): Promise<void> {
  await store.appendIfNoneMatch(
    [{ type: "CourseDefined", data: { courseId, capacity }, tags: [courseTag(courseId)] }],
    { query: { tags: [courseTag(courseId)], types: ["CourseDefined"] } },
  );
}

export type SubscribeOutcome =
  | "subscribed"
  | "course full"
  | "no such course"
  | "already subscribed"
  | "too many courses";

interface Decision {
  capacity: number | undefined;
  subscribers: number;
  already: boolean;
  studentCourses: number;
}

function decide(events: readonly RecordedEvent[], courseId: string, studentId: string): Decision {
  const state: Decision = { capacity: undefined, subscribers: 0, already: false, studentCourses: 0 };
  for (const event of events) {
    const data = event.data as { courseId: string; capacity?: number; studentId?: string };
    if (event.type === "CourseDefined" && data.courseId === courseId) state.capacity = data.capacity;
    if (event.type === "StudentSubscribed") {
      if (data.courseId === courseId) state.subscribers++;
      if (data.studentId === studentId) {
        state.studentCourses++;
        if (data.courseId === courseId) state.already = true;
      }
    }
  }
  return state;
}

/** Subscribes a student to a course, deciding again (from a fresh read) whenever the facts moved. */
export async function subscribe(
  store: EventStore,
  courseId: string,
  studentId: string,
): Promise<SubscribeOutcome> {
  const query = { tags: [courseTag(courseId), studentTag(studentId)], types: [...TYPES] };
  for (;;) {
    const { events, token } = await store.readByTags(query);
    const state = decide(events, courseId, studentId);
    if (state.capacity === undefined) return "no such course";
    if (state.already) return "already subscribed";
    if (state.subscribers >= state.capacity) return "course full";
    if (state.studentCourses >= MAX_COURSES_PER_STUDENT) return "too many courses";
    try {
      await store.appendIfNoneMatch(
        [
          {
            type: "StudentSubscribed",
            data: { courseId, studentId },
            tags: [courseTag(courseId), studentTag(studentId)],
          },
        ],
        { query, after: token },
      );
      return "subscribed";
    } catch (error) {
      if (!isTagConflict(error)) throw error;
    }
  }
}
