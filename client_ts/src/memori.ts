// `Memori`: the Memori TS SDK's chaining API, with the conversation memory kept by memori-grpc.
//
//   const memori = new Memori().attribution("user-123", "my-agent").llm.register(client);
//   await client.chat.completions.create({ model, messages }); // remembered in memori.session.id
//
// No network call happens before the first call: `session.id` is a UUID v4 at once.
import { randomUUID } from "node:crypto";

import type { OpenAI } from "openai";

import type { CallScope } from "./call_scope.js";
import { Connection, type ConnectionOptions } from "./connection.js";
import { Identity } from "./identity.js";
import { register, type RequestOptions, unregister } from "./register.js";
import { SessionManager } from "./session.js";

export interface MemoriOptions extends ConnectionOptions {
  /** Default deadline of each call in milliseconds. A `create`'s own `timeout` option wins;
   * without either, the openai client's `timeout` applies (session calls: 30 s). */
  timeoutMs?: number | undefined;
}

/** `forRequest(...)`: who a request scope talks for; unset fields come from the Memori. */
export interface RequestScopeOptions {
  entityId?: string | undefined;
  processId?: string | undefined;
  /** The session to continue (a UUID v4); a new one when left out. */
  sessionId?: string | undefined;
}

/** `memori.llm`: the openai-node clients a Memori routes. */
export interface LLM<Owner> {
  /** Routes `client.chat.completions` through the service; returns the Memori for chaining.
   * `options.stream` is accepted for code written for the Memori SDK and changes nothing:
   * each call's own `stream: true` decides. A client registered elsewhere moves here. */
  register(client: OpenAI, options?: { stream?: boolean }): Owner;
  /** Gives the client its plain openai-node behaviour back. */
  unregister(client: OpenAI): Owner;
}

/** What a Memori and its request scopes share: one conversation's state and its calls. */
abstract class Conversation {
  /** The session the next call goes to, and the service's view of sessions. */
  readonly session: SessionManager;
  readonly llm: LLM<this>;
  readonly #identity: Identity;
  readonly #connection: Connection;
  readonly #timeoutMs: number | undefined;

  protected constructor(connection: Connection, identity: Identity, timeoutMs: number | undefined) {
    this.#connection = connection;
    this.#identity = identity;
    this.#timeoutMs = timeoutMs;
    this.session = new SessionManager(identity, connection, () => this.#timeoutMs);
    this.llm = {
      register: (client) => {
        register(client, this);
        return this;
      },
      unregister: (client) => {
        unregister(client, this);
        return this;
      },
    };
  }

  /** Who the conversation belongs to: the end user (entity) and the agent (process), each at
   * most 100 characters; an id left undefined keeps its current value (the entity is needed
   * once). Switching to another attribution starts a new session, since a session belongs to
   * the attribution that created it. */
  attribution(entityId?: string, processId?: string): this {
    this.#identity.attribute(entityId, processId);
    return this;
  }

  /** Start a new conversation (a fresh session id); nothing of the old one is sent again. */
  resetSession(): this {
    this.#identity.reset();
    return this;
  }

  /** Continue the session with this UUID v4 (created on first use if unknown). Throws a
   * TypeError at once for anything but a UUID v4. */
  setSession(id: string): this {
    this.#identity.set(id);
    return this;
  }

  /** @internal */
  get closed(): boolean {
    return this.#connection.closed;
  }

  /** @internal The scope of one `create` call, read when the call is made. */
  captureCall(client: OpenAI, options: RequestOptions | undefined): CallScope {
    const identity = this.#identity.forCall();
    const retries = options?.maxRetries ?? client.maxRetries;
    return {
      connection: this.#connection,
      identity,
      requestId: retries > 0 ? randomUUID() : "",
      timeoutMs: options?.timeout ?? this.#timeoutMs ?? client.timeout,
    };
  }

  /** @internal */
  protected get connection(): Connection {
    return this.#connection;
  }

  /** @internal */
  protected get identity(): Identity {
    return this.#identity;
  }

  /** @internal */
  protected get timeoutMs(): number | undefined {
    return this.#timeoutMs;
  }
}

/**
 * Conversation memory for openai-node clients, kept by a memori-grpc service.
 *
 * One Memori holds one conversation at a time (attribution + session). Every `create` call of
 * a registered client captures both when it is called, so changing them between calls (as
 * `memori.attribution(u, a).setSession(id)` before each call does) is safe under concurrency.
 */
export class Memori extends Conversation {
  constructor(options: MemoriOptions = {}) {
    super(new Connection(options), new Identity(), options.timeoutMs);
  }

  /** A scope with its own attribution and session for one request, sharing this Memori's
   * connection. Unset fields come from this Memori; the session is new unless given. */
  forRequest(options: RequestScopeOptions = {}): MemoriRequestScope {
    const parent = this.identity.attribution;
    const identity = new Identity({ sessionId: options.sessionId });
    const entityId = options.entityId ?? parent?.entityId;
    if (entityId !== undefined) {
      identity.attribute(entityId, options.processId ?? parent?.processId);
    }
    return new MemoriRequestScope(this.connection, identity, this.timeoutMs);
  }

  /** Stops routing: the clients of this Memori and its scopes act as plain openai clients again,
   * and session calls fail with MemoriClosed. */
  close(): void {
    this.connection.close();
  }
}

/** `memori.forRequest(...)`: the Memori API for one request, on the Memori's connection. */
export class MemoriRequestScope extends Conversation {
  /** @internal Use `memori.forRequest(...)`. */
  constructor(connection: Connection, identity: Identity, timeoutMs: number | undefined) {
    super(connection, identity, timeoutMs);
  }
}
