// `memori.session`: the session the next call goes to, and the service's view of sessions.
//
// `id`, `reset()` and `set()` are local and instant: the service creates a session on its
// first call. The other methods ask SessionService.
import { create } from "@bufbuild/protobuf";
import { DurationSchema, timestampDate } from "@bufbuild/protobuf/wkt";
import { type CallOptions, Code } from "@connectrpc/connect";
import type { ChatCompletionMessageParam } from "openai/resources/chat/completions";

import type { Connection } from "./connection.js";
import { ServiceError, SessionAttributionMismatch, SessionNotFound } from "./errors.js";
import { ListRequestSchema, ListMessagesRequestSchema, type Session } from "./gen/memori/v1/session_pb.js";
import { historyMessage } from "./history.js";
import type { Identity } from "./identity.js";
import { readStatus } from "./rich_status.js";

const PAGE = 1000;
/** Session calls are small: without Memori's `timeoutMs` they get this deadline. */
const DEFAULT_TIMEOUT_MS = 30_000;

/** One session as the service keeps it. */
export interface SessionInfo {
  readonly id: string;
  readonly entityId: string;
  readonly processId: string;
  readonly createTime: Date;
  /** Last activity. */
  readonly updateTime: Date;
  readonly messageCount: number;
}

export interface RecentOptions {
  /** Only sessions active within this many milliseconds (e.g. 24 * 3600 * 1000). */
  readonly withinMs?: number;
}

export class SessionManager {
  readonly #identity: Identity;
  readonly #connection: Connection;
  readonly #timeoutMs: () => number | undefined;

  /** @internal Memori and its request scopes make these. */
  constructor(identity: Identity, connection: Connection, timeoutMs: () => number | undefined) {
    this.#identity = identity;
    this.#connection = connection;
    this.#timeoutMs = timeoutMs;
  }

  /** The UUID v4 of the session the next call goes to. */
  get id(): string {
    return this.#identity.sessionId;
  }

  /** Start a new conversation: a fresh session id; nothing of the old one is sent again. */
  reset(): this {
    this.#identity.reset();
    return this;
  }

  /** Continue the session with this UUID v4 (created on first use if unknown). Throws a
   * TypeError at once, before any call, for anything but a UUID v4. */
  set(id: string): this {
    this.#identity.set(id);
    return this;
  }

  /** Continue the attribution's current session, if it was active within the service's idle
   * window (24 h by default). false, and the id unchanged, when there is none. */
  async resumeCurrent(): Promise<boolean> {
    const { attribution } = this.#identity.forCall();
    let reply;
    try {
      reply = await this.#call("", (options) => this.#connection.sessions.get({ attribution }, options));
    } catch (error) {
      if (error instanceof SessionNotFound) {
        return false;
      }
      throw error;
    }
    if (reply.session === undefined) {
      return false;
    }
    this.#identity.set(reply.session.id);
    return true;
  }

  /** This attribution's sessions, newest activity first. */
  async recent(options: RecentOptions = {}): Promise<SessionInfo[]> {
    const { attribution } = this.#identity.forCall();
    const request = create(ListRequestSchema, { attribution, pageSize: PAGE });
    if (options.withinMs !== undefined) {
      request.activeWithin = create(DurationSchema, { seconds: BigInt(Math.floor(options.withinMs / 1000)) });
    }
    const found: SessionInfo[] = [];
    for (;;) {
      const reply = await this.#call("", (options) => this.#connection.sessions.list(request, options));
      found.push(...reply.sessions.map(sessionInfo));
      if (!reply.nextPageToken) {
        return found;
      }
      request.pageToken = reply.nextPageToken;
    }
  }

  /** The stored messages of the current session, oldest first, in OpenAI's shape. */
  async history(): Promise<ChatCompletionMessageParam[]> {
    const { sessionId, attribution } = this.#identity.forCall();
    const request = create(ListMessagesRequestSchema, { sessionId, attribution, pageSize: PAGE });
    const messages: ChatCompletionMessageParam[] = [];
    for (;;) {
      let reply;
      try {
        reply = await this.#call(sessionId, (options) => this.#connection.sessions.listMessages(request, options));
      } catch (error) {
        if (error instanceof SessionNotFound) {
          return messages; // nothing was sent in it yet
        }
        throw error;
      }
      messages.push(...reply.messages.flatMap((item) => (item.message ? [historyMessage(item.message)] : [])));
      if (!reply.nextPageToken) {
        return messages;
      }
      request.pageToken = reply.nextPageToken;
    }
  }

  /** Delete the current session and its messages (0 if it was never used), then start a
   * fresh one. Resolves to how many messages were deleted. */
  async delete(): Promise<number> {
    const { sessionId, attribution } = this.#identity.forCall();
    let deleted = 0;
    try {
      const reply = await this.#call(sessionId, (options) =>
        this.#connection.sessions.delete({ sessionId, attribution }, options),
      );
      deleted = Number(reply.deletedMessageCount);
    } catch (error) {
      if (!(error instanceof SessionNotFound)) {
        throw error;
      }
    }
    if (this.#identity.sessionId === sessionId) {
      this.#identity.reset(); // unless the app moved on meanwhile
    }
    return deleted;
  }

  /** One SessionService call, its failure as the client's own error. */
  async #call<T>(sessionId: string, call: (options: CallOptions) => Promise<T>): Promise<T> {
    const options = this.#connection.callOptions(this.#timeoutMs() ?? DEFAULT_TIMEOUT_MS); // MemoriClosed as it is
    try {
      return await call(options);
    } catch (error) {
      throw sessionError(error, sessionId);
    }
  }
}

function sessionError(error: unknown, sessionId: string): Error {
  const status = readStatus(error);
  if (status.reason === "SESSION_ATTRIBUTION_MISMATCH") {
    return new SessionAttributionMismatch(status.message, { sessionId, reason: status.reason }, { cause: error });
  }
  if (status.code === Code.NotFound) {
    return new SessionNotFound(status.message, { sessionId, reason: status.reason }, { cause: error });
  }
  return new ServiceError(
    `${status.codeName}: ${status.message}`,
    { code: status.codeName, reason: status.reason },
    { cause: error },
  );
}

function sessionInfo(session: Session): SessionInfo {
  return {
    id: session.id,
    entityId: session.attribution?.entityId ?? "",
    processId: session.attribution?.processId ?? "",
    createTime: session.createTime ? timestampDate(session.createTime) : new Date(0),
    updateTime: session.updateTime ? timestampDate(session.updateTime) : new Date(0),
    messageCount: Number(session.messageCount),
  };
}
