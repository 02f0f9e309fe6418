import { describe, expect, it } from "vitest";
import { logFormat, logLine } from "../../lambdas/observability.ts";

describe("log lines", () => {
  it("are JSON in Lambda or with LOG_FORMAT=json, one readable line elsewhere", () => {
    expect(logFormat({ AWS_LAMBDA_FUNCTION_NAME: "cairn-api-write" })).toBe("json");
    expect(logFormat({ LOG_FORMAT: "json" })).toBe("json");
    expect(logFormat({ LOG_FORMAT: "JSON" })).toBe("json");
    expect(logFormat({})).toBe("line");
  });

  it("say the level, the message and the keys that matter, without the envelope or the Lambda context", () => {
    const line = logLine({
      level: "INFO",
      message: "request refused",
      timestamp: "2026-12-02T16:49:36.818Z",
      service: "cairn",
      sampling_rate: 0,
      function_name: "cairn-local-api-write",
      cold_start: false,
      requestId: "6a61d06f",
      route: "POST /streams/{streamId}/events",
      code: "ValidationError",
      reason: "events[0].type: must be a non-empty string\nsecond line",
    });
    expect(line).toBe(
      "INFO request refused route=POST /streams/{streamId}/events code=ValidationError " +
        "reason=events[0].type: must be a non-empty string second line",
    );
  });

  it("give an error as name and message, its stack on the lines after", () => {
    const line = logLine({
      level: "ERROR",
      message: "request failed",
      error: { name: "Error", message: "boom", stack: "Error: boom\n    at here (x.ts:1:1)" },
    });
    expect(line).toBe("ERROR request failed error=Error: boom\n    at here (x.ts:1:1)");
  });
});
