// The Memori API of @memori-grpc/client: attribution, session ids, request scopes and the
// SessionService calls (resumeCurrent, recent, history, delete).
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  AttributionRequired,
  Memori,
  MemoriClosed,
  MemoriRequestScope,
  ServiceError,
  SessionAttributionMismatch,
  SessionManager,
} from "@memori-grpc/client";

import { MODEL, marker, openaiClient, receivedOnce, recordingTransport, texts, user } from "./support.ts";

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

async function say(memori: Memori | MemoriRequestScope, text = marker()): Promise<void> {
  const client = openaiClient({ maxRetries: 0 });
  memori.llm.register(client);
  await client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: text }] });
}

describe("Memori and its session", () => {
  test("session.id is a UUID v4 at once, and nothing is called before the first create", () => {
    const { transport, calls } = recordingTransport();
    const memori = new Memori({ transport });
    assert.match(memori.session.id, UUID_V4);
    memori.attribution(user(), "ts-sessions").llm.register(openaiClient());
    memori.resetSession().session.reset();
    assert.match(memori.session.id, UUID_V4);
    assert.equal(calls.length, 0);
  });

  test("the chaining API returns the Memori, and the session manager's the manager", () => {
    const memori = new Memori();
    const client = openaiClient();
    const id = crypto.randomUUID();
    assert.equal(memori.llm.register(client).attribution(user(), "agent"), memori);
    assert.equal(memori.resetSession(), memori);
    assert.equal(memori.setSession(id), memori);
    assert.equal(memori.session.id, id);
    assert.ok(memori.session instanceof SessionManager);
    assert.equal(memori.session.reset(), memori.session);
    assert.notEqual(memori.session.id, id);
    assert.equal(memori.session.set(id.toUpperCase()), memori.session);
    assert.equal(memori.session.id, id, "stored in canonical lower case");
    assert.equal(memori.llm.register(client, { stream: true }), memori, "the SDK's register option is accepted");
  });

  test("setting anything but a UUID v4 throws a TypeError at once", () => {
    const memori = new Memori();
    const before = memori.session.id;
    for (const bad of ["not-a-uuid", "", "6fa459ea-ee8a-11ca-b3d8-0800200c9a66", `${before}x`, 42, null, undefined]) {
      assert.throws(() => memori.setSession(bad as string), TypeError, String(bad));
      assert.throws(() => memori.session.set(bad as string), TypeError, String(bad));
      if (bad !== undefined) {
        assert.throws(() => memori.forRequest({ sessionId: bad as string }), TypeError, String(bad));
      }
    }
    assert.equal(memori.session.id, before);
  });

  test("attribution is checked like the service checks it, and switching it starts a new session", () => {
    const memori = new Memori();
    assert.throws(() => memori.attribution(42 as unknown as string), TypeError);
    assert.throws(() => memori.attribution("user", 7 as unknown as string), TypeError);
    assert.throws(() => memori.attribution(""), RangeError);
    assert.throws(() => memori.attribution("x".repeat(101)), RangeError);
    assert.throws(() => memori.attribution("tab\there"), RangeError);
    memori.attribution("é".repeat(100), "p".repeat(100));
    const id = memori.session.id;
    memori.attribution("é".repeat(100), "p".repeat(100));
    assert.equal(memori.session.id, id, "the same attribution keeps its session");
    memori.attribution("someone-else");
    assert.notEqual(memori.session.id, id, "another attribution never writes into the old session");
  });

  test("an id left out keeps its current value, as in the Memori TS SDK", async () => {
    const memori = new Memori();
    assert.throws(() => memori.attribution(), TypeError, "the entity is needed once");
    const who = user();
    memori.attribution(who, "agent-a");
    const id = memori.session.id;
    memori.attribution(who);
    assert.equal(memori.session.id, id, "the process is kept, and so is the session");
    memori.attribution(undefined, "agent-b");
    assert.notEqual(memori.session.id, id, "another process: another session");
    await say(memori);
    const [session] = await memori.session.recent();
    assert.equal(session?.entityId, who);
    assert.equal(session?.processId, "agent-b");
  });

  test("resumeCurrent() continues the attribution's current session from another process", async () => {
    const who = user();
    const first = new Memori().attribution(who, "ts-sessions");
    assert.equal(await first.session.resumeCurrent(), false, "no session yet");
    const text = marker();
    await say(first, text);
    const later = new Memori().attribution(who, "ts-sessions");
    assert.notEqual(later.session.id, first.session.id);
    assert.equal(await later.session.resumeCurrent(), true);
    assert.equal(later.session.id, first.session.id);
    const next = marker();
    await say(later, next);
    assert.deepEqual(texts(await receivedOnce(next)), [text, `echo: ${text}`, next]);
  });

  test("recent() lists the attribution's sessions, newest activity first", async () => {
    const memori = new Memori().attribution(user(), "ts-sessions");
    await say(memori);
    const older = memori.session.id;
    await say(memori.resetSession());
    const newer = memori.session.id;
    const sessions = await memori.session.recent({ withinMs: 60_000 });
    assert.deepEqual(sessions.map((session) => session.id), [newer, older]);
    const [latest] = sessions;
    assert.ok(latest);
    assert.equal(latest.messageCount, 2);
    assert.equal(latest.processId, "ts-sessions");
    assert.ok(latest.createTime instanceof Date && latest.updateTime >= latest.createTime);
    assert.ok(Math.abs(Date.now() - latest.updateTime.getTime()) < 60_000);
  });

  test("history() gives the stored turns back in OpenAI's shape; [] before the first call", async () => {
    const memori = new Memori().attribution(user(), "ts-sessions");
    assert.deepEqual(await memori.session.history(), []);
    const text = marker();
    await say(memori, text);
    assert.deepEqual(await memori.session.history(), [
      { role: "user", content: text },
      { role: "assistant", content: `echo: ${text}` },
    ]);
  });

  test("delete() removes the session and its messages and moves to a fresh session", async () => {
    const memori = new Memori().attribution(user(), "ts-sessions");
    await say(memori);
    const deleted = memori.session.id;
    assert.equal(await memori.session.delete(), 2);
    assert.notEqual(memori.session.id, deleted);
    assert.deepEqual(await memori.session.recent(), []);
    assert.equal(await memori.session.delete(), 0, "a session never used deletes nothing");
  });

  test("another attribution's session is refused with SessionAttributionMismatch", async () => {
    const owner = new Memori().attribution(user(), "ts-sessions");
    await say(owner);
    const other = new Memori().attribution(user(), "ts-sessions").setSession(owner.session.id);
    await assert.rejects(other.session.history(), (error: unknown) => {
      assert.ok(error instanceof SessionAttributionMismatch);
      assert.equal(error.sessionId, owner.session.id);
      assert.equal(error.reason, "SESSION_ATTRIBUTION_MISMATCH");
      return true;
    });
    await assert.rejects(other.session.delete(), SessionAttributionMismatch);
  });

  test("session calls need an attribution, and fail with MemoriClosed once closed", async () => {
    const memori = new Memori();
    await assert.rejects(memori.session.history(), AttributionRequired);
    memori.attribution(user());
    memori.close();
    await assert.rejects(memori.session.recent(), MemoriClosed);
  });

  test("the API key goes with every call; a wrong one is a ServiceError UNAUTHENTICATED", async () => {
    const { transport, calls } = recordingTransport();
    const memori = new Memori({ transport, apiKey: "key-given-here" }).attribution(user());
    await assert.rejects(memori.session.recent(), (error: unknown) => {
      assert.ok(error instanceof ServiceError);
      assert.equal(error.code, "UNAUTHENTICATED");
      return true;
    });
    assert.equal(calls[0]?.header.get("authorization"), "Bearer key-given-here");
  });
});

describe("forRequest scopes", () => {
  test("a scope takes the Memori's attribution unless given, and a session of its own", async () => {
    const { transport, calls } = recordingTransport();
    const who = user();
    const memori = new Memori({ transport }).attribution(who, "ts-scopes");
    const scope = memori.forRequest();
    assert.ok(scope instanceof MemoriRequestScope);
    assert.notEqual(scope.session.id, memori.session.id);
    await say(scope);
    const [session] = await scope.session.recent();
    assert.equal(session?.entityId, who);
    assert.equal(session?.processId, "ts-scopes");
    assert.ok(calls.length >= 2, "the scope calls through the Memori's connection");

    const id = crypto.randomUUID();
    const other = memori.forRequest({ entityId: user(), processId: "other", sessionId: id });
    assert.equal(other.session.id, id);
    await say(other);
    assert.equal((await other.session.history()).length, 2);
    assert.equal(memori.session.id === id, false, "the Memori itself is unchanged");
  });

  test("a scope without any attribution refuses calls with AttributionRequired", async () => {
    const scope = new Memori().forRequest();
    const client = openaiClient();
    scope.llm.register(client);
    assert.throws(() => client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "hi" }] }), AttributionRequired);
  });
});
