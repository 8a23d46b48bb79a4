import { randomUUID } from 'node:crypto';

/** A client's x-request-id is kept when it is printable and short; otherwise a new one is made. */
const VALID_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export function requestIdFrom(header: string | string[] | undefined): string {
  if (typeof header === 'string' && VALID_REQUEST_ID.test(header)) return header;
  return randomUUID();
}
