// Who is talking and in which session: the state one Memori (or request scope) holds.
//
// Everything here is synchronous and local: the session id is a fresh UUID v4 at once, and
// the service creates the session on its first call.
import { randomUUID } from "node:crypto";

import { AttributionRequired } from "./errors.js";
import { attributionId, sessionId } from "./identifiers.js";

export interface Attribution {
  readonly entityId: string;
  readonly processId: string;
}

/** The session and attribution of one call, read together. */
export interface CallIdentity {
  readonly sessionId: string;
  readonly attribution: Attribution;
}

export class Identity {
  #sessionId: string = randomUUID();
  #attribution: Attribution | undefined;

  constructor(start?: { attribution?: Attribution | undefined; sessionId?: string | undefined }) {
    this.#attribution = start?.attribution;
    if (start?.sessionId !== undefined) {
      this.#sessionId = sessionId(start.sessionId);
    }
  }

  get sessionId(): string {
    return this.#sessionId;
  }

  get attribution(): Attribution | undefined {
    return this.#attribution;
  }

  /** As in the Memori TS SDK, an id left undefined keeps its current value. Switching to
   * another attribution starts a new session: a session belongs to the attribution that
   * created it, so nothing is ever written into the old one. */
  attribute(entity: unknown, process: unknown): void {
    const current = this.#attribution;
    const next = {
      entityId: entity === undefined && current ? current.entityId : attributionId(entity, "entityId", true),
      processId: process === undefined ? (current?.processId ?? "") : attributionId(process, "processId", false),
    };
    if (current !== undefined && (current.entityId !== next.entityId || current.processId !== next.processId)) {
      this.#sessionId = randomUUID();
    }
    this.#attribution = next;
  }

  reset(): void {
    this.#sessionId = randomUUID();
  }

  /** Throws a TypeError, before any call, for anything but a UUID v4. */
  set(id: unknown): void {
    this.#sessionId = sessionId(id);
  }

  /** The identity a call uses; throws AttributionRequired when no attribution was set. */
  forCall(): CallIdentity {
    const attribution = this.#attribution;
    if (attribution === undefined) {
      throw new AttributionRequired(
        "call memori.attribution(entityId, processId) first: the service keeps each session " +
          "for one end user (entity) and agent (process)",
      );
    }
    return { sessionId: this.#sessionId, attribution };
  }
}
