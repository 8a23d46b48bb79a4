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
  return (httpPart === 'body' ? strictAjv : coercingAjv).compile(schema);
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
