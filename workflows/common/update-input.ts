/**
 * A field of an update's input as the client sent it. Validators run before
 * anything has checked the input's shape, so they read it as unknown.
 */
export function inputField(input: unknown, name: string): unknown {
  return typeof input === 'object' && input !== null ? (input as Record<string, unknown>)[name] : undefined;
}
