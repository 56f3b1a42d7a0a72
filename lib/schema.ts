/**
 * The project's one schema library is TypeBox: the same JSON Schemas validate
 * configuration, HTTP bodies (Fastify's native validator) and queue messages.
 */
import { FormatRegistry, Type, type Static, type TLiteral, type TSchema, type TUnion } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';

export { Type, type Static, type TSchema } from '@sinclair/typebox';

function isAbsoluteUrl(value: string): boolean {
  try {
    return Boolean(new URL(value).protocol);
  } catch {
    return false;
  }
}

if (!FormatRegistry.Has('uri')) FormatRegistry.Set('uri', isAbsoluteUrl);

export interface SchemaIssue {
  path: string;
  message: string;
}

/**
 * For messages, which arrive already typed as JSON: a value that passes as it
 * is is returned without the copy and conversion `parseWith` makes (the
 * poller validates every message, so this is its hot path).
 */
export function checkWith<T extends TSchema>(
  schema: T,
  input: unknown,
): { ok: true; value: Static<T> } | { ok: false; issues: SchemaIssue[] } {
  return Value.Check(schema, input) ? { ok: true, value: input } : parseWith(schema, input);
}

/** Converts, defaults and checks `input`; returns the typed value or the list of issues. */
export function parseWith<T extends TSchema>(
  schema: T,
  input: unknown,
): { ok: true; value: Static<T> } | { ok: false; issues: SchemaIssue[] } {
  const prepared = Value.Default(schema, Value.Convert(schema, Value.Clone(input)));
  if (Value.Check(schema, prepared)) return { ok: true, value: prepared };
  const issues = [...Value.Errors(schema, prepared)].map((error) => ({
    path: error.path,
    message: error.message,
  }));
  return { ok: false, issues };
}

/** A union of string literals that keeps its precise static type. */
export function StringEnum<const T extends readonly string[]>(
  values: T,
  options?: { default?: T[number]; description?: string },
) {
  return Type.Union(
    values.map((value) => Type.Literal(value)),
    options,
  ) as unknown as TUnion<Array<TLiteral<T[number]>>>;
}
