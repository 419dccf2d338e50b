// A StreamComplete call as the `text/event-stream` body an OpenAI-compatible server sends, so
// openai-node parses it into its own Stream<ChatCompletionChunk>.
import type { StreamCompleteResponse } from "./gen/memori/v1/chat_pb.js";
import { describeFailure, streamError } from "./openai_errors.js";
import { readStatus } from "./rich_status.js";

const encoder = new TextEncoder();
const DONE = encoder.encode("data: [DONE]\n\n");

/** The body: `first` (already read), then each later chunk as it arrives, then [DONE].
 * Cancelling the body (openai-node does on `break` or abort) cancels the call. */
export function eventStream(
  first: string | undefined,
  items: AsyncIterator<StreamCompleteResponse>,
  call: AbortController,
): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    start(controller) {
      if (first !== undefined) {
        controller.enqueue(event(first));
      }
    },
    async pull(controller) {
      try {
        for (;;) {
          const next = await items.next();
          if (next.done) {
            controller.enqueue(DONE);
            controller.close();
            return;
          }
          if (next.value.chunkJson) {
            controller.enqueue(event(next.value.chunkJson));
            return;
          }
        }
      } catch (error) {
        // A cancelled call ends as the abort openai-node expects; any other failure as the
        // openai error it would have raised (the stream is not retried at this point).
        controller.error(call.signal.aborted ? call.signal.reason : streamError(describeFailure(readStatus(error)), error));
      }
    },
    cancel(reason) {
      call.abort(reason);
    },
  });
}

/** One SSE event; a JSON text that spans lines becomes several `data:` lines. */
function event(json: string): Uint8Array {
  const data = json.includes("\n") || json.includes("\r") ? json.split(/\r\n|\r|\n/).join("\ndata: ") : json;
  return encoder.encode(`data: ${data}\n\n`);
}
