// A `POST /chat/completions` JSON body, as openai-node sends it, as a memori.v1
// ChatCompletionRequest.
//
// Typed proto fields carry what every language needs; every other parameter travels in
// `extra_json`, so nothing is dropped. The service validates the whole request and answers
// INVALID_ARGUMENT naming the field; only what cannot be encoded at all is refused here.
import { create, fromJson, type JsonObject, type JsonValue, type MessageInitShape } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";

import { type ChatCompletionRequest, ChatCompletionRequestSchema } from "./gen/memori/v1/chat_pb.js";
import { type ChatMessage, ChatMessageSchema, Role, ToolCallSchema } from "./gen/memori/v1/common_pb.js";

/** A body this client cannot send; answered like the service's own INVALID_ARGUMENT. */
export class RequestError extends Error {
  constructor(
    message: string,
    readonly param: string,
  ) {
    super(message);
  }
}

export interface ChatCall {
  readonly request: ChatCompletionRequest;
  readonly stream: boolean;
}

const ROLES: Readonly<Record<string, Role>> = {
  system: Role.SYSTEM,
  developer: Role.DEVELOPER,
  user: Role.USER,
  assistant: Role.ASSISTANT,
  tool: Role.TOOL,
};
const DOUBLES = { temperature: "temperature", top_p: "topP" } as const;
const INTEGERS = {
  max_tokens: "maxTokens",
  max_completion_tokens: "maxCompletionTokens",
  n: "n",
  seed: "seed",
} as const;
const MESSAGE_FIELDS = new Set(["role", "content", "name", "tool_calls", "tool_call_id"]);
// Response-only fields of an assistant message passed back as history: not input.
const OUTPUT_ONLY = new Set(["refusal", "annotations", "audio", "function_call", "reasoning"]);

/** Parses and converts the body text; throws RequestError for what cannot be sent. */
export function chatCall(bodyText: string): ChatCall {
  let body: unknown;
  try {
    body = JSON.parse(bodyText);
  } catch {
    throw new RequestError("the request body is not JSON", "body");
  }
  if (!isObject(body)) {
    throw new RequestError("the request body must be a JSON object", "body");
  }
  const { model, messages, stream, ...params } = body;
  if (typeof model !== "string") {
    throw new RequestError(`model must be a string, not ${kind(model)}`, "model");
  }
  if (!Array.isArray(messages)) {
    throw new RequestError(`messages must be a list of messages, not ${kind(messages)}`, "messages");
  }
  const request = create(ChatCompletionRequestSchema, { model, messages: messages.map(message) });
  const extra: JsonObject = {};
  for (const [name, value] of Object.entries(params)) {
    if (!setTyped(request, name, value)) {
      extra[name] = value;
    }
  }
  if (Object.keys(extra).length > 0) {
    request.extraJson = JSON.stringify(extra);
  }
  return { request, stream: stream === true };
}

/** Sets a typed field; false when `name` is not one (it then goes to extra_json). */
function setTyped(request: ChatCompletionRequest, name: string, value: JsonValue | undefined): boolean {
  if (name in DOUBLES) {
    if (value !== null) {
      request[DOUBLES[name as keyof typeof DOUBLES]] = number(value, name);
    }
  } else if (name in INTEGERS) {
    if (value !== null) {
      request[INTEGERS[name as keyof typeof INTEGERS]] = integer(value, name);
    }
  } else if (name === "stop") {
    if (value !== null) {
      request.stop = typeof value === "string" ? [value] : list(value, name).map((item, i) => text(item, `stop[${i}]`));
    }
  } else if (name === "tools") {
    if (value !== null) {
      request.tools = list(value, name).map((tool, i) => object(tool, `tools[${i}]`));
    }
  } else if (name === "tool_choice") {
    if (value !== null) {
      if (typeof value !== "string" && !isObject(value)) {
        throw new RequestError(`tool_choice must be a string or an object, not ${kind(value)}`, name);
      }
      request.toolChoice = fromJson(ValueSchema, value);
    }
  } else if (name === "response_format") {
    if (value !== null) {
      request.responseFormat = object(value, name);
    }
  } else if (name === "user") {
    if (value !== null) {
      request.user = text(value, name);
    }
  } else {
    return false;
  }
  return true;
}

