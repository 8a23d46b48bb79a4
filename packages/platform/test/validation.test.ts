import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileValidator, fieldErrors } from '../src/service-kit/validation.js';

const query = { type: 'object', additionalProperties: false, properties: { limit: { type: 'integer', minimum: 1, maximum: 100 }, ratio: { type: 'number' } } };

test('query numerals must be plain decimal: 0x10, 1e1, " 5", 1.0 for an integer and 16-digit overflow are refused naming the field', () => {
  const v = compileValidator(query, 'querystring');
  for (const bad of ['0x10', '1e1', ' 5', '5 ', '+5', '1.0', '010', '0b1', 'Infinity', '12345678901234567890']) {
    const data: Record<string, unknown> = { limit: bad };
    assert.equal(v(data), false, bad);
    assert.deepEqual(fieldErrors(v.errors, 'querystring')[0]?.path, '/query/limit', bad);
  }
  assert.equal(v({ ratio: '1e3' }), false);
  assert.equal(fieldErrors(v.errors, 'querystring')[0]?.path, '/query/ratio');
});

test('plain decimal query numerals are coerced and range-checked as before', () => {
  const v = compileValidator(query, 'querystring');
  const ok: Record<string, unknown> = { limit: '16', ratio: '-0.25' };
  assert.equal(v(ok), true);
  assert.deepEqual(ok, { limit: 16, ratio: -0.25 });
  assert.equal(v({ limit: '0' }), false, 'the minimum still holds');
  assert.equal(v({ limit: '101' }), false, 'the maximum still holds');
  assert.equal(v({}), true, 'optional');
});

test('bodies stay strict: a number in a JSON body is never coerced from a string', () => {
  const v = compileValidator(query, 'body');
  assert.equal(v({ limit: '16' }), false);
  assert.equal(v({ limit: 16 }), true);
});
