// @memori-grpc/client: the Memori TS SDK's API for openai-node, with the memory kept by a
// memori-grpc service over gRPC.
export { Memori, MemoriRequestScope } from "./memori.js";
export type { LLM, MemoriOptions, RequestScopeOptions } from "./memori.js";
export { SessionManager } from "./session.js";
export type { RecentOptions, SessionInfo } from "./session.js";
export type { Attribution } from "./identity.js";
export {
  AttributionRequired,
  MemoriClosed,
  MemoriError,
  ServiceError,
  SessionAttributionMismatch,
  SessionError,
  SessionNotFound,
} from "./errors.js";
