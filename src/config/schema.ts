/**
 * A small declarative validator for the config file: every error names the key path and
 * what was expected, unknown keys are errors (a typo must not silently disable a setting).
 */
export type Spec =
  | { kind: 'string'; nonEmpty?: boolean; check?: (v: string) => string | null }
  | { kind: 'number'; min?: number; max?: number; integer?: boolean }
  | { kind: 'boolean' }
  | { kind: 'enum'; values: readonly string[] }
  | { kind: 'array'; of: Spec; nonEmpty?: boolean }
  | { kind: 'object'; fields: Record<string, Field> };

export interface Field {
  spec: Spec;
  required?: boolean;
  doc?: string;
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + '...' : v)}`;
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'number' || typeof v === 'boolean' || v === undefined) return `${typeof v} ${String(v)}`;
  return typeof v; // bigint, symbol, function: JSON.parse never makes them
}

export function validate(v: unknown, spec: Spec, at: string, errors: string[]): void {
  const where = at || '(top level)';
  switch (spec.kind) {
    case 'string':
      if (typeof v !== 'string') {
        errors.push(`${where}: expected a string, got ${typeName(v)}`);
        return;
      }
      if (spec.nonEmpty && !v.trim()) {
        errors.push(`${where}: must not be empty`);
        return;
      }
      if (spec.check) {
        const m = spec.check(v);
        if (m) errors.push(`${where}: ${m}`);
      }
      return;
    case 'number': {
      const what = `${spec.integer ? 'an integer' : 'a number'}${spec.min !== undefined ? ` >= ${spec.min}` : ''}${spec.max !== undefined ? ` <= ${spec.max}` : ''}`;
      if (
        typeof v !== 'number' ||
        !Number.isFinite(v) ||
        (spec.integer && !Number.isInteger(v)) ||
        (spec.min !== undefined && v < spec.min) ||
        (spec.max !== undefined && v > spec.max)
      )
        errors.push(`${where}: expected ${what}, got ${typeName(v)}`);
      return;
    }
    case 'boolean':
      if (typeof v !== 'boolean') errors.push(`${where}: expected true or false, got ${typeName(v)}`);
      return;
    case 'enum':
      if (typeof v !== 'string' || !spec.values.includes(v))
        errors.push(`${where}: expected one of ${spec.values.map((x) => JSON.stringify(x)).join(', ')}, got ${typeName(v)}`);
      return;
    case 'array':
      if (!Array.isArray(v)) {
        errors.push(`${where}: expected an array, got ${typeName(v)}`);
        return;
      }
      if (spec.nonEmpty && !v.length) {
        errors.push(`${where}: must list at least one item`);
        return;
      }
      v.forEach((x, i) => validate(x, spec.of, `${at}[${i}]`, errors));
      return;
    case 'object': {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) {
        errors.push(`${where}: expected an object, got ${typeName(v)}`);
        return;
      }
      const o = v as Record<string, unknown>;
      for (const k of Object.keys(o)) {
        if (!(k in spec.fields)) {
          errors.push(`${at ? at + '.' : ''}${k}: unknown key (allowed here: ${Object.keys(spec.fields).join(', ')})`);
        }
      }
      for (const [k, f] of Object.entries(spec.fields)) {
        const p = at ? `${at}.${k}` : k;
        if (o[k] === undefined) {
          if (f.required) errors.push(`${p}: required${f.doc ? ` (${f.doc})` : ''}`);
          continue;
        }
        validate(o[k], f.spec, p, errors);
      }
    }
  }
}
