// The TypeScript examples (examples/ts, the Memori docs' session patterns with the import
// changed) run as a user runs them, against the real server, each checking what the upstream
// received.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { connect } from "node:net";
import { join } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { Redis } from "ioredis";

import { type RecordedRequest, received, resetStandin, texts } from "./support.ts";

const EXAMPLES = fileURLToPath(new URL("../../../examples/ts/", import.meta.url));
const REDIS_URL = process.env["MEMORI_TEST_REDIS_URL"] || "redis://127.0.0.1:6379/15";

/** Runs one example with a clean stand-in; its stdout, and the chat requests the upstream got. */
async function run(
  name: string,
  options: { input?: string; env?: Record<string, string> } = {},
): Promise<{ output: string; upstream: RecordedRequest[] }> {
  await resetStandin();
  const child = spawn(process.execPath, ["--import", "tsx", join(EXAMPLES, name)], {
    env: { ...process.env, ...options.env },
    stdio: ["pipe", "pipe", "pipe"],
  });
  child.stdin.end(options.input ?? "");
  let output = "";
  let errors = "";
  child.stdout.on("data", (data: Buffer) => (output += data.toString()));
  child.stderr.on("data", (data: Buffer) => (errors += data.toString()));
  const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
  assert.equal(code, 0, `${name} failed:\n${output}\n${errors}`);
  return { output, upstream: await received("") };
}

/** The upstream request whose last message is `text`. */
function asking(upstream: RecordedRequest[], text: string): string[] {
  const found = upstream.filter((request) => request.body.messages.at(-1)?.content === text);
  assert.equal(found.length, 1, `one upstream request ends with ${JSON.stringify(text)}`);
  return texts(found[0]!);
}

function reachable(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect({ host: hostname, port: Number(port || 6379), timeout: 1000 });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
    socket.once("timeout", () => done(false));
  });
}

describe("examples/ts", () => {
  test("single-conversation: the birthday told first is sent with the question", async () => {
    const { output, upstream } = await run("single-conversation.ts");
    assert.equal(upstream.length, 2);
    assert.deepEqual(asking(upstream, "When is my birthday?"), [
      "My birthday is May 15th.",
      "echo: My birthday is May 15th.",
      "When is my birthday?",
    ]);
    assert.match(output, /echo: When is my birthday\?/);
  });

  test("multi-conversation: users and agents talking at once never share a session", async () => {
    const { output, upstream } = await run("multi-conversation.ts");
    assert.equal(upstream.length, 6);
    const bob = asking(upstream, "What is my name?");
    assert.equal(bob[0], "My name is Bob; my parcel is late.");
    assert.doesNotMatch(bob.join(" "), /Alice|seats/);
    const alice = asking(upstream, "What is my name and order number?");
    assert.equal(alice[0], "My name is Alice and my order is #1001.");
    assert.doesNotMatch(alice.join(" "), /Bob|seats/);
    const sales = asking(upstream, "How many seats did I ask for?");
    assert.equal(sales[0], "I would like three more seats.");
    assert.doesNotMatch(sales.join(" "), /Alice|Bob/);
    assert.match(output, /3 separate sessions/);
  });

  test("persistent-sessions: resumed from the app's database, and from the service", async () => {
    const { output, upstream } = await run("persistent-sessions.ts");
    assert.equal(upstream.length, 4);
    assert.deepEqual(asking(upstream, "Suggest a snack for me."), [
      "I am allergic to peanuts.",
      "echo: I am allergic to peanuts.",
      "Suggest a snack for me.",
    ]);
    assert.deepEqual(asking(upstream, "When does my flight leave?"), [
      "My flight leaves at 9:40.",
      "echo: My flight leaves at 9:40.",
      "When does my flight leave?",
    ]);
    for (const line of ["[own table] new", "[own table] resumed", "[service] new", "[service] resumed"]) {
      assert.ok(output.includes(line), `${line} in:\n${output}`);
    }
    assert.match(output, /bob has 1 session\(s\) active in the last 24 h/);
  });

  test("reset-command: after /reset the colour is not sent again", async () => {
    const input = "My favourite colour is blue\n/reset\nWhat is my favourite colour?\n/quit\n";
    const { output, upstream } = await run("reset-command.ts", { input });
    assert.equal(upstream.length, 2);
    assert.deepEqual(asking(upstream, "What is my favourite colour?"), ["What is my favourite colour?"]);
    assert.ok(upstream.every((request) => request.body["stream"] === true), "the replies were streamed");
    assert.match(output, /new session [0-9a-f-]{36}/);
    assert.match(output, /echo: What is my favourite colour\?/);
  });

  test("session-lifecycle: reset, resume, history, recent and delete", async () => {
    const { output, upstream } = await run("session-lifecycle.ts");
    assert.equal(upstream.length, 3);
    assert.deepEqual(asking(upstream, "Where were we going?"), [
      "Let's plan a trip to Lisbon.",
      "echo: Let's plan a trip to Lisbon.",
      "Where were we going?",
    ]);
    assert.deepEqual(asking(upstream, "Let's talk about cooking instead."), ["Let's talk about cooking instead."]);
    for (const line of [
      "first session holds 4 messages",
      "2 sessions for user-123/lifecycle",
      "deleted the cooking session (2 messages)",
      "1 session left",
    ]) {
      assert.ok(output.includes(line), `${line} in:\n${output}`);
    }
  });

  test("redis-sessions: the session lives as long as its key in Redis", async (t) => {
    if (!(await reachable(REDIS_URL))) {
      t.skip(`Redis is not reachable at ${REDIS_URL} (set MEMORI_TEST_REDIS_URL)`);
      return;
    }
    const prefix = `memori-ts-test-${randomUUID()}`;
    try {
      const { output, upstream } = await run("redis-sessions.ts", {
        env: { REDIS_URL, MEMORI_EXAMPLE_REDIS_PREFIX: prefix },
      });
      assert.equal(upstream.length, 4);
      assert.deepEqual(asking(upstream, "What is my dog called?"), [
        "My dog is called Pixel.",
        "echo: My dog is called Pixel.",
        "What is my dog called?",
      ]);
      assert.deepEqual(asking(upstream, "What is my cat called?"), ["What is my cat called?"], "after the TTL: a new session");
      assert.match(output, /\[carol\] session expires in 86\d\d\d s/);
      assert.match(output, /\[dave\] a new session after the TTL/);
    } finally {
      const redis = new Redis(REDIS_URL);
      const keys = await redis.keys(`${prefix}:*`);
      if (keys.length > 0) {
        await redis.del(...keys);
      }
      await redis.quit();
    }
  });
});
