// stream: true through @memori-grpc/client: openai-node's own Stream, with for await, tee,
// toReadableStream, abort and the stream() helper, over StreamComplete.
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, test } from "node:test";

import { Memori } from "@memori-grpc/client";
import OpenAI, { APIConnectionError, BadRequestError } from "openai";
import { Stream } from "openai/core/streaming";

import { MODEL, marker, openaiClient, receivedOnce, script, texts, user } from "./support.ts";

function registered(): { client: OpenAI; memori: Memori } {
  const client = openaiClient({ maxRetries: 0 });
  const memori = new Memori().attribution(user(), "ts-streams").llm.register(client);
  return { client, memori };
}

async function textOf(stream: AsyncIterable<OpenAI.ChatCompletionChunk>): Promise<string> {
  let text = "";
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta.content ?? "";
  }
  return text;
}

describe("streams through a registered client", () => {
  test("create gives openai-node's Stream of the upstream's chunks, and the turn is stored", async () => {
    const { client, memori } = registered();
    const text = marker();
    const stream = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: `tell me ${text}` }],
      stream: true,
      stream_options: { include_usage: true },
    });
    assert.ok(stream instanceof Stream, "a real openai-node Stream");
    const chunks: OpenAI.ChatCompletionChunk[] = [];
    for await (const chunk of stream) {
      chunks.push(chunk);
    }
    assert.ok(chunks.every((chunk) => chunk.object === "chat.completion.chunk" && chunk.id === chunks[0]?.id));
    assert.equal(chunks.map((chunk) => chunk.choices[0]?.delta.content ?? "").join(""), `echo: tell me ${text}`);
    assert.equal(chunks.at(-2)?.choices[0]?.finish_reason, "stop");
    assert.ok(chunks.at(-1)?.usage, "include_usage reached the upstream: the last chunk has usage");
    assert.deepEqual((await receivedOnce(text)).body["stream_options"], { include_usage: true });
    const history = await memori.session.history();
    assert.deepEqual(history.at(-1), { role: "assistant", content: `echo: tell me ${text}` });
  });

  test("tee() splits a stream, and toReadableStream() round-trips it", async () => {
    const { client } = registered();
    const text = marker();
    const stream = await client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: text }], stream: true });
    const [left, right] = stream.tee();
    assert.deepEqual(await Promise.all([textOf(left), textOf(right)]), [`echo: ${text}`, `echo: ${text}`]);

    const again = marker();
    const readable = (
      await client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: again }], stream: true })
    ).toReadableStream();
    const rebuilt = Stream.fromReadableStream<OpenAI.ChatCompletionChunk>(readable, new AbortController());
    assert.equal(await textOf(rebuilt), `echo: ${again}`);
  });

  test("aborting a stream cancels the call: it ends quietly and nothing is stored", async () => {
    const { client, memori } = registered();
    const text = marker();
    await script({ reply: { content: "one two three four five six seven eight" }, chunk_delay: 0.05 });
    const stream = await client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: text }], stream: true });
    let seen = 0;
    for await (const _chunk of stream) {
      seen += 1;
      if (seen === 2) {
        stream.controller.abort();
      }
    }
    assert.equal(seen, 2, "no chunk after the abort, and no error");
    await sleep(1000); // longer than the rest of the scripted stream would have taken
    assert.deepEqual(await memori.session.history(), [], "a cancelled call stores nothing");
  });

  test("a break out of the loop cancels the call too", async () => {
    const { client, memori } = registered();
    await script({ reply: { content: "one two three four five six seven eight" }, chunk_delay: 0.05 });
    const stream = await client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: marker() }], stream: true });
    for await (const _chunk of stream) {
      break;
    }
    await sleep(1000);
    assert.deepEqual(await memori.session.history(), []);
  });

  test("the stream() helper: content events and the final completion", async () => {
    const { client, memori } = registered();
    const text = marker();
    const deltas: string[] = [];
    const runner = client.chat.completions
      .stream({ model: MODEL, messages: [{ role: "user", content: text }] })
      .on("content", (delta) => deltas.push(delta));
    const final = await runner.finalChatCompletion();
    assert.equal(final.choices[0]?.message.content, `echo: ${text}`);
    assert.equal(deltas.join(""), `echo: ${text}`);
    assert.equal((await memori.session.history()).length, 2);
  });

  test("a stream the upstream breaks off fails while iterating with APIConnectionError", async () => {
    const { client, memori } = registered();
    await script({ reply: { content: "one two three four" }, cut_after_chunks: 2 });
    const stream = await client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: marker() }], stream: true });
    await assert.rejects(textOf(stream), APIConnectionError);
    assert.deepEqual(await memori.session.history(), [], "nothing of a broken stream is stored");
  });

  test("a stream the upstream refuses fails in create, with the upstream's error", async () => {
    const { client } = registered();
    const second = marker();
    await script({ fail: { status: 400, message: "bad stream request", param: "stream_options" } });
    await assert.rejects(
      client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: second }], stream: true }),
      (error: unknown) => {
        assert.ok(error instanceof BadRequestError);
        assert.equal(error.message, "400 bad stream request");
        assert.equal(error.param, "stream_options");
        return true;
      },
    );
    assert.deepEqual(texts(await receivedOnce(second)), [second]);
  });
});
