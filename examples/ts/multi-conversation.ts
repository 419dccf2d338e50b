// Many conversations at once through one Memori and one client.
//
//   MEMORI_TARGET=localhost:50051 npx tsx examples/ts/multi-conversation.ts
//
// The Memori SDK's pattern: set the attribution and session right before each call. Every
// `create` captures them the moment it is called, so users whose calls overlap never see each
// other's conversation: each (user, agent) pair keeps its own session.
import OpenAI from "openai";
import { Memori } from "@memori-grpc/client";

const client = new OpenAI({ apiKey: process.env.OPENAI_API_KEY ?? "unused-with-memori" });
const memori = new Memori().llm.register(client);
const sessions = new Map<string, string>(); // "user/agent" -> session id

async function chat(userId: string, agentId: string, text: string): Promise<string> {
  const key = `${userId}/${agentId}`;
  memori.attribution(userId, agentId);
  const saved = sessions.get(key);
  if (saved !== undefined) {
    memori.setSession(saved);
  } else {
    memori.resetSession();
    sessions.set(key, memori.session.id);
  }
  const reply = await client.chat.completions.create({
    model: "gpt-4o-mini",
    messages: [{ role: "user", content: text }],
  });
  const answer = reply.choices[0]?.message.content ?? "";
  console.log(`[${key}] > ${text}\n${answer}`);
  return answer;
}

// Two users and two agents, talking at the same time.
await Promise.all([
  chat("alice", "support", "My name is Alice and my order is #1001."),
  chat("bob", "support", "My name is Bob; my parcel is late."),
  chat("alice", "sales", "I would like three more seats."),
]);
await Promise.all([
  chat("bob", "support", "What is my name?"),
  chat("alice", "support", "What is my name and order number?"),
  chat("alice", "sales", "How many seats did I ask for?"),
]);
console.log(`${sessions.size} separate sessions`);
