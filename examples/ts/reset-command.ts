// A terminal chat with a `/reset` command that starts a fresh conversation.
//
//   MEMORI_TARGET=localhost:50051 npx tsx examples/ts/reset-command.ts
//
// Type messages; `/reset` forgets everything said so far (a new session), `/quit` ends.
// Lines can be piped in too:  printf 'My favourite colour is blue\n/reset\n...' | npx tsx ...
import { createInterface } from "node:readline";

import OpenAI from "openai";
import { Memori } from "@memori-grpc/client";

const client = new OpenAI({ apiKey: process.env.OPENAI_API_KEY ?? "unused-with-memori" });
const memori = new Memori().attribution("user-123", "reset-example").llm.register(client);
console.log(`session ${memori.session.id} (/reset for a new one, /quit to end)`);

for await (const line of createInterface({ input: process.stdin })) {
  const text = line.trim();
  if (text === "/quit") {
    break;
  }
  if (text === "/reset") {
    memori.resetSession();
    console.log(`new session ${memori.session.id}`);
  } else if (text) {
    const stream = await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: text }],
      stream: true,
    });
    for await (const chunk of stream) {
      process.stdout.write(chunk.choices[0]?.delta.content ?? "");
    }
    process.stdout.write("\n");
  }
}
