// What one `create(...)` call captured when it was made, handed to the routed fetch.
//
// openai-node calls `fetch` later, asynchronously, and again for each retry; the scope rides
// along in the call's `fetchOptions` (which openai-node copies into every fetch's init), so
// each call keeps the attribution and session it was made with, and every attempt of one call
// carries the same request id.
import type { Connection } from "./connection.js";
import type { CallIdentity } from "./identity.js";

export const CALL_SCOPE = Symbol("memori-grpc call scope");

export interface CallScope {
  readonly connection: Connection;
  readonly identity: CallIdentity;
  /** Shared by every attempt, so a retry is answered from the first success. Empty when the
   * client does not retry: the service's idempotency record costs it a write per call. */
  readonly requestId: string;
  /** The gRPC deadline of each attempt; undefined waits as long as it takes. */
  readonly timeoutMs: number | undefined;
}

/** The scope a fetch's init carries, if the call went through a registered `create`. */
export function scopeOf(init: RequestInit | undefined): CallScope | undefined {
  return (init as { [CALL_SCOPE]?: CallScope } | undefined)?.[CALL_SCOPE];
}
