// Session ids kept in Redis with a time to live: a conversation resumes while it is fresh.
//
//   MEMORI_TARGET=localhost:50051 REDIS_URL=redis://127.0.0.1:6379/0 \
//     npx tsx examples/ts/redis-sessions.ts
//
// A stateless web handler: one Memori and one openai client for the whole app, and a request
// scope (`memori.forRequest`) per message, which shares the Memori's connection. Each message
// refreshes the key's TTL (a sliding expiry, 24 h here), so an active user keeps their
// conversation and one who comes back after the TTL starts a new one.
import { setTimeout as sleep } from "node:timers/promises";

import { Redis } from "ioredis";
import OpenAI from "openai";
import { Memori } from "@memori-grpc/client";

const PREFIX = process.env.MEMORI_EXAMPLE_REDIS_PREFIX ?? "memori-example";
const TTL_SECONDS = 24 * 60 * 60;

const redis = new Redis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379/0");
const client = new OpenAI({ apiKey: process.env.OPENAI_API_KEY ?? "unused-with-memori" });
const memori = new Memori();

async function handleMessage(userId: string, text: string, ttlSeconds = TTL_SECONDS): Promise<string> {
  const key = `${PREFIX}:chat-session:${userId}`;
  const saved = await redis.get(key);
  const scope = memori.forRequest({ entityId: userId, processId: "redis-example", sessionId: saved ?? undefined });
  scope.llm.register(client); // captured by the create below, even when requests overlap
  const reply = await client.chat.completions.create({
    model: "gpt-4o-mini",
    messages: [{ role: "user", content: text }],
  });
  await redis.set(key, scope.session.id, "EX", ttlSeconds);
  console.log(`[${userId}] ${saved ? "resumed" : "new"} session ${scope.session.id}`);
  console.log(`> ${text}\n${reply.choices[0]?.message.content}`);
  return scope.session.id;
}

await handleMessage("carol", "My dog is called Pixel.");
await handleMessage("carol", "What is my dog called?");
console.log(`[carol] session expires in ${await redis.ttl(`${PREFIX}:chat-session:carol`)} s unless she writes again`);

// A short TTL shows what happens when a user comes back too late.
const first = await handleMessage("dave", "My cat is called Miso.", 1);
await sleep(1500);
const second = await handleMessage("dave", "What is my cat called?", 1);
console.log(`[dave] ${first === second ? "the same" : "a new"} session after the TTL`);
await redis.quit();
