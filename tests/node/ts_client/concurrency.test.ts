// Attribution and session are captured when `create` is called, so the Memori SDK's
// shared-Memori patterns are safe while calls overlap.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";

import { Memori } from "@memori-grpc/client";
import type OpenAI from "openai";

import { MODEL, STANDIN, marker, openaiClient, receivedOnce, texts, user } from "./support.ts";

interface Speaker {
  readonly entityId: string;
  readonly sessionId: string;
  readonly said: string[];
}

async function setUpstreamDelay(seconds: number): Promise<void> {
  await fetch(`${STANDIN}/_standin/delay`, { method: "POST", body: JSON.stringify({ seconds }) });
}

/** Three rounds; in each, every speaker's call is made in one synchronous loop, in a random
 * order, so that all are in flight together (the stand-in delays each reply). */
async function converse(speakers: Speaker[], send: (speaker: Speaker, text: string) => Promise<unknown>): Promise<void> {
  for (let round = 0; round < 3; round += 1) {
    const order = [...speakers].sort(() => Math.random() - 0.5);
    await Promise.all(
      order.map((speaker) => {
        const text = marker(`round${round}`);
        speaker.said.push(text);
        return send(speaker, text);
      }),
    );
  }
}

async function assertKeptApart(speakers: Speaker[], processId: string): Promise<void> {
  for (const { entityId, sessionId, said } of speakers) {
    const [first, second, third] = said as [string, string, string];
    assert.deepEqual(texts(await receivedOnce(third)), [first, `echo: ${first}`, second, `echo: ${second}`, third]);
    const stored = await new Memori().attribution(entityId, processId).setSession(sessionId).session.history();
    assert.equal(stored.length, 6, `${entityId} has exactly its own three turns`);
  }
}

function speakers(count: number): Speaker[] {
  return Array.from({ length: count }, () => ({ entityId: user(), sessionId: randomUUID(), said: [] }));
}

describe("concurrent calls on shared objects", () => {
  before(() => setUpstreamDelay(0.05)); // every call stays in flight while others start
  after(() => setUpstreamDelay(0));

  test("one Memori and one client: attribution(u, a).setSession(id) before each call", async () => {
    const client = openaiClient({ maxRetries: 0 });
    const memori = new Memori().llm.register(client);
    const group = speakers(6);
    await converse(group, (speaker, text) => {
      memori.attribution(speaker.entityId, "ts-shared").setSession(speaker.sessionId);
      return client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: text }] });
    });
    await assertKeptApart(group, "ts-shared");
  });

  test("one Memori and one client: a request scope registered per call", async () => {
    const client = openaiClient({ maxRetries: 0 });
    const memori = new Memori();
    const group = speakers(6);
    await converse(group, (speaker, text) => {
      memori.forRequest({ entityId: speaker.entityId, processId: "ts-scoped", sessionId: speaker.sessionId }).llm.register(client);
      return client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: text }] });
    });
    await assertKeptApart(group, "ts-scoped");
  });

  test("a session changed right after create does not move the call already made", async () => {
    const client: OpenAI = openaiClient({ maxRetries: 0 });
    const memori = new Memori().attribution(user(), "ts-moved").llm.register(client);
    const first = memori.session.id;
    const text = marker();
    const pending = client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: text }], stream: true });
    memori.resetSession();
    for await (const _chunk of await pending) {
      // drain
    }
    assert.equal((await memori.session.history()).length, 0, "the new session got nothing");
    memori.setSession(first);
    assert.equal((await memori.session.history()).length, 2, "the call went to the session it was made in");
  });
});
