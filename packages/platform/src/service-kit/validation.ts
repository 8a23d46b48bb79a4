/**
 * Two validators: a strict one for bodies (no type coercion, unknown fields rejected) and a
 * coercing one for querystrings, params and headers, which arrive as strings.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { FieldError } from './problem.js';

// ajv-formats is CommonJS with a default export.
const addFormats = (addFormatsModule as unknown as { default?: typeof addFormatsModule }).default ?? addFormatsModule;

function makeAjv(coerce: boolean): Ajv {
  const ajv = new Ajv({
    coerceTypes: coerce ? 'array' : false,
    useDefaults: true,
    removeAdditional: false,
    allErrors: false,
    strict: false,
    // Our schemas are written in code and covered by tests; validating each against the
    // meta-schema at start-up cost ~2 s of CPU per process.
    validateSchema: false,
  });
  (addFormats as unknown as (a: Ajv) => void)(ajv);
  return ajv;
}

const strictAjv = makeAjv(false);
const coercingAjv = makeAjv(true);

export function compileValidator(schema: object, httpPart: string | undefined): ValidateFunction {
  if (httpPart === 'body') return strictAjv.compile(schema);
  return decimalNumerals(schema, coercingAjv.compile(schema));
}

const DECIMAL: Record<'integer' | 'number', RegExp> = { integer: /^-?(0|[1-9]\d{0,15})$/, number: /^-?(0|[1-9]\d{0,15})(\.\d{1,15})?$/ };

/**
 * Ajv coerces a query string with `Number()`, which reads `0x10` as 16, `1e1` as 10 and ` 5` as
 * 5. A numeric field of a querystring, params or headers must be written in plain decimal
 * digits; anything else is refused with that field's path before coercion.
 */
function decimalNumerals(schema: object, validate: ValidateFunction): ValidateFunction {
  const props = (schema as { properties?: Record<string, { type?: unknown }> }).properties ?? {};
  const numeric = Object.entries(props).flatMap(([key, p]) => (p.type === 'integer' || p.type === 'number' ? [[key, p.type] as const] : []));
  if (numeric.length === 0) return validate;
  const wrapped = ((data: unknown) => {
    if (data && typeof data === 'object') {
      for (const [key, type] of numeric) {
        const v = (data as Record<string, unknown>)[key];
        const values = Array.isArray(v) ? v : [v];
        if (values.some((x) => typeof x === 'string' && !DECIMAL[type].test(x))) {
          wrapped.errors = [{ instancePath: `/${key}`, schemaPath: `#/properties/${key}/type`, keyword: 'type', params: { type }, message: `must be ${type === 'integer' ? 'an integer' : 'a number'} written in decimal digits` }];
          return false;
        }
      }
    }
    const ok = validate(data);
    wrapped.errors = validate.errors;
    return ok;
  }) as ValidateFunction;
  return wrapped;
}

const PART_NAMES: Record<string, string> = { querystring: 'query', params: 'params', headers: 'headers', body: 'body' };

export function fieldErrors(errors: readonly ErrorObject[] | null | undefined, httpPart: string | undefined): FieldError[] {
  const part = PART_NAMES[httpPart ?? 'body'] ?? 'body';
  return (errors ?? []).map((e) => {
    let path = `/${part}${e.instancePath}`;
    const params = e.params as Record<string, unknown>;
    if (typeof params.missingProperty === 'string') path += `/${params.missingProperty}`;
    if (typeof params.additionalProperty === 'string') {
      return { path: `${path}/${params.additionalProperty}`, message: 'is not an allowed field' };
    }
    return { path, message: e.message ?? 'is invalid' };
  });
}
