// memori.v1.ChatService from Node.js: unary and streamed completions through the generated
// TypeScript stubs, against a memori-server whose upstream is the stand-in test double.
//
// Run by tests/test_node_client.py, which starts both and sets MEMORI_TARGET.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";

import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";

import { ChatService, ChatCompletionRequestSchema } from "../../gen/ts/memori/v1/chat_pb.ts";
import { AttributionSchema, Role } from "../../gen/ts/memori/v1/common_pb.ts";

function target(): string {
  const value = process.env.MEMORI_TARGET;
  if (!value) {
    throw new Error("set MEMORI_TARGET=HOST:PORT of a running memori-server");
  }
  return value;
}

function ask(text: string) {
  return create(ChatCompletionRequestSchema, {
    model: "gpt-4o-mini",
    messages: [{ role: Role.USER, content: text }],
  });
}

describe("memori.v1.ChatService over gRPC from Node.js", () => {
  const baseUrl = `http://${target()}`;
  const sessionManager = new Http2SessionManager(baseUrl);
  let client: Client<typeof ChatService>;

  before(() => {
    const transport = createGrpcTransport({ baseUrl, sessionManager, defaultTimeoutMs: 10_000 });
    client = createClient(ChatService, transport);
  });

  after(() => {
    sessionManager.abort();
  });

  test("Complete remembers the session, StreamComplete relays chunks", async () => {
    const attribution = create(AttributionSchema, {
      entityId: `node-user-${randomUUID()}`,
      processId: "node-chat",
    });
    const first = await client.complete({ attribution, request: ask("My name is Ada") });
    assert.equal(first.completion?.choices[0]?.message?.content, "echo: My name is Ada");
    assert.equal(JSON.parse(first.completionJson).object, "chat.completion");

    const second = await client.complete({ attribution, request: ask("What is my name?") });
    assert.equal(second.session?.id, first.session?.id);
    assert.equal(second.session?.messageCount, 4n);

    let sessionId = "";
    let text = "";
    for await (const item of client.streamComplete({ attribution, request: ask("stream") })) {
      if (item.session) {
        sessionId = item.session.id;
      }
      for (const choice of item.chunk?.choices ?? []) {
        text += choice.delta?.content ?? "";
      }
    }
    assert.equal(sessionId, first.session?.id);
    assert.equal(text, "echo: stream");
  });

  test("an invalid request is INVALID_ARGUMENT naming the field", async () => {
    try {
      await client.complete({ request: ask("no attribution") });
      assert.fail("the call succeeded but an error was expected");
    } catch (error) {
      const failed = ConnectError.from(error);
      assert.equal(failed.code, Code.InvalidArgument);
      assert.match(failed.rawMessage, /attribution/);
    }
  });
});
