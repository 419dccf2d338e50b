// The TypeScript client's own cost: `create` through @memori-grpc/client against the same
// Complete RPC on the raw Connect stub. Run by bench/ts_client_overhead.py:
//
//   MEMORI_TARGET=127.0.0.1:50051 node --import tsx bench/ts_client_overhead.ts CALLS WARMUP
//
// Both paths run in this process, one call at a time, against the same server and stand-in
// upstream, with the same request (one new user message). The client path calls
// `chat.completions.create` on an openai-node client with default settings (2 retries, so each
// call carries a request id, as the raw path's do) registered with a Memori; every call of
// either path goes to a new session, so the server does the same work for both. Blocks of 50
// calls alternate between the paths (which one goes first alternates too). Prints one JSON
// line: the latencies of each path in seconds.
import { randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";

import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Memori } from "@memori-grpc/client";
import OpenAI from "openai";

import { ChatService } from "../gen/ts/memori/v1/chat_pb.ts";
import { Role } from "../gen/ts/memori/v1/common_pb.ts";

const BLOCK = 50;
const MODEL = "gpt-4o-mini";
const TEXT = "What is the capital of Portugal?";

type Path = (into: number[]) => Promise<void>;

function check(content: string | null | undefined): void {
  if (content !== `echo: ${TEXT}`) {
    throw new Error(`unexpected reply: ${content}`);
  }
}

async function alternate(calls: number, paths: [Path, number[]][]): Promise<void> {
  const blocks = Math.max(1, Math.floor(calls / BLOCK));
  for (let block = 0; block < blocks; block += 1) {
    for (const [path, into] of block % 2 === 0 ? paths : [...paths].reverse()) {
      for (let i = 0; i < Math.min(BLOCK, calls); i += 1) {
        await path(into);
      }
    }
  }
}

async function main(): Promise<void> {
  const [calls = 3000, warmup = 300] = process.argv.slice(2).map(Number);
  const target = process.env["MEMORI_TARGET"];
  if (!target) {
    throw new Error("set MEMORI_TARGET");
  }
  const stub = createClient(ChatService, createGrpcTransport({ baseUrl: `http://${target}` }));
  const key = process.env["MEMORI_API_KEY"]; // the Memori sends it too
  const headers = key ? { authorization: `Bearer ${key}` } : undefined;
  const attribution = { entityId: `bench-${randomUUID()}`, processId: "raw" };
  const client = new OpenAI({ apiKey: "unused", baseURL: "http://127.0.0.1:9/v1" });
  const memori = new Memori({ target }).attribution(`bench-${randomUUID()}`, "client").llm.register(client);

  const raw: Path = async (into) => {
    const request = {
      sessionId: randomUUID(),
      attribution,
      requestId: randomUUID(),
      request: { model: MODEL, messages: [{ role: Role.USER, content: TEXT }] },
    };
    const start = performance.now();
    const reply = await stub.complete(request, { timeoutMs: 30_000, headers });
    into.push((performance.now() - start) / 1000);
    check(JSON.parse(reply.completionJson).choices[0].message.content);
  };
  const throughClient: Path = async (into) => {
    memori.resetSession(); // a new session per call, as for the raw path
    const start = performance.now();
    const reply = await client.chat.completions.create(
      { model: MODEL, messages: [{ role: "user", content: TEXT }] },
      { timeout: 30_000 },
    );
    into.push((performance.now() - start) / 1000);
    check(reply.choices[0]?.message.content);
  };

  await alternate(warmup, [[raw, []], [throughClient, []]]);
  const samples = { raw: [] as number[], client: [] as number[] };
  await alternate(calls, [[raw, samples.raw], [throughClient, samples.client]]);
  console.log(JSON.stringify(samples));
}

await main();
