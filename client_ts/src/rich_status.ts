// What a failed call carried: the gRPC code and message, and the google.rpc error details
// (ErrorInfo, RetryInfo, BadRequest) that the service puts in `grpc-status-details-bin`.
//
// Connect hands the details over as (type name, bytes). The three messages are tiny and stable
// (google/rpc/error_details.proto), so they are read here straight off the protobuf wire
// instead of carrying generated code for all of googleapis.
import { Code, ConnectError } from "@connectrpc/connect";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";

export interface CallStatus {
  readonly code: Code;
  /** The gRPC status name, e.g. "UNAVAILABLE". */
  readonly codeName: string;
  readonly message: string;
  /** ErrorInfo.reason, e.g. UPSTREAM_ERROR or SESSION_ATTRIBUTION_MISMATCH; "" without one. */
  readonly reason: string;
  /** ErrorInfo.metadata; upstream failures carry upstream_status, upstream_message, ... */
  readonly metadata: Readonly<Record<string, string>>;
  /** RetryInfo.retry_delay in milliseconds, when the service knows it. */
  readonly retryAfterMs: number | undefined;
  /** BadRequest field violations as [field, description]. */
  readonly violations: readonly (readonly [string, string])[];
}

/** The status of a failed call; errors that are not ConnectErrors become UNKNOWN. */
export function readStatus(error: unknown): CallStatus {
  const failed = ConnectError.from(error);
  let reason = "";
  let metadata: Record<string, string> = {};
  let retryAfterMs: number | undefined;
  const violations: [string, string][] = [];
  for (const detail of failed.details) {
    if (!("type" in detail)) {
      continue; // details this process attached itself; a received error has none
    }
    try {
      if (detail.type === "google.rpc.ErrorInfo") {
        ({ reason, metadata } = errorInfo(detail.value));
      } else if (detail.type === "google.rpc.RetryInfo") {
        retryAfterMs = retryDelayMs(detail.value);
      } else if (detail.type === "google.rpc.BadRequest") {
        violations.push(...fieldViolations(detail.value));
      }
    } catch {
      // A detail that does not decode is left out; the code and message still stand.
    }
  }
  return {
    code: failed.code,
    codeName: codeName(failed.code),
    message: failed.rawMessage,
    reason,
    metadata,
    retryAfterMs,
    violations,
  };
}

/** "DEADLINE_EXCEEDED" for Code.DeadlineExceeded: the names gRPC and the server's docs use. */
function codeName(code: Code): string {
  if (code === Code.Canceled) {
    return "CANCELLED"; // gRPC's spelling
  }
  return (Code[code] ?? `CODE_${code}`).replace(/(?<=[a-z])(?=[A-Z])/g, "_").toUpperCase();
}

/** The upstream's HTTP status the service relayed in ErrorInfo metadata, if any. */
export function upstreamStatus(status: CallStatus): number | undefined {
  const text = status.metadata["upstream_status"] ?? "";
  return /^\d+$/.test(text) ? Number(text) : undefined;
}

function errorInfo(bytes: Uint8Array): { reason: string; metadata: Record<string, string> } {
  const reader = new BinaryReader(bytes);
  let reason = "";
  const metadata: Record<string, string> = {};
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    if (field === 1 && wireType === WireType.LengthDelimited) {
      reason = reader.string();
    } else if (field === 3 && wireType === WireType.LengthDelimited) {
      const [key, value] = stringPair(reader.bytes());
      metadata[key] = value;
    } else {
      reader.skip(wireType); // 2: domain, and anything newer
    }
  }
  return { reason, metadata };
}

function retryDelayMs(bytes: Uint8Array): number | undefined {
  const reader = new BinaryReader(bytes);
  let delay: number | undefined;
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    if (field === 1 && wireType === WireType.LengthDelimited) {
      delay = durationMs(reader.bytes());
    } else {
      reader.skip(wireType);
    }
  }
  return delay;
}

function durationMs(bytes: Uint8Array): number {
  const reader = new BinaryReader(bytes);
  let seconds = 0;
  let nanos = 0;
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    if (field === 1 && wireType === WireType.Varint) {
      seconds = Number(reader.int64());
    } else if (field === 2 && wireType === WireType.Varint) {
      nanos = reader.int32();
    } else {
      reader.skip(wireType);
    }
  }
  return seconds * 1000 + nanos / 1e6;
}

function fieldViolations(bytes: Uint8Array): [string, string][] {
  const reader = new BinaryReader(bytes);
  const found: [string, string][] = [];
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    if (field === 1 && wireType === WireType.LengthDelimited) {
      found.push(stringPair(reader.bytes())); // FieldViolation: 1 field, 2 description
    } else {
      reader.skip(wireType);
    }
  }
  return found;
}

/** Fields 1 and 2 of a message whose first two fields are strings (a map entry, a violation). */
function stringPair(bytes: Uint8Array): [string, string] {
  const reader = new BinaryReader(bytes);
  let first = "";
  let second = "";
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    if (field === 1 && wireType === WireType.LengthDelimited) {
      first = reader.string();
    } else if (field === 2 && wireType === WireType.LengthDelimited) {
      second = reader.string();
    } else {
      reader.skip(wireType);
    }
  }
  return [first, second];
}
