// Failed chat calls as openai-node sees failures over HTTP, so it raises its own error classes.
//
// The gRPC status decides; when the service relays an upstream failure, the upstream's own HTTP
// status, message, type, code and param (ErrorInfo metadata) decide, exactly as openai-node
// would have read them from the upstream's HTTP response. A failure before the reply becomes
// an HTTP error response or a thrown fetch error, and openai-node applies its own retry rules
// and error classes to it; a failure in the middle of a stream becomes the error instance
// openai-node would have built for it.
import { APIConnectionError, APIConnectionTimeoutError, APIError } from "openai";
import { Code } from "@connectrpc/connect";

import { type CallStatus, upstreamStatus } from "./rich_status.js";

/** How a failed call looks to openai-node. */
export type Failure =
  | { readonly kind: "status"; readonly status: number; readonly body: ErrorBody; readonly headers: Headers }
  | { readonly kind: "timeout"; readonly message: string }
  | { readonly kind: "connection"; readonly message: string };

/** An OpenAI error body: `APIError.error`, `.code`, `.param` and `.type` read it. */
export interface ErrorBody {
  readonly error: {
    readonly message: string;
    readonly type: string | null;
    readonly code: string | null;
    readonly param: string | null;
  };
}

// What the service's own refusals (no upstream status attached) look like over HTTP.
const HTTP_STATUS: Partial<Record<Code, number>> = {
  [Code.InvalidArgument]: 400,
  [Code.OutOfRange]: 400,
  [Code.FailedPrecondition]: 400,
  [Code.Unauthenticated]: 401,
  [Code.PermissionDenied]: 403,
  [Code.NotFound]: 404,
  [Code.AlreadyExists]: 409,
  [Code.Aborted]: 409,
  [Code.ResourceExhausted]: 429,
  [Code.Unimplemented]: 501,
  [Code.Unavailable]: 503,
};
// Reasons meaning the call never got an HTTP answer from the upstream.
const NO_ANSWER = new Set(["UPSTREAM_UNREACHABLE", "UPSTREAM_STREAM_BROKEN"]);

export function describeFailure(status: CallStatus): Failure {
  if (status.code === Code.DeadlineExceeded) {
    // "timed out" is what openai-node looks for to raise APIConnectionTimeoutError.
    return { kind: "timeout", message: `memori-grpc call timed out (DEADLINE_EXCEEDED: ${status.message})` };
  }
  const unanswered =
    NO_ANSWER.has(status.reason) ||
    ((status.code === Code.Unavailable || status.code === Code.Canceled) && status.reason === "");
  if (unanswered) {
    // No ErrorInfo: the service itself was not reached, or the call was cut.
    return { kind: "connection", message: `memori-grpc ${status.codeName}: ${status.message}` };
  }
  const http = upstreamStatus(status) ?? httpStatus(status);
  const headers = new Headers({ "content-type": "application/json", "x-memori-grpc-status": status.codeName });
  if (status.retryAfterMs !== undefined) {
    headers.set("retry-after-ms", String(Math.round(status.retryAfterMs)));
  }
  return { kind: "status", status: http, body: errorBody(status), headers };
}

/** What the routed fetch does with a failure before the reply: an HTTP error response, or a
 * thrown error that openai-node treats as a connection failure or timeout (and retries). */
export function fetchFailure(failure: Failure, cause: unknown): Response {
  if (failure.kind !== "status") {
    throw new Error(failure.message, { cause });
  }
  return new Response(JSON.stringify(failure.body), { status: failure.status, headers: failure.headers });
}

/** The error a stream raises when the call fails after the first chunk (never retried). */
export function streamError(failure: Failure, cause: unknown): Error {
  if (failure.kind === "timeout") {
    return new APIConnectionTimeoutError();
  }
  if (failure.kind === "connection") {
    return new APIConnectionError({ cause: new Error(failure.message, { cause }) });
  }
  return APIError.generate(failure.status, failure.body, undefined, failure.headers);
}

function httpStatus(status: CallStatus): number {
  if (status.code === Code.ResourceExhausted && status.reason === "") {
    return 413; // gRPC's own refusal of an oversize message: not a rate limit
  }
  return HTTP_STATUS[status.code] ?? 500;
}

function errorBody(status: CallStatus): ErrorBody {
  const meta = status.metadata;
  return {
    error: {
      message: meta["upstream_message"] || status.message,
      type: meta["upstream_type"] || null,
      code: meta["upstream_code"] || status.reason || null,
      param: meta["upstream_param"] || status.violations[0]?.[0] || null,
    },
  };
}
