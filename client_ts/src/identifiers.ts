// Client-side checks of session ids and attribution, so misuse throws before any call.

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/** The Memori SDK's limit, and the service's. */
export const MAX_ATTRIBUTION_CHARS = 100;

/** A UUID v4 as the service stores it: canonical, lower case. Throws a TypeError otherwise. */
export function sessionId(value: unknown): string {
  if (typeof value !== "string") {
    throw new TypeError(`a session id is a UUID v4 string, not ${describe(value)}`);
  }
  if (!UUID.test(value)) {
    throw new TypeError(`${JSON.stringify(value)} is not a UUID (a session id is a UUID v4)`);
  }
  if (!UUID_V4.test(value)) {
    throw new TypeError(`${JSON.stringify(value)} is not a UUID v4 (a session id is a random UUID v4)`);
  }
  return value.toLowerCase();
}

/** An entity or process id: a string of at most 100 characters; the entity may not be empty. */
export function attributionId(value: unknown, name: string, required: boolean): string {
  if (value === undefined && !required) {
    return "";
  }
  if (typeof value !== "string") {
    throw new TypeError(`${name} must be a string, not ${describe(value)}`);
  }
  if (required && value === "") {
    throw new RangeError(`${name} must not be empty: it names the end user, e.g. "user-123"`);
  }
  const length = [...value].length; // characters, as the service counts them
  if (length > MAX_ATTRIBUTION_CHARS) {
    throw new RangeError(`${name} has ${length} characters; at most ${MAX_ATTRIBUTION_CHARS}`);
  }
  if (CONTROL.test(value)) {
    throw new RangeError(`${name} contains control characters`);
  }
  return value;
}

function describe(value: unknown): string {
  return value === null ? "null" : Array.isArray(value) ? "an array" : typeof value;
}
