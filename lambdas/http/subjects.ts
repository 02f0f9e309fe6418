import type { EventStore } from "../core/event-store.ts";
import { assertSubjectId } from "../core/validate.ts";
import { logger } from "../observability.ts";
import { type HttpRequest, json, parseJsonObject, pathParam, queryOf, type RouteHandler } from "./http.ts";

/**
 * `POST /subjects/{subjectId}/erase`: crypto-shredding (EventStore.eraseSubject). 200 with the
 * erasure's record `{ subjectId, erased, erasedAt, erasedBy }`, the first one's when erased before.
 * No body (or `{}`); who erases is the caller's identity as API Gateway gives it, never the body's.
 */
export const eraseSubjectRoute =
  (store: EventStore): RouteHandler =>
  async (request) => {
    const subjectId = pathParam(request, "subjectId");
    assertSubjectId(subjectId);
    queryOf(request, []);
    if (request.body) parseJsonObject(request, []);
    const erasure = await store.eraseSubject(subjectId, { erasedBy: callerOf(request) });
    logger.info("subject erased", { ...erasure });
    return json(200, erasure);
  };

/**
 * The caller's identity: the IAM principal (SigV4), the JWT's issuer and subject, or for the local
 * twin, which authorizes nobody, `local:<source ip>`.
 */
export function callerOf(request: HttpRequest): string {
  const authorizer = (request.requestContext as { authorizer?: Authorizer } | undefined)?.authorizer;
  const iam = authorizer?.iam;
  if (iam?.userArn) return iam.userArn;
  if (iam?.callerId) return `${iam.accountId ?? ""}:${iam.callerId}`;
  const claims = authorizer?.jwt?.claims;
  if (claims?.sub !== undefined) return `${claims.iss ?? "jwt"}#${String(claims.sub)}`;
  return `local:${request.requestContext?.http?.sourceIp ?? "unknown"}`;
}

interface Authorizer {
  readonly iam?: { readonly userArn?: string; readonly callerId?: string; readonly accountId?: string };
  readonly jwt?: { readonly claims?: Record<string, string | number | boolean | string[]> };
}
