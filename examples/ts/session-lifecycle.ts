// The life of sessions: start, reset, resume, read, delete.
//
//   MEMORI_TARGET=localhost:50051 npx tsx examples/ts/session-lifecycle.ts
import OpenAI from "openai";
import { Memori } from "@memori-grpc/client";

const client = new OpenAI({ apiKey: process.env.OPENAI_API_KEY ?? "unused-with-memori" });
const memori = new Memori().attribution("user-123", "lifecycle").llm.register(client);

async function ask(text: string): Promise<void> {
  const reply = await client.chat.completions.create({
    model: "gpt-4o-mini",
    messages: [{ role: "user", content: text }],
  });
  console.log(`> ${text}\n${reply.choices[0]?.message.content}`);
}

const first = memori.session.id; // known at once: no call has been made yet
console.log(`first session ${first}`);
await ask("Let's plan a trip to Lisbon.");

memori.resetSession(); // a new conversation; Lisbon is not sent any more
console.log(`second session ${memori.session.id}`);
await ask("Let's talk about cooking instead.");
const second = memori.session.id;

memori.setSession(first); // back to the trip
await ask("Where were we going?");
console.log(`first session holds ${(await memori.session.history()).length} messages`);

console.log(`${(await memori.session.recent()).length} sessions for user-123/lifecycle`);
memori.setSession(second);
const deleted = await memori.session.delete(); // the session and all its messages
console.log(`deleted the cooking session (${deleted} messages); now at ${memori.session.id}`);
console.log(`${(await memori.session.recent()).length} session left`);
