// Resume a user's conversation after a restart, if it was active in the last 24 hours.
//
//   MEMORI_TARGET=localhost:50051 npx tsx examples/ts/persistent-sessions.ts
//
// Two ways, each across two "runs" of an app (a new Memori and client each time):
// 1. the app keeps the session id in its own database (`./database`), as apps using the Memori
//    SDK do, and resumes it with `setSession(id)`;
// 2. the service keeps it: every call makes its session the attribution's current session, and
//    `session.resumeCurrent()` finds it again within the service's idle window (24 h by
//    default). `session.recent({ withinMs })` lists the attribution's recent sessions.
import OpenAI from "openai";
import { Memori } from "@memori-grpc/client";

import { db } from "./database";

const DAY_MS = 24 * 60 * 60 * 1000;

async function ask(client: OpenAI, text: string): Promise<void> {
  const reply = await client.chat.completions.create({
    model: "gpt-4o-mini",
    messages: [{ role: "user", content: text }],
  });
  console.log(`> ${text}\n${reply.choices[0]?.message.content}`);
}

async function runWithOwnTable(text: string): Promise<void> {
  const client = new OpenAI({ apiKey: process.env.OPENAI_API_KEY ?? "unused-with-memori" });
  const memori = new Memori().attribution("alice", "persistent-example").llm.register(client);
  const saved = await db.findRecentSession("alice", DAY_MS);
  if (saved !== undefined) {
    memori.setSession(saved);
  }
  console.log(`[own table] ${saved ? "resumed" : "new"} session ${memori.session.id}`);
  await ask(client, text);
  await db.saveSession("alice", memori.session.id);
}

async function runWithServiceState(text: string): Promise<void> {
  const client = new OpenAI({ apiKey: process.env.OPENAI_API_KEY ?? "unused-with-memori" });
  const memori = new Memori().attribution("bob", "persistent-example").llm.register(client);
  const resumed = await memori.session.resumeCurrent();
  console.log(`[service] ${resumed ? "resumed" : "new"} session ${memori.session.id}`);
  await ask(client, text);
  const recent = await memori.session.recent({ withinMs: DAY_MS });
  console.log(`[service] bob has ${recent.length} session(s) active in the last 24 h`);
}

await runWithOwnTable("I am allergic to peanuts.");
await runWithOwnTable("Suggest a snack for me."); // a later run: the same session
await runWithServiceState("My flight leaves at 9:40.");
await runWithServiceState("When does my flight leave?");
