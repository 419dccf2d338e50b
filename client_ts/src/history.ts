// Stored memori.v1 messages given back in the shape openai-node takes them as input.
import type { ChatCompletionMessageParam } from "openai/resources/chat/completions";

import { type ChatMessage, Role } from "./gen/memori/v1/common_pb.js";

const ROLE_NAMES: Readonly<Partial<Record<Role, string>>> = {
  [Role.SYSTEM]: "system",
  [Role.DEVELOPER]: "developer",
  [Role.USER]: "user",
  [Role.ASSISTANT]: "assistant",
  [Role.TOOL]: "tool",
};

export function historyMessage(message: ChatMessage): ChatCompletionMessageParam {
  const result: Record<string, unknown> = { role: ROLE_NAMES[message.role] ?? "user" };
  if (message.content !== undefined) {
    result["content"] = message.content;
  } else if (message.contentParts.length > 0) {
    result["content"] = message.contentParts;
  }
  if (message.name) {
    result["name"] = message.name;
  }
  if (message.toolCalls.length > 0) {
    result["tool_calls"] = message.toolCalls.map((call) => ({
      id: call.id,
      type: call.type || "function",
      function: { name: call.function?.name ?? "", arguments: call.function?.arguments ?? "" },
    }));
  }
  if (message.toolCallId) {
    result["tool_call_id"] = message.toolCallId;
  }
  return result as unknown as ChatCompletionMessageParam;
}
