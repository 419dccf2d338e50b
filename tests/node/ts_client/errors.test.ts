// Failures through @memori-grpc/client: openai-node's own error classes with the upstream's
// status and body, and the create options honoured: signal, timeout, maxRetries.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { Memori } from "@memori-grpc/client";
import OpenAI, {
  APIConnectionError,
  APIConnectionTimeoutError,
  APIUserAbortError,
  AuthenticationError,
  BadRequestError,
  InternalServerError,
  NotFoundError,
  RateLimitError,
  UnprocessableEntityError,
} from "openai";

import { Code, MODEL, marker, openaiClient, received, recordingTransport, script, user, eventually } from "./support.ts";

function registered(options: { maxRetries?: number; memori?: Memori } = {}): { client: OpenAI; memori: Memori } {
  const client = openaiClient({ maxRetries: options.maxRetries ?? 0 });
  const memori = (options.memori ?? new Memori()).attribution(user(), "ts-errors").llm.register(client);
  return { client, memori };
}

function ask(client: OpenAI, text = marker(), options?: OpenAI.RequestOptions) {
  return client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: text }] }, options);
}

describe("errors and options through a registered client", () => {
  const upstreamFailures = [
    { status: 400, type: BadRequestError },
    { status: 401, type: AuthenticationError },
    { status: 404, type: NotFoundError },
    { status: 422, type: UnprocessableEntityError },
    { status: 500, type: InternalServerError },
  ];
  for (const { status, type } of upstreamFailures) {
    test(`an upstream ${status} is openai-node's ${type.name} with the upstream's body`, async () => {
      const { client, memori } = registered();
      await script({ fail: { status, message: `scripted ${status}`, type: "test_error", code: `code_${status}`, param: "messages" } });
      await assert.rejects(ask(client), (error: unknown) => {
        assert.ok(error instanceof type, `${String(error)} is not a ${type.name}`);
        assert.equal(error.status, status);
        assert.equal(error.message, `${status} scripted ${status}`);
        assert.equal(error.type, "test_error");
        assert.equal(error.code, `code_${status}`);
        assert.equal(error.param, "messages");
        assert.deepEqual(error.error, { message: `scripted ${status}`, type: "test_error", code: `code_${status}`, param: "messages" });
        return true;
      });
      assert.deepEqual(await memori.session.history(), [], "a failed call stores nothing");
    });
  }

  test("an upstream 429 is a RateLimitError carrying the upstream's retry delay", async () => {
    const { client } = registered();
    await script({ fail: { status: 429, message: "slow down", retry_after_ms: 1500 } });
    await assert.rejects(ask(client), (error: unknown) => {
      assert.ok(error instanceof RateLimitError);
      assert.equal(error.headers.get("retry-after-ms"), "1500");
      assert.equal(error.headers.get("x-memori-grpc-status"), "RESOURCE_EXHAUSTED");
      return true;
    });
  });

  test("the service's own refusal is a BadRequestError naming the field", async () => {
    const { client } = registered();
    await assert.rejects(client.chat.completions.create({ model: "", messages: [{ role: "user", content: "hi" }] }), (error: unknown) => {
      assert.ok(error instanceof BadRequestError);
      assert.equal(error.param, "request.model");
      return true;
    });
  });

  test("maxRetries retries a failed call, every attempt with the same request id", async () => {
    const { transport, calls } = recordingTransport();
    const { client, memori } = registered({ maxRetries: 2, memori: new Memori({ transport }) });
    const text = marker();
    await script({ fail: { status: 503, retry_after_ms: 10 } }, { fail: { status: 500, retry_after_ms: 10 } });
    const reply = await ask(client, text);
    assert.equal(reply.choices[0]?.message.content, `echo: ${text}`);
    assert.equal((await received(text)).length, 3, "the upstream saw every attempt");
    assert.deepEqual(calls.map((call) => call.outcome), [Code.Unavailable, Code.Unavailable, "ok"]);
    const ids = new Set(calls.map((call) => call.message["requestId"]));
    assert.equal(ids.size, 1, "one request id for all attempts");
    assert.match(String([...ids][0]), /^[0-9a-f-]{36}$/);
    assert.equal((await memori.session.history()).length, 2, "the turn is stored once");
  });

  test("an attempt that timed out is retried with the same request id; the turn is stored once", async () => {
    const { transport, calls } = recordingTransport();
    const { client, memori } = registered({ maxRetries: 1, memori: new Memori({ transport }) });
    const text = marker();
    await script({ delay: 1.5 }); // the first attempt outlives its 1 s deadline, the retry does not
    const reply = await ask(client, text, { timeout: 1000 });
    assert.equal(reply.choices[0]?.message.content, `echo: ${text}`);
    assert.deepEqual(calls.map((call) => call.outcome), [Code.DeadlineExceeded, "ok"]);
    assert.equal(calls[0]?.message["requestId"], calls[1]?.message["requestId"]);
    assert.equal((await memori.session.history()).length, 2);
  });

  test("without retries no request id is sent (it would cost the service a write)", async () => {
    const { transport, calls } = recordingTransport();
    const { client } = registered({ maxRetries: 0, memori: new Memori({ transport }) });
    await ask(client);
    await ask(client, marker(), { maxRetries: 3 });
    assert.deepEqual(calls.map((call) => call.message["requestId"] !== ""), [false, true]);
  });

  test("timeout becomes the call's deadline: APIConnectionTimeoutError", async () => {
    const { transport, calls } = recordingTransport();
    const { client, memori } = registered({ memori: new Memori({ transport }) });
    await script({ stall: true });
    const started = Date.now();
    await assert.rejects(ask(client, marker(), { timeout: 400 }), APIConnectionTimeoutError);
    assert.ok(Date.now() - started < 3000);
    assert.match(calls[0]?.header.get("grpc-timeout") ?? "", /^(400|399|398)m$/);
    assert.deepEqual(await memori.session.history(), []);
  });

  test("the Memori's timeoutMs is the deadline when the call sets none", async () => {
    const { transport, calls } = recordingTransport();
    const { client } = registered({ memori: new Memori({ transport, timeoutMs: 250 }) });
    await script({ stall: true });
    await assert.rejects(ask(client), APIConnectionTimeoutError);
    assert.equal(calls[0]?.outcome, Code.DeadlineExceeded);
    assert.match(calls[0]?.header.get("grpc-timeout") ?? "", /^2\d\dm$/);
  });

  test("signal cancels the call: APIUserAbortError, and nothing is stored", async () => {
    const { transport, calls } = recordingTransport();
    const { client, memori } = registered({ memori: new Memori({ transport }) });
    await script({ stall: true });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 200);
    await assert.rejects(ask(client, marker(), { signal: controller.signal }), APIUserAbortError);
    await eventually(() => assert.equal(calls[0]?.outcome, Code.Canceled));
    assert.deepEqual(await memori.session.history(), []);
  });

  test("an unreachable service is an APIConnectionError", async () => {
    const client = openaiClient({ maxRetries: 0 });
    new Memori({ target: "127.0.0.1:9" }).attribution(user(), "ts-errors").llm.register(client);
    await assert.rejects(ask(client), (error: unknown) => {
      assert.ok(error instanceof APIConnectionError && !(error instanceof APIConnectionTimeoutError));
      assert.match(String((error.cause as Error | undefined)?.message), /UNAVAILABLE/);
      return true;
    });
  });

  test("a wrong service API key is an AuthenticationError", async () => {
    const client = openaiClient({ maxRetries: 0 });
    new Memori({ apiKey: "not-a-key-of-this-server" }).attribution(user(), "ts-errors").llm.register(client);
    await assert.rejects(ask(client), (error: unknown) => {
      assert.ok(error instanceof AuthenticationError);
      assert.equal(error.headers.get("x-memori-grpc-status"), "UNAUTHENTICATED");
      return true;
    });
  });

  test("a session of another attribution is refused with a BadRequestError naming the reason", async () => {
    const { client: first, memori: owner } = registered();
    await ask(first);
    const { client } = registered();
    const memori = new Memori().attribution(user(), "ts-errors").setSession(owner.session.id).llm.register(client);
    await assert.rejects(ask(client), (error: unknown) => {
      assert.ok(error instanceof BadRequestError);
      assert.equal(error.code, "SESSION_ATTRIBUTION_MISMATCH");
      return true;
    });
    assert.equal(memori.session.id, owner.session.id);
  });
});
