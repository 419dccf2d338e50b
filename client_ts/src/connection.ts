// Where a Memori's calls go: the gRPC transport, the API key, and the stubs built on them.
//
// Transports are shared per target: a service that makes a Memori per web request must not
// open a connection per request. Connect's HTTP/2 session manager connects on the first call
// (never in a constructor), reconnects when needed, and lets an idle process exit.
import type { SecureClientSessionOptions } from "node:http2";

import { type CallOptions, type Client, createClient, type Transport } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";

import { MemoriClosed } from "./errors.js";
import { ChatService } from "./gen/memori/v1/chat_pb.js";
import { SessionService } from "./gen/memori/v1/session_pb.js";

export const DEFAULT_TARGET = "localhost:50051";

export interface ConnectionOptions {
  /** "host:port" of the service (or an http:// / https:// URL); default MEMORI_TARGET, else localhost:50051. */
  target?: string | undefined;
  /** Sent as `authorization: Bearer ...` on every call; default MEMORI_API_KEY. */
  apiKey?: string | undefined;
  /** true: TLS with the system's roots; or Node's TLS options (ca, cert, key, servername, ...). */
  tls?: boolean | SecureClientSessionOptions | undefined;
  /** A ready Connect transport (interceptors, a connection of the app's own), used as it is. */
  transport?: Transport | undefined;
}

const shared = new Map<string, Transport>();

export class Connection {
  readonly target: string;
  readonly chat: Client<typeof ChatService>;
  readonly sessions: Client<typeof SessionService>;
  readonly #headers: Readonly<Record<string, string>> | undefined;
  readonly #owned: Http2SessionManager | undefined;
  #closed = false;

  constructor(options: ConnectionOptions) {
    this.target = options.target || process.env["MEMORI_TARGET"] || DEFAULT_TARGET;
    const key = options.apiKey ?? process.env["MEMORI_API_KEY"];
    this.#headers = key ? { authorization: `Bearer ${key}` } : undefined;
    let transport = options.transport;
    if (transport === undefined) {
      const baseUrl = baseUrlOf(this.target, options.tls);
      if (typeof options.tls === "object") {
        // Custom TLS settings get a connection of their own, closed with this Memori.
        this.#owned = new Http2SessionManager(baseUrl, undefined, options.tls);
        transport = createGrpcTransport({ baseUrl, sessionManager: this.#owned });
      } else {
        transport = shared.get(baseUrl) ?? createGrpcTransport({ baseUrl });
        shared.set(baseUrl, transport);
      }
    }
    this.chat = createClient(ChatService, transport);
    this.sessions = createClient(SessionService, transport);
  }

  /** Options of one call: the API key, a deadline, and the caller's cancellation. */
  callOptions(timeoutMs: number | undefined, signal?: AbortSignal): CallOptions {
    this.checkOpen();
    return { headers: this.#headers, timeoutMs, signal };
  }

  get closed(): boolean {
    return this.#closed;
  }

  checkOpen(): void {
    if (this.#closed) {
      throw new MemoriClosed("this Memori is closed; create a new one");
    }
  }

  /** Refuses further calls; a connection this object opened for custom TLS is closed too. */
  close(): void {
    this.#closed = true;
    this.#owned?.abort();
  }
}

function baseUrlOf(target: string, tls: ConnectionOptions["tls"]): string {
  if (/^https?:\/\//.test(target)) {
    return target;
  }
  return `${tls ? "https" : "http"}://${target}`;
}