function message(item: JsonValue | undefined, index: number): ChatMessage {
  const where = `messages[${index}]`;
  const fields = object(item, where);
  const unknown = Object.keys(fields)
    .filter((key) => !MESSAGE_FIELDS.has(key) && !OUTPUT_ONLY.has(key) && truthy(fields[key]))
    .sort();
  if (unknown.length > 0) {
    throw new RequestError(
      `${where} has ${unknown.join(", ")}, which memori.v1 messages do not carry ` +
        "(role, content, name, tool_calls, tool_call_id)",
      `${where}.${unknown[0]}`,
    );
  }
  const init: MessageInitShape<typeof ChatMessageSchema> = {
    role: ROLES[String(fields["role"])] ?? Role.UNSPECIFIED,
  };
  const content = fields["content"];
  if (typeof content === "string") {
    init.content = content;
  } else if (Array.isArray(content)) {
    init.contentParts = content.map((part, i) => object(part, `${where}.content[${i}]`));
  }
  if (truthy(fields["name"])) {
    init.name = text(fields["name"], `${where}.name`);
  }
  if (truthy(fields["tool_calls"])) {
    const calls = list(fields["tool_calls"], `${where}.tool_calls`);
    init.toolCalls = calls.map((call, i) => toolCall(call, `${where}.tool_calls[${i}]`));
  }
  if (truthy(fields["tool_call_id"])) {
    init.toolCallId = text(fields["tool_call_id"], `${where}.tool_call_id`);
  }
  return create(ChatMessageSchema, init);
}

function toolCall(item: JsonValue | undefined, where: string): MessageInitShape<typeof ToolCallSchema> {
  const call = object(item, where);
  const fn = isObject(call["function"]) ? call["function"] : {};
  return {
    id: optionalText(call["id"], `${where}.id`),
    type: optionalText(call["type"], `${where}.type`) || "function",
    function: {
      name: optionalText(fn["name"], `${where}.function.name`),
      arguments: optionalText(fn["arguments"], `${where}.function.arguments`),
    },
  };
}

function number(value: JsonValue | undefined, name: string): number {
  if (typeof value !== "number") {
    throw new RequestError(`${name} must be a number, not ${kind(value)}`, name);
  }
  return value;
}

function integer(value: JsonValue | undefined, name: string): bigint {
  if (typeof value !== "number" || !Number.isSafeInteger(value)) {
    throw new RequestError(`${name} must be an integer, not ${JSON.stringify(value)}`, name);
  }
  return BigInt(value);
}

function text(value: JsonValue | undefined, name: string): string {
  if (typeof value !== "string") {
    throw new RequestError(`${name} must be a string, not ${kind(value)}`, name);
  }
  return value;
}

function optionalText(value: JsonValue | undefined, name: string): string {
  return value === undefined || value === null ? "" : text(value, name);
}

function list(value: JsonValue | undefined, name: string): JsonValue[] {
  if (!Array.isArray(value)) {
    throw new RequestError(`${name} must be a list, not ${kind(value)}`, name);
  }
  return value;
}

function object(value: JsonValue | undefined, name: string): JsonObject {
  if (!isObject(value)) {
    throw new RequestError(`${name} must be an object, not ${kind(value)}`, name);
  }
  return value;
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Python's truthiness, as the Python client and the service judge "set" fields. */
function truthy(value: JsonValue | undefined): boolean {
  if (Array.isArray(value)) {
    return value.length > 0;
  }
  if (isObject(value)) {
    return Object.keys(value).length > 0;
  }
  return Boolean(value);
}

function kind(value: unknown): string {
  return value === null ? "null" : Array.isArray(value) ? "a list" : typeof value;
}
