// memori.v1.SessionService from Node.js: the generated TypeScript stubs (protoc-gen-es v2)
// through Connect's gRPC transport over HTTP/2, against a running memori-server.
//
// Run by tests/test_node_client.py, which starts the server and sets MEMORI_TARGET:
//   MEMORI_TARGET=127.0.0.1:50051 node --import tsx --test tests/node/session.test.ts
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";

import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";

import { AttributionSchema, type Attribution } from "../../gen/ts/memori/v1/common_pb.ts";
import { SessionService, type Session } from "../../gen/ts/memori/v1/session_pb.ts";

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

function target(): string {
  const value = process.env.MEMORI_TARGET;
  if (!value) {
    throw new Error("set MEMORI_TARGET=HOST:PORT of a running memori-server");
  }
  return value;
}

/** The ConnectError a call rejected with; fails the test if the call succeeded. */
async function rejection(call: Promise<unknown>): Promise<ConnectError> {
  try {
    await call;
  } catch (error) {
    return ConnectError.from(error);
  }
  assert.fail("the call succeeded but an error was expected");
}

function assertSameSession(actual: Session | undefined, expected: Session): void {
  assert.ok(actual, "response has no session");
  assert.equal(actual.id, expected.id);
  assert.equal(actual.attribution?.entityId, expected.attribution?.entityId);
  assert.equal(actual.attribution?.processId, expected.attribution?.processId);
  assert.equal(actual.messageCount, expected.messageCount);
  assert.deepEqual(actual.createTime, expected.createTime);
}

describe("memori.v1.SessionService over gRPC from Node.js", () => {
  const baseUrl = `http://${target()}`;
  const sessionManager = new Http2SessionManager(baseUrl);
  let client: Client<typeof SessionService>;

  before(() => {
    const transport = createGrpcTransport({ baseUrl, sessionManager, defaultTimeoutMs: 10_000 });
    client = createClient(SessionService, transport);
  });

  after(() => {
    sessionManager.abort(); // close the HTTP/2 connection so the test process can exit
  });

  function freshAttribution(): Attribution {
    return create(AttributionSchema, {
      entityId: `node-user-${randomUUID()}`,
      processId: "node-test",
    });
  }

  test("Reset, Get by id and by attribution, Delete, then Get is NOT_FOUND", async () => {
    const attribution = freshAttribution();

    const { session } = await client.reset({ attribution });
    assert.ok(session, "Reset returned no session");
    assert.match(session.id, UUID_V4);
    assert.equal(session.attribution?.entityId, attribution.entityId);
    assert.equal(session.attribution?.processId, attribution.processId);
    assert.equal(session.messageCount, 0n);
    assert.ok(session.createTime && session.updateTime, "timestamps missing");

    assertSameSession((await client.get({ sessionId: session.id })).session, session);
    assertSameSession((await client.get({ attribution })).session, session);

    const deleted = await client.delete({ sessionId: session.id });
    assert.equal(deleted.deletedMessageCount, 0n);

    const byId = await rejection(client.get({ sessionId: session.id }));
    assert.equal(byId.code, Code.NotFound, `expected NotFound, got ${Code[byId.code]}: ${byId.message}`);
    const current = await rejection(client.get({ attribution }));
    assert.equal(current.code, Code.NotFound, `expected NotFound, got ${Code[current.code]}`);
  });

  test("a second Reset makes a new current session", async () => {
    const attribution = freshAttribution();
    const first = (await client.reset({ attribution })).session;
    const second = (await client.reset({ attribution })).session;
    assert.ok(first && second);
    assert.notEqual(first.id, second.id);
    assert.equal((await client.get({ attribution })).session?.id, second.id);
    assert.equal((await client.get({ sessionId: first.id })).session?.id, first.id);
  });

  test("a malformed session id is INVALID_ARGUMENT naming the field", async () => {
    const error = await rejection(client.get({ sessionId: "not-a-uuid" }));
    assert.equal(
      error.code,
      Code.InvalidArgument,
      `expected InvalidArgument, got ${Code[error.code]}: ${error.message}`,
    );
    assert.match(error.rawMessage, /session_id/);
  });

  test("an unknown well-formed session id is NOT_FOUND", async () => {
    const error = await rejection(client.get({ sessionId: randomUUID() }));
    assert.equal(error.code, Code.NotFound, `expected NotFound, got ${Code[error.code]}`);
  });
});
