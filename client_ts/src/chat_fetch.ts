// The routed fetch's answer to `POST /chat/completions`: a ChatService call, given back as
// the HTTP response an OpenAI-compatible server would have sent (JSON, or SSE for streams).
//
// Everything openai-node does around fetch (retries, timeouts, abort, parsing, Stream, error
// classes, helpers) therefore works unchanged.
import type { CallScope } from "./call_scope.js";
import type { StreamCompleteResponse } from "./gen/memori/v1/chat_pb.js";
import { describeFailure, fetchFailure } from "./openai_errors.js";
import { type ChatCall, chatCall, RequestError } from "./request_pb.js";
import { readStatus } from "./rich_status.js";
import { eventStream } from "./sse.js";

export async function answerChat(scope: CallScope, bodyText: string, signal: AbortSignal | undefined): Promise<Response> {
  let call: ChatCall;
  try {
    call = chatCall(bodyText);
  } catch (error) {
    if (error instanceof RequestError) {
      return refusal(error.message, error.param);
    }
    throw error;
  }
  return call.stream ? streamed(scope, call, signal) : unary(scope, call, signal);
}

async function unary(scope: CallScope, call: ChatCall, signal: AbortSignal | undefined): Promise<Response> {
  const { connection, identity, requestId, timeoutMs } = scope;
  try {
    const reply = await connection.chat.complete(
      { sessionId: identity.sessionId, attribution: identity.attribution, requestId, request: call.request },
      connection.callOptions(timeoutMs, signal),
    );
    return new Response(reply.completionJson, {
      status: 200,
      headers: headers("application/json", reply.session?.id, reply.replayed),
    });
  } catch (error) {
    return failed(error, signal);
  }
}

async function streamed(scope: CallScope, call: ChatCall, signal: AbortSignal | undefined): Promise<Response> {
  const { connection, identity, requestId, timeoutMs } = scope;
  const cancel = new AbortController(); // the caller's abort, or the body being cancelled
  if (signal?.aborted) {
    cancel.abort(signal.reason);
  }
  signal?.addEventListener("abort", () => cancel.abort(signal.reason), { once: true });
  const items = connection.chat
    .streamComplete(
      { sessionId: identity.sessionId, attribution: identity.attribution, requestId, request: call.request },
      connection.callOptions(timeoutMs, cancel.signal),
    )
    [Symbol.asyncIterator]();
  // Read to the first chunk before answering, so that a call the upstream refuses fails with an
  // HTTP error status (and is retried by openai-node) as it would over HTTP.
  let session: StreamCompleteResponse | undefined;
  let first: string | undefined;
  try {
    for (let next = await items.next(); !next.done; next = await items.next()) {
      session ??= next.value;
      if (next.value.chunkJson) {
        first = next.value.chunkJson;
        break;
      }
    }
  } catch (error) {
    cancel.abort();
    return failed(error, signal);
  }
  return new Response(eventStream(first, items, cancel), {
    status: 200,
    headers: headers("text/event-stream", session?.session?.id, session?.replayed ?? false),
  });
}

function failed(error: unknown, signal: AbortSignal | undefined): Response {
  if (signal?.aborted) {
    // The app's abort or openai-node's own timeout: openai-node tells them apart itself.
    throw signal.reason;
  }
  return fetchFailure(describeFailure(readStatus(error)), error);
}

/** What the service answers for an invalid request (INVALID_ARGUMENT), for what cannot even be
 * sent: a 400 that openai-node raises as BadRequestError and does not retry. */
export function refusal(message: string, param: string | null): Response {
  const body = { error: { message, type: "invalid_request_error", code: null, param } };
  return new Response(JSON.stringify(body), { status: 400, headers: { "content-type": "application/json" } });
}

/** Response headers as a plain record: cheaper for undici than building a Headers object. */
function headers(contentType: string, sessionId: string | undefined, replayed: boolean): Record<string, string> {
  const result: Record<string, string> = { "content-type": contentType };
  if (sessionId) {
    result["x-memori-session-id"] = sessionId;
  }
  if (replayed) {
    result["x-memori-replayed"] = "true";
  }
  return result;
}
