// chat.completions.create through @memori-grpc/client: openai-node's own objects, every
// argument delivered, and the session's history added by the service.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { AttributionRequired, Memori } from "@memori-grpc/client";
import OpenAI, { BadRequestError } from "openai";
import { APIPromise } from "openai/core/api-promise";

import { MODEL, marker, openaiClient, receivedOnce, recordingTransport, script, texts, user } from "./support.ts";

function registered(memori = new Memori().attribution(user(), "ts-chat")): { client: OpenAI; memori: Memori } {
  const client = openaiClient();
  memori.llm.register(client);
  return { client, memori };
}

describe("create through a registered client", () => {
  test("returns openai-node's APIPromise of the upstream's ChatCompletion", async () => {
    const { client, memori } = registered();
    const text = marker();
    const promise = client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: text }] });
    assert.ok(promise instanceof APIPromise, "create must return openai-node's APIPromise");
    const { data, response } = await promise.withResponse();
    assert.equal(data.object, "chat.completion");
    assert.match(data.id, /^chatcmpl-standin-/);
    assert.equal(data.system_fingerprint, "fp_standin"); // a field beyond the typed ones
    assert.equal(data.choices[0]?.message.content, `echo: ${text}`);
    assert.equal(data.choices[0]?.finish_reason, "stop");
    assert.ok(data.usage && data.usage.total_tokens > 0);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("x-memori-session-id"), memori.session.id);
    assert.equal((await receivedOnce(text)).body.model, MODEL);
  });

  test("the upstream gets the session's earlier turns before the new message", async () => {
    const { client } = registered();
    const first = marker("first");
    const second = marker("second");
    await client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: first }] });
    await client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: second }] });
    assert.deepEqual(texts(await receivedOnce(second)), [first, `echo: ${first}`, second]);
  });

  test("tools, tool choice, tool calls and content parts travel intact", async () => {
    const { client, memori } = registered();
    const text = marker();
    const tools: OpenAI.ChatCompletionTool[] = [
      {
        type: "function",
        function: {
          name: "get_weather",
          description: "Weather in a city",
          parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
          strict: true,
        },
      },
    ];
    const parts: OpenAI.ChatCompletionContentPart[] = [
      { type: "text", text },
      { type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0KGgo=", detail: "low" } },
    ];
    const call = { id: "call_weather_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } };
    await script({ reply: { tool_calls: [call] } });
    const asked = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: parts }],
      tools,
      tool_choice: { type: "function", function: { name: "get_weather" } },
      parallel_tool_calls: false,
    });
    const sent = await receivedOnce(text);
    assert.deepEqual(sent.body["tools"], tools);
    assert.deepEqual(sent.body["tool_choice"], { type: "function", function: { name: "get_weather" } });
    assert.equal(sent.body["parallel_tool_calls"], false);
    assert.deepEqual(sent.body.messages, [{ role: "user", content: parts }]);
    assert.equal(asked.choices[0]?.finish_reason, "tool_calls");
    assert.deepEqual(asked.choices[0]?.message.tool_calls, [call]);

    const result = marker("result");
    await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "tool", tool_call_id: call.id, content: result }],
      tools,
    });
    const followUp = await receivedOnce(result);
    assert.deepEqual(followUp.body.messages, [
      { role: "user", content: parts },
      { role: "assistant", tool_calls: [call] },
      { role: "tool", tool_call_id: call.id, content: result },
    ]);
    const history = await memori.session.history();
    assert.deepEqual(history, [
      { role: "user", content: parts },
      { role: "assistant", tool_calls: [call] },
      { role: "tool", content: result, tool_call_id: call.id },
      { role: "assistant", content: `echo: ${text}` },
    ]);
  });

  test("every other parameter reaches the upstream unchanged", async () => {
    const { client } = registered();
    const text = marker();
    const sampling = {
      temperature: 0.25,
      top_p: 0.5,
      max_completion_tokens: 64,
      seed: 7,
      stop: ["\n\n", "END"],
      user: "end-user-7",
      logprobs: true,
      top_logprobs: 2,
      frequency_penalty: 0.5,
      metadata: { purpose: "test" },
      response_format: { type: "json_object" as const },
      reasoning_effort: "low" as const,
      logit_bias: { "50256": -100 },
    };
    await client.chat.completions.create({ model: MODEL, messages: [{ role: "system", content: "Be brief." }, { role: "user", content: text }], ...sampling });
    const sent = await receivedOnce(text);
    for (const [name, value] of Object.entries(sampling)) {
      assert.deepEqual(sent.body[name], value, name);
    }
    assert.equal(sent.body["stream"], undefined);
  });

  test("parse() returns the parsed JSON of a json_schema response", async () => {
    const { client } = registered();
    const text = marker();
    await script({ reply: { content: '{"city":"Lisbon","days":3}' } });
    const completion = await client.chat.completions.parse({
      model: MODEL,
      messages: [{ role: "user", content: text }],
      response_format: {
        type: "json_schema",
        json_schema: {
          name: "trip",
          strict: true,
          schema: {
            type: "object",
            properties: { city: { type: "string" }, days: { type: "integer" } },
            required: ["city", "days"],
            additionalProperties: false,
          },
        },
      },
    });
    assert.deepEqual(completion.choices[0]?.message.parsed, { city: "Lisbon", days: 3 });
    assert.equal((await receivedOnce(text)).body["response_format"] instanceof Object, true);
  });

  test("runTools() calls the function and sends its result back through the session", async () => {
    const { client, memori } = registered();
    const text = marker();
    await script({ reply: { tool_calls: [{ id: "call_add", function: { name: "add", arguments: '{"a":2,"b":3}' } }] } });
    const runner = client.chat.completions.runTools({
      model: MODEL,
      messages: [{ role: "user", content: text }],
      tools: [
        {
          type: "function",
          function: {
            name: "add",
            description: "Adds two numbers",
            parameters: { type: "object", properties: { a: { type: "number" }, b: { type: "number" } } },
            function: (args: { a: number; b: number }) => String(args.a + args.b),
            parse: JSON.parse,
          },
        },
      ],
    });
    assert.equal(await runner.finalContent(), `echo: ${text}`);
    const stored = await memori.session.history();
    assert.deepEqual(
      stored.map((message) => message.role),
      ["user", "assistant", "tool", "assistant"],
      "the runner's whole-conversation request is not stored twice",
    );
    assert.equal(stored[2]?.content, "5");
  });

  test("requests other than chat completions go to the client's own base URL", async () => {
    const { client } = registered();
    const models = await client.models.list();
    assert.ok(models.data.some((model) => model.id === "standin-echo"));
  });

  test("copies made with withOptions are routed and capture the session too", async () => {
    const { client, memori } = registered();
    const first = marker("first");
    await client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: first }] });
    const copy = client.withOptions({ timeout: 20_000 });
    const second = marker("second");
    await copy.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: second }] });
    assert.deepEqual(texts(await receivedOnce(second)), [first, `echo: ${first}`, second]);
    assert.equal((await memori.session.history()).length, 4);
  });

  test("unregister and close give the plain openai client back", async () => {
    const { client, memori } = registered();
    const first = marker("first");
    await client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: first }] });
    memori.llm.unregister(client);
    const direct = marker("direct");
    await client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: direct }] });
    assert.deepEqual(texts(await receivedOnce(direct)), [direct], "sent straight to the client's base URL");

    memori.llm.register(client);
    memori.close();
    const afterClose = marker("closed");
    await client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: afterClose }] });
    assert.deepEqual(texts(await receivedOnce(afterClose)), [afterClose]);
  });

  test("a client registered again moves to the last Memori", async () => {
    const { client } = registered();
    const other = new Memori().attribution(user(), "ts-chat-other").llm.register(client);
    const text = marker();
    await client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: text }] });
    assert.equal((await other.session.history()).length, 2);
  });

  test("without an attribution, create throws AttributionRequired before any call", () => {
    const { transport, calls } = recordingTransport();
    const client = openaiClient();
    new Memori({ transport }).llm.register(client);
    assert.throws(
      () => client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "hi" }] }),
      AttributionRequired,
    );
    assert.equal(calls.length, 0);
  });

  test("a message field memori.v1 cannot carry is a BadRequestError, and nothing is called", async () => {
    const { transport, calls } = recordingTransport();
    const { client } = registered(new Memori({ transport }).attribution(user(), "ts-chat"));
    const message = { role: "user", content: "hi", mood: "curious" } as OpenAI.ChatCompletionMessageParam;
    await assert.rejects(client.chat.completions.create({ model: MODEL, messages: [message] }), (error: unknown) => {
      assert.ok(error instanceof BadRequestError);
      assert.equal(error.status, 400);
      assert.equal(error.param, "messages[0].mood");
      return true;
    });
    assert.equal(calls.length, 0);
  });
});
