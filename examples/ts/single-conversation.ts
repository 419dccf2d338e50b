// One conversation: a fact told in one call is known in the next.
//
//   MEMORI_TARGET=localhost:50051 npx tsx examples/ts/single-conversation.ts
//
// The app sends only the new message each time; the service adds the session's history.
import OpenAI from "openai";
import { Memori } from "@memori-grpc/client"; // the Memori SDK: "@memorilabs/memori"

// The service holds the upstream's key: this one is never sent anywhere for chat calls.
const client = new OpenAI({ apiKey: process.env.OPENAI_API_KEY ?? "unused-with-memori" });
const memori = new Memori().attribution("user-123", "birthday-bot").llm.register(client);
console.log(`session ${memori.session.id}`);

for (const text of ["My birthday is May 15th.", "When is my birthday?"]) {
  const reply = await client.chat.completions.create({
    model: "gpt-4o-mini",
    messages: [{ role: "user", content: text }],
  });
  console.log(`> ${text}\n${reply.choices[0]?.message.content}`);
}
