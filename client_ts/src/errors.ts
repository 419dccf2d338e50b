// The client's own exceptions: misuse of attribution and sessions, and failed session calls.
//
// A failed `chat.completions.create(...)` rejects with openai-node's own error classes instead
// (see openai_errors.ts), so an app's existing error handling keeps working.

/** Base class of every error this client raises itself. */
export class MemoriError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A call needs an attribution (the end user), and none was set. */
export class AttributionRequired extends MemoriError {}

/** The Memori object was closed. */
export class MemoriClosed extends MemoriError {}

/** A session the service refused to use or could not find. */
export class SessionError extends MemoriError {
  /** The session the call was about ("" for calls about the attribution's current session). */
  readonly sessionId: string;
  /** The service's ErrorInfo reason, e.g. SESSION_ATTRIBUTION_MISMATCH. */
  readonly reason: string;

  constructor(message: string, details: { sessionId: string; reason: string }, options?: ErrorOptions) {
    super(message, options);
    this.sessionId = details.sessionId;
    this.reason = details.reason;
  }
}

/** The session belongs to another entity/process than the one this Memori is attributed to. */
export class SessionAttributionMismatch extends SessionError {}

/** The session does not exist (or belongs to another tenant, which looks the same). */
export class SessionNotFound extends SessionError {}

/** A session call (resumeCurrent, recent, history, delete) failed for another reason. */
export class ServiceError extends MemoriError {
  /** The gRPC status name, e.g. UNAVAILABLE or UNAUTHENTICATED. */
  readonly code: string;
  /** The service's ErrorInfo reason, if it sent one. */
  readonly reason: string;

  constructor(message: string, details: { code: string; reason: string }, options?: ErrorOptions) {
    super(message, options);
    this.code = details.code;
    this.reason = details.reason;
  }
}
