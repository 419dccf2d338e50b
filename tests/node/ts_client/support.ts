// Shared by the @memori-grpc/client tests: the running server and stand-in upstream that
// tests/test_ts_client.py starts, and ways to see what crossed the wire.
//
// The stand-in records every chat request it receives and plays scripted behaviours (FIFO);
// the test files run one at a time (--test-concurrency=1), and each test finds its own requests
// by a marker of its own in the message text.
import { randomUUID } from "node:crypto";

import { Code, ConnectError, type Interceptor, type Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import OpenAI, { type ClientOptions } from "openai";

function required(name: string): string {
  const value = process.env[name];
  if (!value) {
    throw new Error(`set ${name} (tests/test_ts_client.py does)`);
  }
  return value;
}

/** HOST:PORT of the memori-server under test (what `new Memori()` reads too). */
export const TARGET = required("MEMORI_TARGET");
/** The stand-in upstream's control URL (its OpenAI base URL is this + "/v1"). */
export const STANDIN = required("MEMORI_STANDIN_URL");
export const MODEL = "gpt-4o-mini";

export interface RecordedRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: { messages: { role: string; content?: unknown; [key: string]: unknown }[]; [key: string]: unknown };
}

/** Something unique to put in a message, to find the test's own upstream requests by. */
export function marker(label = "m"): string {
  return `${label}-${randomUUID()}`;
}

/** An entity id no other test uses. */
export function user(): string {
  return `user-${randomUUID()}`;
}

/** Queue behaviours for the next chat requests the stand-in receives (see standin_upstream). */
export async function script(...behaviours: object[]): Promise<void> {
  const reply = await fetch(`${STANDIN}/_standin/script`, { method: "POST", body: JSON.stringify(behaviours) });
  if (!reply.ok) {
    throw new Error(`scripting the stand-in failed: ${reply.status} ${await reply.text()}`);
  }
}

/** Drop the stand-in's records and any behaviour not used yet. */
export async function resetStandin(): Promise<void> {
  await fetch(`${STANDIN}/_standin/reset`, { method: "POST" });
}

/** The chat requests the upstream received whose body mentions `text`, oldest first. */
export async function received(text: string): Promise<RecordedRequest[]> {
  const records = (await (await fetch(`${STANDIN}/_standin/requests`)).json()) as RecordedRequest[];
  return records.filter((record) => JSON.stringify(record.body).includes(text));
}

/** The one upstream request that mentions `text`. */
export async function receivedOnce(text: string): Promise<RecordedRequest> {
  const found = await received(text);
  if (found.length !== 1) {
    throw new Error(`expected 1 upstream request mentioning ${text}, got ${found.length}`);
  }
  return found[0]!;
}

/** The text of each message of an upstream request. */
export function texts(request: RecordedRequest): string[] {
  return request.body.messages.map((message) => (typeof message.content === "string" ? message.content : JSON.stringify(message.content)));
}

/** A plain openai-node client whose own base URL is the stand-in (so a request that bypasses
 * the service shows up there without history). */
export function openaiClient(options: ClientOptions = {}): OpenAI {
  return new OpenAI({ apiKey: "test-key-not-used-for-chat", baseURL: `${STANDIN}/v1`, ...options });
}

export interface RecordedCall {
  method: string;
  /** The request message (for server streaming: the one request message). */
  message: Record<string, unknown>;
  header: Headers;
  /** "pending" until the call ends; then "ok" or the gRPC code it failed with. */
  outcome: "pending" | "ok" | Code;
}

/** A transport to the server under test that records every call made through it. */
export function recordingTransport(): { transport: Transport; calls: RecordedCall[] } {
  const calls: RecordedCall[] = [];
  const record: Interceptor = (next) => async (request) => {
    const call: RecordedCall = { method: request.method.name, message: {}, header: request.header, outcome: "pending" };
    calls.push(call);
    const fail = (error: unknown) => {
      call.outcome = ConnectError.from(error).code;
      throw error;
    };
    if (!request.stream) {
      call.message = request.message as Record<string, unknown>;
      try {
        const response = await next(request);
        call.outcome = "ok";
        return response;
      } catch (error) {
        return fail(error);
      }
    }
    const messages: unknown[] = [];
    for await (const message of request.message) {
      messages.push(message);
    }
    call.message = messages[0] as Record<string, unknown>;
    const replay = (async function* () {
      yield* messages;
    })();
    let response;
    try {
      response = await next({ ...request, message: replay as typeof request.message });
    } catch (error) {
      return fail(error);
    }
    if (!response.stream) {
      return response;
    }
    const upstream = response.message;
    const observed = (async function* () {
      try {
        yield* upstream;
        call.outcome = "ok";
      } catch (error) {
        fail(error);
      }
    })();
    return { ...response, message: observed };
  };
  const transport = createGrpcTransport({ baseUrl: `http://${TARGET}`, interceptors: [record] });
  return { transport, calls };
}

/** Waits until `check` passes (for effects that land after a call returns), at most `ms`. */
export async function eventually(check: () => Promise<void> | void, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      await check();
      return;
    } catch (error) {
      if (Date.now() > deadline) {
        throw error;
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

export { Code };
