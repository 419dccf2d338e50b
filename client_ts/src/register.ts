// `memori.llm.register(client)`: route an openai-node client's chat completions through the
// service, keeping every openai-node behaviour.
//
// Two things change on that one client object (other clients and the OpenAI class stay as they
// are):
// - its `fetch` answers `POST .../chat/completions` from ChatService and passes every other
//   request to the fetch it had;
// - `chat.completions.create` captures the Memori's attribution and session synchronously, when
//   it is called, and hands them to that fetch in the call's `fetchOptions`. `parse()`,
//   `stream()` and `runTools()` call `create`, so they capture the same way.
// `withOptions(...)` copies are registered too, so a per-call option never bypasses the memory.
import type { OpenAI } from "openai";

import { answerChat, refusal } from "./chat_fetch.js";
import { CALL_SCOPE, type CallScope, scopeOf } from "./call_scope.js";
import { MemoriError } from "./errors.js";

/** The per-call options of `create(body, options)` (openai-node does not export the type). */
export type RequestOptions = NonNullable<Parameters<OpenAI["chat"]["completions"]["create"]>[1]>;

type Fetch = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;
type Create = (body: unknown, options?: RequestOptions) => unknown;

/** What a client is routed by: a Memori or one of its request scopes. */
export interface Router {
  /** True once the Memori is closed: its clients act as plain openai clients again. */
  readonly closed: boolean;
  /** The scope of a call made now; throws (synchronously) when the call cannot be made. */
  captureCall(client: OpenAI, options: RequestOptions | undefined): CallScope;
}

interface Route {
  router: Router;
  readonly restore: () => void;
}

/** The fetch each routed fetch wraps, so that registering a copy never wraps twice. */
const ORIGINAL_FETCH = Symbol("memori-grpc original fetch");
const routes = new WeakMap<OpenAI, Route>();

/** Routes `client` through `router`. A client routed already moves to `router`: the last
 * registration wins, and each call captures the router's state when it is made. */
export function register(client: OpenAI, router: Router): void {
  checkClient(client);
  const existing = routes.get(client);
  if (existing !== undefined) {
    existing.router = router;
    return;
  }
  const internals = client as unknown as { fetch: Fetch; withOptions: OpenAI["withOptions"] };
  const completions = client.chat.completions as unknown as { create: Create };
  const original = { fetch: internals.fetch, withOptions: internals.withOptions, create: completions.create };
  const passThrough = (original.fetch as Fetch & { [ORIGINAL_FETCH]?: Fetch })[ORIGINAL_FETCH] ?? original.fetch;
  const route: Route = {
    router,
    restore() {
      internals.fetch = original.fetch;
      delete (completions as Partial<typeof completions>).create;
      delete (internals as Partial<typeof internals>).withOptions;
    },
  };

  const routed: Fetch = async (input, init) => {
    const router = route.router;
    if (router.closed || !isChatCompletions(input, init)) {
      return passThrough(input, init);
    }
    let scope = scopeOf(init);
    if (scope === undefined) {
      // A chat request made without `create` (e.g. client.post(...)): the router's state now.
      try {
        scope = router.captureCall(client, undefined);
      } catch (error) {
        if (error instanceof MemoriError) {
          return refusal(error.message, null);
        }
        throw error;
      }
    }
    return answerChat(scope, await bodyText(input, init), init?.signal ?? undefined);
  };
  internals.fetch = Object.assign(routed, { [ORIGINAL_FETCH]: passThrough });

  completions.create = function create(this: unknown, body: unknown, options?: RequestOptions): unknown {
    const router = route.router;
    if (router.closed) {
      return original.create.call(this, body, options);
    }
    const scope = router.captureCall(client, options); // now, not when openai-node fetches
    const fetchOptions = { ...options?.fetchOptions, [CALL_SCOPE]: scope };
    return original.create.call(this, body, { ...options, fetchOptions });
  };

  internals.withOptions = function withOptions(this: OpenAI, options) {
    const copy = original.withOptions.call(this, options);
    register(copy, route.router);
    return copy;
  } as OpenAI["withOptions"];

  routes.set(client, route);
}

/** Gives `client` its plain openai-node behaviour back, if `router` routes it now. */
export function unregister(client: OpenAI, router: Router): void {
  const route = routes.get(client);
  if (route?.router === router) {
    route.restore();
    routes.delete(client);
  }
}

function checkClient(client: OpenAI): void {
  const candidate = client as unknown as {
    chat?: { completions?: { create?: unknown } };
    fetch?: unknown;
    withOptions?: unknown;
  };
  if (
    typeof candidate?.chat?.completions?.create !== "function" ||
    typeof candidate.fetch !== "function" ||
    typeof candidate.withOptions !== "function"
  ) {
    throw new TypeError("llm.register expects an openai-node client (new OpenAI(...), openai >= 6)");
  }
}

function isChatCompletions(input: string | URL | Request, init: RequestInit | undefined): boolean {
  const method = init?.method ?? (input instanceof Request ? input.method : "GET");
  if (method.toUpperCase() !== "POST") {
    return false;
  }
  const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
  const query = url.indexOf("?");
  return (query < 0 ? url : url.slice(0, query)).endsWith("/chat/completions");
}

async function bodyText(input: string | URL | Request, init: RequestInit | undefined): Promise<string> {
  const body = init?.body;
  if (typeof body === "string") {
    return body; // what openai-node sends for JSON requests
  }
  if (body !== undefined && body !== null) {
    return new Response(body).text();
  }
  return input instanceof Request ? input.text() : "";
}
